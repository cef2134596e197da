//! Models 1, 3 and 5: the depot's stacks under spill, refill, reclamation,
//! trim and the retention limit.

use loom::sync::Arc;
use loom::thread;

use super::{
    acquire, assert_exactly_once, collect, drain_ids, flush, full_cache, model, model_bounded, release, warm_cache,
    Item,
};
use crate::cache::counters::Reading;
use crate::cache::depot::Depot;
use crate::cache::stack::{Shells, Stack};
use crate::sync::epoch::pin;

/// Model 1: one thread spills a full magazine while another refills from the
/// same class.
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
            flush(&producer_cache, &depot);
            flush(&consumer_cache, &depot);
        }
        let mut ids = drain_ids(&depot);
        ids.extend(got);
        assert_exactly_once(ids, 3);
        assert_eq!(depot.retained_bytes(), 0);
    });
}

/// Model 3: the depot's stack under concurrent push and pop, with nodes
/// recycled. Both threads flush the epoch between operations, so popped nodes
/// come back through the deferred path and are pushed again while the other
/// thread may still hold a stale pointer: a node must not return (to be
/// reused or freed) while another thread can still read it.
#[test]
fn stack_push_pop_reclaims() {
    // Three flushes make this model large: bound 1 (98k interleavings).
    model_bounded("stack_push_pop_reclaims", 1, || {
        let shells = Shells::new();
        let stack = Arc::new(Stack::new(shells.clone()));
        stack.push(Item::new(0), &pin());
        stack.push(Item::new(1), &pin());

        let popper = {
            let stack = stack.clone();
            thread::spawn(move || {
                let a = stack.pop(&pin()).map(|i| i.check());
                pin().flush();
                let b = stack.pop(&pin()).map(|i| i.check());
                [a, b]
            })
        };
        let cycler = {
            let stack = stack.clone();
            thread::spawn(move || {
                let got = stack.pop(&pin()).map(|i| i.check());
                pin().flush();
                pin().flush();
                stack.push(Item::new(2), &pin()); // may reuse a popped node
                got
            })
        };
        let mut ids: Vec<u32> = popper.join().unwrap().into_iter().flatten().collect();
        ids.extend(cycler.join().unwrap());
        while let Some(item) = stack.pop(&pin()) {
            ids.push(item.check());
        }
        assert_exactly_once(ids, 3);
        assert_eq!(stack.len(), 0);
    });
}

/// Model 5: two threads spill against a retention limit of one item while one
/// of them also trims the depot. The depot never holds more than the limit,
/// and every item is cached, in the depot, or freed (counted), exactly once.
#[test]
fn trim_and_limit_race_spill() {
    model("trim_and_limit_race_spill", || {
        const LIMIT: usize = 1; // items weigh 1 byte
        let depot = Arc::new(Depot::new([1], LIMIT));
        let (a, b) = (full_cache(&depot, 0, 1), full_cache(&depot, 2, 3));

        let spill = |cache: crate::cache::thread_cache::ThreadCache<Item>, id: u32, trim: bool| {
            let depot = depot.clone();
            thread::spawn(move || {
                // SAFETY: this thread owns `cache`.
                unsafe { release(&cache, &depot, Item::new(id)) };
                assert!(depot.retained_bytes() <= LIMIT, "depot holds {} > {LIMIT}", depot.retained_bytes());
                let trimmed = if trim { depot.drain(0) } else { 0 };
                (cache, trimmed)
            })
        };
        let a = spill(a, 4, false);
        let b = spill(b, 5, true);
        let (a, _) = a.join().unwrap();
        let (b, trimmed) = b.join().unwrap();
        let mut freed = trimmed;
        for cache in [&a, &b] {
            let mut r = Reading::default();
            r.add_put_side(cache.counters(0));
            freed += r.discarded;
        }
        // SAFETY: joined: this thread owns both caches. The depot has room for
        // one item, so collect through a depot with no limit.
        let ids = unsafe {
            let all = Depot::new([1], usize::MAX);
            let mut ids = drain_ids(&depot);
            ids.extend(collect(&all, &[&a, &b]));
            ids
        };
        let found = ids.len() as u64;
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len() as u64, found, "no item twice: {ids:?}");
        assert_eq!(found + freed, 6, "found {ids:?}, freed {freed}");
    });
}
