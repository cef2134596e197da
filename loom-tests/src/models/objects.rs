//! Models of issue 18's object pool on the generic layer: an object used on
//! one thread, recycled and released on another, and got back through the
//! depot; and an object whose drop releases another into the very cache
//! whose slow path is dropping it.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use loom::sync::{mpsc, Arc};
use loom::thread;

use super::{acquire, assert_exactly_once, collect, full_cache, model, release, warm_cache, Item};
use crate::cache::depot::Depot;
use crate::cache::exchange::{self, Exclusive};
use crate::cache::thread_cache::{ClassSpec, ThreadCache};

/// The object hand-off: thread A uses an object and sends it to B, which
/// recycles it (a write to the object, as `Recycle::recycle` makes on the
/// releasing thread) and releases it into a full cache: the release spills
/// the magazine to the depot. A, its magazines empty, gets from the depot.
/// Whoever gets the object must see B's reset (a causality violation
/// otherwise), and every object is in exactly one place at the end.
#[test]
fn object_hand_off() {
    model("object_hand_off", || {
        let depot = Arc::new(Depot::new([1], usize::MAX));
        let a = warm_cache(&depot);
        let b = full_cache(&depot, 0, 1);
        let object = Item::new(2); // made by A's `new_object`, before the threads run
        let (tx, rx) = mpsc::channel::<Item>();
        let user = {
            let depot = depot.clone();
            thread::spawn(move || {
                object.check();
                tx.send(object).unwrap();
                // SAFETY: this thread owns `a`.
                let got = unsafe { acquire(&a, &depot) }.map(|o| o.check());
                (got, a)
            })
        };
        let releaser = {
            let depot = depot.clone();
            thread::spawn(move || {
                let mut object = rx.recv().unwrap();
                object.recycle();
                // SAFETY: this thread owns `b`.
                unsafe { release(&b, &depot, object) };
                b
            })
        };
        let (got, a) = user.join().unwrap();
        let b = releaser.join().unwrap();
        // SAFETY: joined: this thread owns both caches.
        let mut ids = unsafe { collect(&depot, &[&a, &b]) };
        ids.extend(got);
        assert_exactly_once(ids, 3);
    });
}

/// An object whose drop releases another object into its own pool's cache.
/// The depot keeps nothing, so a spill drops a magazine of objects; those
/// drops run after the exchange has put the magazines back, outside every
/// access, and the nested releases find a consistent cache. A second thread
/// releases into the same depot meanwhile. Mutant: `drop_inside_access`
/// drops the objects a spill refuses while the cache's cell is still
/// borrowed; the nested release then borrows it again (loom reports the
/// second access to the cell).
#[test]
fn reentrant_drop() {
    struct Chained {
        item: Item,
        home: Option<Arc<(ThreadCache<Chained>, Depot<Chained>)>>,
        drops: Arc<AtomicU32>,
    }
    impl Drop for Chained {
        fn drop(&mut self) {
            self.item.check();
            self.drops.fetch_add(1, Relaxed);
            if let Some(home) = self.home.take() {
                let nested = Chained { item: Item::new(self.item.id + 10), home: None, drops: self.drops.clone() };
                put(&home.0, &home.1, nested);
            }
        }
    }
    /// A release into `cache` as the pool makes it.
    fn put(cache: &ThreadCache<Chained>, depot: &Depot<Chained>, object: Chained) {
        // SAFETY: one thread uses the cache (the model's owner).
        if let Err(object) = unsafe { cache.hot().push(0, object) } {
            // SAFETY: as above.
            let access = unsafe { Exclusive::new(cache) };
            exchange::put_slow(&access, cache.counters(0), 0, object, depot);
        }
    }

    model("reentrant_drop", || {
        let spec = ClassSpec { weight: 1, base: 1, max: 1, pooled: true };
        let home = Arc::new((ThreadCache::new([spec], usize::MAX), Depot::new([1], 0)));
        let drops = Arc::new(AtomicU32::new(0));
        let other = {
            let home = home.clone();
            let drops = drops.clone();
            thread::spawn(move || {
                // Another thread's spill into the same depot (refused too).
                let cache = ThreadCache::new([spec], usize::MAX);
                for id in 20..23 {
                    put(&cache, &home.1, Chained { item: Item::new(id), home: None, drops: drops.clone() });
                }
                cache
            })
        };
        for id in 0..3 {
            let object = Chained { item: Item::new(id), home: Some(home.clone()), drops: drops.clone() };
            put(&home.0, &home.1, object);
        }
        let other_cache = other.join().unwrap();
        // Each cache holds two (its two magazines of one); the depot keeps
        // nothing, so the rest were dropped: one of the other thread's, and
        // on the owner's side the three outer objects, each of whose drops
        // released a nested one (dropping the previous nested one): 9 made,
        // 4 cached, 5 dropped.
        // SAFETY: this thread owns both caches now.
        let cached = unsafe { (home.0.cached(0), other_cache.cached(0)) };
        assert_eq!((cached, drops.load(Relaxed)), ((2, 2), 5), "every object cached or dropped, once");
        // Break the cycle (cached objects hold `home`) and drop the rest.
        let drain = |cache: &ThreadCache<Chained>| {
            // SAFETY: as above.
            let access = unsafe { Exclusive::new(cache) };
            exchange::flush(&access, &home.1, exchange::Flush::Free, |_, _, _| {});
        };
        drain(&home.0);
        drain(&other_cache);
    });
}
