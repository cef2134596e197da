//! Model 6: counters read while other threads get and release.

use loom::sync::Arc;
use loom::thread;

use super::{acquire, model_bounded, release, warm_cache, Item};
use crate::cache::counters::Reading;
use crate::cache::depot::Depot;
use crate::cache::thread_cache::ThreadCache;

/// Sums the caches' counters with the function `Pool::stats` uses.
fn read(caches: &[&ThreadCache<Item>]) -> Reading {
    Reading::sum(|| caches.iter().map(|c| c.counters(0)))
}

/// One get and one release on `cache`, by its only user.
fn get_and_release(cache: &ThreadCache<Item>, depot: &Depot<Item>) {
    // SAFETY: the calling thread is the only user of `cache`'s magazines.
    unsafe {
        let item = acquire(cache, depot).expect("one item cached");
        item.check();
        release(cache, depot, item);
    }
}

/// Model 6: counters read while two threads each get and release. The reader
/// must never see a put without its get, so
/// `in_use` is never negative, and the quiescent sums are exact.
#[test]
fn stats_read_while_running() {
    // Three threads: bound 1.
    model_bounded("stats_read_while_running", 1, || {
        let depot = Arc::new(Depot::new([1], usize::MAX));
        // Setup: each cache holds one item that entered the way a new buffer
        // does (a counted get that allocates) and was released: gets == puts.
        let cache_with = |id| {
            let cache = warm_cache(&depot);
            // SAFETY: this thread owns `cache` until it is shared below.
            unsafe {
                // Nothing cached: made, and counted as the pool counts it.
                let item = acquire(&cache, &depot).unwrap_or_else(|| {
                    cache.counters(0).allocations.bump_local(1);
                    cache.counters(0).gets.bump_local(1);
                    Item::new(id)
                });
                release(&cache, &depot, item);
            }
            Arc::new(cache)
        };
        let caches = [cache_with(0), cache_with(1)];
        // The reader runs on its own thread: a put is only ever seen together
        // with its get.
        let reader = {
            let caches = caches.clone();
            thread::spawn(move || {
                let r = read(&[&caches[0], &caches[1]]);
                let in_use = r.gets.wrapping_sub(r.puts);
                assert!(in_use <= 2, "in_use read as {in_use} (gets {}, puts {})", r.gets, r.puts);
            })
        };
        let worker = {
            let (cache, depot) = (caches[1].clone(), depot.clone());
            thread::spawn(move || get_and_release(&cache, &depot))
        };
        get_and_release(&caches[0], &depot);
        reader.join().unwrap();
        worker.join().unwrap();
        let r = read(&[&caches[0], &caches[1]]);
        assert_eq!(r.gets, r.puts, "quiescent: nothing in use");
        assert_eq!(r.allocations, 2);
    });
}
