//! Unit tests of the thread cache and its exchanges with the depot, driven
//! through [`Exclusive`] access by one test thread.

use std::sync::{Arc, Mutex};

use super::*;
use crate::cache::counters::Reading;

/// A cache of classes with the given (base, max) capacities, items weighing
/// 1, and a budget of `budget`.
fn cache_with(caps: &[(usize, usize)], budget: usize) -> ThreadCache<u32> {
    let specs = caps.iter().map(|&(base, max)| ClassSpec { weight: 1, base, max, pooled: true });
    ThreadCache::new(specs, budget)
}

fn cache(caps: &[(usize, usize)]) -> ThreadCache<u32> {
    cache_with(caps, usize::MAX)
}

fn access<T: Send + 'static>(cache: &ThreadCache<T>) -> Exclusive<'_, T> {
    // SAFETY: each test uses a cache from its own thread only.
    unsafe { Exclusive::new(cache) }
}

/// A release of class `class`, as the pool makes it: hot path, then slow.
fn put_in<T: Send + 'static>(cache: &ThreadCache<T>, depot: &Depot<T>, class: usize, item: T) {
    // SAFETY: as in `access`; `class` is in range.
    if let Err(item) = unsafe { cache.hot().push(class, item) } {
        put_slow(&access(cache), cache.counters(class), class, item, depot);
    }
}

/// A get of class `class`, as the pool makes it; `make` when nothing is
/// cached (counted as an allocation).
fn get_in<T: Send + 'static>(cache: &ThreadCache<T>, depot: &Depot<T>, class: usize, make: impl FnOnce() -> T) -> T {
    // SAFETY: as in `access`; `class` is in range.
    if let Some(item) = unsafe { cache.hot().pop(class) } {
        return item;
    }
    get_slow(&access(cache), cache.counters(class), class, depot).unwrap_or_else(|| {
        cache.counters(class).allocations.bump_local(1);
        cache.counters(class).gets.bump_local(1);
        make()
    })
}

fn put(cache: &ThreadCache<u32>, depot: &Depot<u32>, item: u32) {
    put_in(cache, depot, 0, item);
}

/// A get of class 0; makes a 0 when nothing is cached.
fn get(cache: &ThreadCache<u32>, depot: &Depot<u32>) -> u32 {
    get_in(cache, depot, 0, || 0)
}

/// A get of class 0 that returns `None` instead of making one.
fn try_get(cache: &ThreadCache<u32>, depot: &Depot<u32>) -> Option<u32> {
    // SAFETY: as in `access`.
    unsafe { cache.hot().pop(0) }.or_else(|| get_slow(&access(cache), cache.counters(0), 0, depot))
}

fn flush_to_depot<T: Send + 'static>(cache: &ThreadCache<T>, depot: &Depot<T>) {
    flush(&access(cache), depot, Flush::ToDepot, |class, spilled, dropped| {
        cache.counters(class).spills.bump_local(spilled);
        cache.counters(class).discarded.bump_local(dropped);
    });
}

fn cached<T: Send + 'static>(cache: &ThreadCache<T>, class: usize) -> usize {
    // SAFETY: as in `access`.
    unsafe { cache.cached(class) }
}

fn reading<T: Send + 'static>(cache: &ThreadCache<T>, class: usize) -> Reading {
    let mut r = Reading::default();
    r.add_put_side(cache.counters(class));
    r.add_get_side(cache.counters(class));
    r
}

/// (the thread's capacity, loaded's, previous's) for class 0.
fn caps(cache: &ThreadCache<u32>) -> (usize, usize, usize) {
    // SAFETY: as in `access`.
    unsafe { cache.capacities(0) }
}

/// `n` releases, then `m` gets.
fn puts_then_gets(cache: &ThreadCache<u32>, depot: &Depot<u32>, n: u32, m: u32) {
    (0..n).for_each(|i| put(cache, depot, i));
    (0..m).for_each(|_| {
        get(cache, depot);
    });
}

