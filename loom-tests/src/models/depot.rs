//! Model 1: one thread spills full magazines while another refills from the
//! same class.

use loom::sync::Arc;
use loom::thread;

use super::{acquire, assert_exactly_once, drain_ids, model, release, warm_cache, Item};
use crate::depot::Depot;

#[test]
fn spill_races_refill() {
    model("spill_races_refill", || {
        // One class, magazines of one item, no retention limit.
        let depot = Arc::new(Depot::new([1], usize::MAX));

        // Setup, before any thread runs: each cache gets two empty magazines.
        let (producer_cache, consumer_cache) = (warm_cache(&depot), warm_cache(&depot));
        let producer = {
            let depot = depot.clone();
            let cache = producer_cache;
            thread::spawn(move || {
                // Three releases into one-item magazines: the third spills the
                // magazine holding item 0 to the depot. The items are made here,
                // so the consumer's read of item 0 needs the depot's
                // Release/Acquire pair.
                for id in 0..3 {
                    // SAFETY: this thread owns `cache`.
                    unsafe { release(&cache, &depot, Item::new(id)) };
                }
                cache
            })
        };
        let consumer = {
            let depot = depot.clone();
            let cache = consumer_cache;
            thread::spawn(move || {
                // SAFETY: this thread owns `cache`.
                let got = unsafe { acquire(&cache, &depot) };
                (got.map(|item| item.check()), cache)
            })
        };

        let producer_cache = producer.join().unwrap();
        let (got, consumer_cache) = consumer.join().unwrap();
        // Everything still cached goes to the depot, then we count.
        // SAFETY: the threads are joined; this thread owns both caches now.
        unsafe {
            producer_cache.flush(&depot);
            consumer_cache.flush(&depot);
        }
        let mut ids = drain_ids(&depot);
        ids.extend(got);
        assert_exactly_once(ids, 3);
        assert_eq!(depot.retained_bytes(), 0);
    });
}
