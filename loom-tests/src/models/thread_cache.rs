//! Models 2 and 4: magazines crossing threads, and the thread-exit flush.

use loom::sync::{mpsc, Arc};
use loom::thread;

use super::{acquire, assert_exactly_once, cached, collect, flush, full_cache, model, release, warm_cache, Item};
use crate::cache::counters::Reading;
use crate::cache::depot::Depot;
use crate::cache::thread_cache::ThreadCache;

/// Model 2: two threads exchange items both ways. Each releases a new item
/// into a full cache (both spill a full magazine to the depot at once), takes
/// it back, hands it to the other thread, and releases what it receives.
#[test]
fn exchange_both_ways() {
    model("exchange_both_ways", || {
        let depot = Arc::new(Depot::new([1], usize::MAX));
        let (a, b) = (full_cache(&depot, 0, 1), full_cache(&depot, 2, 3));
        let (to_b, from_a) = mpsc::channel::<Item>();
        let (to_a, from_b) = mpsc::channel::<Item>();

        let side = |cache: ThreadCache<Item>, id: u32, tx: mpsc::Sender<Item>, rx: mpsc::Receiver<Item>| {
            let depot = depot.clone();
            thread::spawn(move || {
                // SAFETY: this thread owns `cache`.
                unsafe {
                    release(&cache, &depot, Item::new(id)); // spills a full magazine
                    let mine = acquire(&cache, &depot).expect("just cached");
                    tx.send(mine).unwrap();
                    let theirs = rx.recv().unwrap();
                    theirs.check();
                    release(&cache, &depot, theirs);
                }
                cache
            })
        };
        let a = side(a, 4, to_b, from_b);
        let b = side(b, 5, to_a, from_a);
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        // SAFETY: joined: this thread owns both caches.
        let ids = unsafe { collect(&depot, &[&a, &b]) };
        assert_exactly_once(ids, 6);
    });
}

/// Model 4: a thread's cache is flushed at thread exit (two full magazines go
/// to the depot) while another thread, its magazines empty, refills from the
/// depot and releases what it got.
#[test]
fn exit_flush_races_refill() {
    model("exit_flush_races_refill", || {
        let depot = Arc::new(Depot::new([1], usize::MAX));
        let exiting = full_cache(&depot, 0, 1);
        let other = warm_cache(&depot);

        let exiting = {
            let depot = depot.clone();
            thread::spawn(move || {
                // SAFETY: this thread owns `exiting`; flushing is what the exit
                // hook does.
                unsafe { flush(&exiting, &depot) };
                // SAFETY: as above.
                assert_eq!(unsafe { cached(&exiting) }, 0, "nothing stays with a dead thread");
                exiting
            })
        };
        let other = {
            let depot = depot.clone();
            thread::spawn(move || {
                // SAFETY: this thread owns `other`.
                unsafe {
                    if let Some(item) = acquire(&other, &depot) {
                        item.check();
                        release(&other, &depot, item);
                    }
                }
                other
            })
        };
        let exiting = exiting.join().unwrap();
        let other = other.join().unwrap();
        let mut r = Reading::default();
        r.add_put_side(exiting.counters(0));
        assert_eq!(r.spills, 2, "the flush gave both magazines to the depot");
        // SAFETY: joined: this thread owns both caches.
        let ids = unsafe { collect(&depot, &[&exiting, &other]) };
        assert_exactly_once(ids, 2);
    });
}