/// Six swings of `width` releases then `width` gets; returns the depot
/// exchanges of each.
fn swing(cache: &ThreadCache<u32>, depot: &Depot<u32>, width: u32) -> Vec<u64> {
    let exchanges = || {
        let r = reading(cache, 0);
        r.refills + r.spills
    };
    (0..6)
        .map(|_| {
            let before = exchanges();
            puts_then_gets(cache, depot, width, width);
            exchanges() - before
        })
        .collect()
}

#[test]
fn hysteresis_keeps_the_depot_out() {
    let depot = Depot::new([4], usize::MAX);
    let cache = cache(&[(2, 2)]);
    (0..4).for_each(|i| put(&cache, &depot, i));
    // Two magazines of 2 hold all four: flap around the boundary.
    for _ in 0..100 {
        let x = try_get(&cache, &depot).unwrap();
        put(&cache, &depot, x);
    }
    assert_eq!(cached(&cache, 0), 4);
    let r = reading(&cache, 0);
    assert_eq!((r.refills, r.spills, r.allocations), (0, 0, 0));
    assert_eq!(depot.magazines(0), (0, 0));
}

#[test]
fn turning_exchanges_grow_the_magazines_to_the_maximum() {
    // Base 2 items per magazine, grown up to 8; swings of 12 are wider
    // than two magazines of 2 hold, and fit in two of 8.
    let depot = Depot::new([4], usize::MAX);
    let swinger = cache(&[(2, 8)]);
    let per_swing = swing(&swinger, &depot, 12);
    assert!(per_swing[0] > 0 && per_swing[3..] == [0, 0, 0], "{per_swing:?}");
    assert_eq!(caps(&swinger), (8, 8, 8));
    // Swings of 40 never fit: still no magazine past the maximum.
    let per_swing = swing(&swinger, &depot, 40);
    assert!(per_swing.iter().all(|&n| n > 0), "{per_swing:?}");
    assert_eq!(caps(&swinger), (8, 8, 8));
}

#[test]
fn growth_stays_within_the_budget() {
    // The same swinger with room for 10 items in all: its two magazines
    // grow, but never past 10 together.
    let depot = Depot::new([4], usize::MAX);
    let swinger = cache_with(&[(2, 8)], 10);
    for width in [12, 40] {
        swing(&swinger, &depot, width);
        let (_, loaded, previous) = caps(&swinger);
        assert!(loaded + previous <= 10 && loaded > 2, "{:?}", caps(&swinger));
        // SAFETY: as in `access`.
        assert!(unsafe { swinger.charged() } <= 10);
    }
}

#[test]
fn one_way_flow_keeps_the_base_even_beside_grown_magazines() {
    // A swinger grows its magazines and leaves them in the depot (at
    // exit); then a consumer only releases and a producer only gets.
    let depot = Depot::new([4], usize::MAX);
    let swinger = cache(&[(2, 8)]);
    swing(&swinger, &depot, 12);
    flush_to_depot(&swinger, &depot);
    assert!(depot.magazines(0).1 > 0, "its empties wait in the depot");
    let (consumer, producer) = (cache(&[(2, 8)]), cache(&[(2, 8)]));
    puts_then_gets(&consumer, &depot, 100, 0);
    puts_then_gets(&producer, &depot, 0, 90);
    // Neither turned, and the consumer filled every magazine to 2 (the
    // grown empties it took were cut down first): the producer refilled
    // once per 2 gets.
    assert_eq!(caps(&consumer), (2, 2, 2));
    assert_eq!(caps(&producer).0, 2);
    assert_eq!((reading(&producer, 0).refills, reading(&producer, 0).allocations), (45, 0));
}

#[test]
fn a_flushed_cache_starts_over() {
    // A cache passes to a new thread at a flush (thread exit): one
    // thread's spills and the next one's refills are no turn.
    let depot = Depot::new([4], usize::MAX);
    let cache = cache(&[(2, 8)]);
    puts_then_gets(&cache, &depot, 20, 0);
    flush_to_depot(&cache, &depot);
    puts_then_gets(&cache, &depot, 0, 16);
    assert_eq!(reading(&cache, 0).refills, 8);
    assert_eq!(caps(&cache), (2, 2, 2));
}

