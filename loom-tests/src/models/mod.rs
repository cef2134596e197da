//! The loom models, one file per hand-off. Each ends in an exact accounting
//! check: every item is in exactly one place (held, in a cache, in the depot,
//! or freed), none twice, none lost.

mod depot;
mod objects;
mod reclaim;
mod slots;
mod stats;
mod thread_cache;

use loom::cell::UnsafeCell;

use crate::cache::depot::Depot;
use crate::cache::exchange::{self, Exclusive, Flush};
use crate::cache::thread_cache::{ClassSpec, ThreadCache};

/// Preemption bound when `LOOM_MAX_PREEMPTIONS` is not set: 2 keeps a
/// two-thread model with epoch pinning to seconds in release mode.
const DEFAULT_PREEMPTIONS: usize = 2;

/// Runs `f` under loom with a bounded number of preemptions and prints how
/// many interleavings were explored.
pub(crate) fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    model_bounded(name, DEFAULT_PREEMPTIONS, f)
}

/// [`model`] with its own default preemption bound (three-thread models need a
/// lower one to finish in seconds).
pub(crate) fn model_bounded(name: &str, preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = runs.clone();
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    println!(
        "model {name}: {} interleavings, preemption bound {:?}",
        runs.load(std::sync::atomic::Ordering::Relaxed),
        builder.preemption_bound
    );
}

/// A model item: an id, plus a loom-tracked payload written by the thread
/// that makes the item and read by whoever ends up with it. A hand-off that
/// lacks a happens-before edge shows up as a loom causality error on the
/// payload, which plain heap memory (the magazine's `Vec`) would not.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) id: u32,
    payload: UnsafeCell<u32>,
}

impl Item {
    pub(crate) fn new(id: u32) -> Item {
        let item = Item { id, payload: UnsafeCell::new(0) };
        // SAFETY: the item is not shared yet.
        item.payload.with_mut(|p| unsafe { *p = id });
        item
    }

    /// Reads the payload: loom fails here if the read is not ordered after the
    /// write in `new`.
    pub(crate) fn check(&self) -> u32 {
        // SAFETY: whoever holds an `Item` owns it; loom checks the ordering.
        let seen = self.payload.with(|p| unsafe { *p });
        assert_eq!(seen, self.id, "item {} carries payload {seen}", self.id);
        self.id
    }

    /// Writes the payload again, as an object pool's `recycle` resets an
    /// object on the releasing thread: whoever gets the item next must see
    /// this write.
    pub(crate) fn recycle(&mut self) {
        let id = self.id;
        // SAFETY: whoever holds an `Item` owns it; loom checks the ordering.
        self.payload.with_mut(|p| unsafe { *p = id });
    }
}

/// Exclusive access to `cache`, as a model thread that owns it has.
///
/// # Safety
///
/// The calling thread owns `cache`.
pub(crate) unsafe fn owner(cache: &ThreadCache<Item>) -> Exclusive<'_, Item> {
    // SAFETY: forwarded from the caller.
    unsafe { Exclusive::new(cache) }
}

/// Releases `item` into `cache` the way the pool does: hot path, then slow.
///
/// # Safety
///
/// The calling thread owns `cache`.
pub(crate) unsafe fn release(cache: &ThreadCache<Item>, depot: &Depot<Item>, item: Item) {
    // SAFETY: forwarded from the caller.
    if let Err(item) = unsafe { cache.hot().push(0, item) } {
        // SAFETY: forwarded from the caller.
        exchange::put_slow(unsafe { &owner(cache) }, cache.counters(0), 0, item, depot);
    }
}

/// Gets an item from `cache` the way the pool does, or `None` when neither the
/// cache nor the depot has one (the pool would allocate).
///
/// # Safety
///
/// The calling thread owns `cache`.
pub(crate) unsafe fn acquire(cache: &ThreadCache<Item>, depot: &Depot<Item>) -> Option<Item> {
    // SAFETY: forwarded from the caller.
    unsafe { cache.hot().pop(0) }.or_else(|| {
        // SAFETY: forwarded from the caller.
        exchange::get_slow(unsafe { &owner(cache) }, cache.counters(0), 0, depot)
    })
}

/// Gives everything `cache` holds to `depot`, as a thread's exit flush does.
///
/// # Safety
///
/// The calling thread owns `cache`.
pub(crate) unsafe fn flush(cache: &ThreadCache<Item>, depot: &Depot<Item>) {
    // SAFETY: forwarded from the caller.
    let access = unsafe { owner(cache) };
    exchange::flush(&access, depot, Flush::ToDepot, |class, spilled, dropped| {
        cache.counters(class).spills.bump_local(spilled);
        cache.counters(class).discarded.bump_local(dropped);
    });
}

/// Number of items `cache` holds.
///
/// # Safety
///
/// The calling thread owns `cache`.
pub(crate) unsafe fn cached(cache: &ThreadCache<Item>) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { cache.cached(0) }
}

/// A cache of one class of one-item magazines, with no budget to speak of.
pub(crate) fn new_cache() -> ThreadCache<Item> {
    ThreadCache::new([ClassSpec { weight: 1, base: 1, max: 1, pooled: true }], usize::MAX)
}

/// Empties `depot` class 0 and returns the ids it held, checking each payload.
pub(crate) fn drain_ids(depot: &Depot<Item>) -> Vec<u32> {
    let mut ids = Vec::new();
    let guard = depot.pin();
    while let Some(mut mag) = depot.pop_full(0, &guard) {
        while let Some(item) = mag.pop() {
            ids.push(item.check());
        }
    }
    ids
}

/// Asserts that `ids` is exactly `0..n`, each once.
pub(crate) fn assert_exactly_once(mut ids: Vec<u32>, n: u32) {
    ids.sort_unstable();
    assert_eq!(ids, (0..n).collect::<Vec<_>>(), "every item exactly once");
}

/// A cache for one class of one-item magazines, holding two empty magazines,
/// so that a model's threads start with no allocation and no depot traffic.
pub(crate) fn warm_cache(depot: &Depot<Item>) -> ThreadCache<Item> {
    const WARM: u32 = 1000;
    let cache = new_cache();
    // SAFETY: the calling thread owns `cache`.
    unsafe {
        release(&cache, depot, Item::new(WARM));
        release(&cache, depot, Item::new(WARM + 1));
        for _ in 0..2 {
            let item = acquire(&cache, depot).expect("two items were just cached");
            assert!(item.check() >= WARM);
        }
        assert_eq!(cached(&cache), 0);
    }
    cache
}

/// A cache whose two one-item magazines are both full, holding `a` (previous)
/// and `b` (loaded): its next release spills a magazine to the depot.
pub(crate) fn full_cache(depot: &Depot<Item>, a: u32, b: u32) -> ThreadCache<Item> {
    let cache = new_cache();
    // SAFETY: the calling thread owns `cache`.
    unsafe {
        release(&cache, depot, Item::new(a));
        release(&cache, depot, Item::new(b));
        assert_eq!(cached(&cache), 2);
    }
    cache
}

/// Flushes `caches` into `depot` (the caller owns them), then drains the
/// depot and returns every id found, payloads checked.
///
/// # Safety
///
/// The calling thread owns every cache.
pub(crate) unsafe fn collect(depot: &Depot<Item>, caches: &[&ThreadCache<Item>]) -> Vec<u32> {
    for cache in caches {
        // SAFETY: forwarded from the caller.
        unsafe { flush(cache, depot) };
    }
    drain_ids(depot)
}