#[test]
fn a_long_run_one_way_undoes_growth() {
    let depot = Depot::new([4], usize::MAX);
    let cache = cache(&[(2, 8)]);
    swing(&cache, &depot, 12);
    assert_eq!(caps(&cache).0, 8);
    // Now only releases: DECAY_RUN spills in a row halve the capacity,
    // twice as many take it back to the base.
    let spills = |n| {
        let before = reading(&cache, 0).spills;
        let mut i = 0;
        while reading(&cache, 0).spills - before < n {
            put(&cache, &depot, i);
            i += 1;
        }
    };
    spills(u64::from(DECAY_RUN) - 1);
    assert_eq!(caps(&cache).0, 8);
    spills(1);
    assert_eq!(caps(&cache).0, 4);
    spills(u64::from(DECAY_RUN));
    assert_eq!(caps(&cache).0, 2);
    // The magazines it fills from then on are of the base size.
    spills(2);
    assert_eq!(caps(&cache).1, 2);
}

#[test]
fn spill_refill_and_flush() {
    let depot = Depot::new([4], usize::MAX);
    let (a, b) = (cache(&[(2, 2)]), cache(&[(2, 2)]));
    (0..7).for_each(|i| put(&a, &depot, i));
    // 7 items, 2 per magazine: [0, 1] stays as previous, [6] loaded, and
    // each magazine filled in between ([2, 3], [4, 5]) spilled.
    assert_eq!(cached(&a, 0), 3);
    assert_eq!(depot.magazines(0).0, 2);
    // The depot hands out the warmest: the last magazine spilled, top first.
    assert_eq!(try_get(&b, &depot), Some(5));
    flush_to_depot(&a, &depot);
    assert_eq!(cached(&a, 0), 0);
    assert_eq!(reading(&a, 0).spills, 4);
    assert_eq!(reading(&b, 0).refills, 1);
}

#[test]
fn a_refill_keeps_its_empty_for_the_next_spill() {
    let depot = Depot::new([4], usize::MAX);
    let cache = cache(&[(2, 2)]);
    // [0, 1] previous, [2, 3] spilled, [4] loaded.
    (0..5).for_each(|i| put(&cache, &depot, i));
    assert_eq!(depot.magazines(0), (1, 0));
    // Emptying both magazines refills [2, 3]; the magazine that refill
    // emptied stays in the cache as its spare, not in the depot.
    let popped: Vec<u32> = std::iter::from_fn(|| try_get(&cache, &depot)).collect();
    assert_eq!(popped, [4, 1, 0, 3, 2]);
    assert_eq!(depot.magazines(0), (0, 0));
    // Filling both again spills one, into the spare: no empty fetched.
    (5..10).for_each(|i| put(&cache, &depot, i));
    assert_eq!(depot.magazines(0), (1, 0));
    let r = reading(&cache, 0);
    assert_eq!((r.refills, r.spills), (1, 2));
}

#[test]
fn over_the_limit_the_older_magazine_goes() {
    let depot = Depot::new([4], 0); // the depot keeps nothing
    let cache = cache(&[(2, 2)]);
    (0..5).for_each(|i| put(&cache, &depot, i));
    // [0, 1] was freed, not the warmer [2, 3].
    let popped: Vec<u32> = std::iter::from_fn(|| try_get(&cache, &depot)).collect();
    assert_eq!(popped, [4, 3, 2]);
    assert_eq!(reading(&cache, 0).discarded, 2);
}

#[test]
fn direct_classes_trade_single_items_with_the_depot() {
    // Class 0 cached in the thread; class 1 only in the depot; class 2
    // never kept.
    let specs = [
        ClassSpec { weight: 1, base: 1, max: 1, pooled: true },
        ClassSpec { weight: 1, base: 0, max: 0, pooled: true },
        ClassSpec::UNPOOLED,
    ];
    let depot = Depot::new([1, 1, 0], usize::MAX);
    let cache = ThreadCache::new(specs, usize::MAX);
    for i in 0..5 {
        put_in(&cache, &depot, 1, i);
    }
    assert_eq!((cached(&cache, 1), depot.magazines(1).0), (0, 5), "every item in a magazine of its own");
    let got: Vec<u32> = (0..5).map(|_| get_in(&cache, &depot, 1, || 99)).collect();
    assert_eq!(got, [4, 3, 2, 1, 0]);
    assert_eq!(get_in(&cache, &depot, 1, || 99), 99, "then the depot is empty");
    let r = reading(&cache, 1);
    assert_eq!((r.spills, r.refills, r.allocations, r.gets, r.puts), (5, 5, 1, 6, 5));
    put_in(&cache, &depot, 2, 7);
    assert_eq!(get_in(&cache, &depot, 2, || 42), 42);
    let r = reading(&cache, 2);
    assert_eq!((r.gets, r.puts, r.allocations, r.discarded), (1, 1, 1, 1));
}

#[test]
fn the_budget_bounds_what_a_thread_holds() {
    // Two classes of weights 1 and 10, budget 30: whatever the traffic,
    // the capacity held never weighs more than 30, and what does not fit
    // goes through the depot.
    let specs = [
        ClassSpec { weight: 1, base: 4, max: 16, pooled: true },
        ClassSpec { weight: 10, base: 2, max: 4, pooled: true },
    ];
    let depot = Depot::new([1, 10], usize::MAX);
    let cache = ThreadCache::new(specs, 30);
    let mut next = 0;
    for round in 0..20 {
        let (class, n) = if round % 2 == 0 { (0, 20) } else { (1, 5) };
        for _ in 0..n {
            put_in(&cache, &depot, class, next);
            next += 1;
        }
        for _ in 0..n / 2 {
            get_in(&cache, &depot, class, || 0);
        }
        // SAFETY: as in `access`.
        let charged = unsafe { cache.charged() };
        let held = cached(&cache, 0) + 10 * cached(&cache, 1);
        assert!(held <= charged && charged <= 30, "round {round}: held {held}, charged {charged}");
    }
    assert!(reading(&cache, 1).spills > 0);
}

#[test]
fn drops_in_a_slow_path_may_use_the_cache_again() {
    // An item whose drop releases another item into the same cache: the
    // drop runs after the exchange has put the magazines back, so the
    // nested release finds a consistent cache (debug builds would panic on
    // a nested access).
    type Home = (Arc<ThreadCache<Chain>>, Arc<Depot<Chain>>);
    struct Chain {
        id: u32,
        then: Option<Home>,
        dropped: Arc<Mutex<Vec<u32>>>,
    }
    impl Drop for Chain {
        fn drop(&mut self) {
            self.dropped.lock().unwrap().push(self.id);
            if let Some((cache, depot)) = self.then.take() {
                let item = Chain { id: self.id + 100, then: None, dropped: self.dropped.clone() };
                put_in(&cache, &depot, 0, item);
            }
        }
    }
    let dropped = Arc::new(Mutex::new(Vec::new()));
    // The depot keeps nothing: every spill drops a magazine's items.
    let depot = Arc::new(Depot::<Chain>::new([1], 0));
    let cache = Arc::new(ThreadCache::new([ClassSpec { weight: 1, base: 2, max: 2, pooled: true }], usize::MAX));
    for id in 0..10 {
        let then = Some((cache.clone(), depot.clone()));
        put_in(&cache, &depot, 0, Chain { id, then, dropped: dropped.clone() });
    }
    let r = reading(&cache, 0);
    let dropped = dropped.lock().unwrap().clone();
    assert!(r.discarded >= 4, "{r:?}");
    assert!(dropped.iter().any(|&id| id >= 100), "nested releases ran: {dropped:?}");
    // Each outer item's drop released one more: every item ever put is
    // cached or was dropped, once.
    let outer_dropped = dropped.iter().filter(|&&id| id < 100).count();
    assert_eq!(r.puts, 10 + outer_dropped as u64);
    assert_eq!(cached(&cache, 0) + dropped.len(), 10 + outer_dropped);
    // Break the cycle: the cached items hold the cache.
    flush(&access(&*cache), &depot, Flush::Free, |_, _, _| {});
}
