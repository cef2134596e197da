//! [`Caches`]: the generic layer of one pool: every thread's [`ThreadCache`],
//! the [`Depot`] behind them, the counters of work done outside any cache,
//! and the reclaim of what nobody needs. A pool routes each get and release
//! here with a class index; what an item is, how it is made and what it
//! weighs are the pool's business.
//!
//! # Invariants
//!
//! - A slot's cache is touched only inside an owner access of the thread
//!   whose serial is in its [`Owner`], or by a reclaimer that holds it
//!   (`owner.rs`). A thread claims a slot (`0 → serial`) before its first
//!   use, and its exit hook flushes the slot and releases it (`serial → 0`)
//!   after its last, so each owner's accesses happen after the previous
//!   owner's. A thread finds its slot through its hint, else its own
//!   thread-local record (`local.rs`); a thread without one claims a free
//!   slot from the list (`slots.rs`), or adds one.
//! - Every owner access is bracketed by the thread's `in_op` flag
//!   (`ThreadState::begin`/`end`) and contains only moves: items are made
//!   and dropped, and the allocator called, between accesses.
//! - `specs` has one entry per class.
//!
//! Called by the pools: `pop`/`push` on every get and release, the rest on
//! slow paths, at thread exit, from `stats()` and from the reclaimer.

use std::ptr;

use crate::cache::counters::{ClassCounters, Reading};
use crate::cache::depot::Depot;
use crate::cache::exchange::{self, Access, Exclusive, Flush};
use crate::cache::local::{self, SlotAddr};
use crate::cache::owner::{Owner, ThreadState};
use crate::cache::slots::Slots;
use crate::cache::thread_cache::{ClassSpec, Hot, ThreadCache};
use crate::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::sync::barrier;

/// Every thread's cache of one pool, and the depot.
///
/// # Invariants
///
/// See the module docs.
pub(crate) struct Caches<T: Send + 'static> {
    /// The pool's id in the registry of live pools (`local.rs`).
    id: u64,
    depot: Depot<T>,
    specs: Box<[ClassSpec]>,
    /// The most weight of magazines one thread's cache may hold.
    budget: usize,
    /// Every thread's slot; a slot's address never changes while the pool
    /// lives.
    slots: Slots<Slot<T>>,
    /// Counters for work done without a cache (thread teardown, depot trim,
    /// reclaim), written by any thread with read-modify-writes.
    remote: Box<[ClassCounters]>,
    /// Calls of [`reclaim_idle`](Self::reclaim_idle).
    reclaims: AtomicU64,
    /// Set while a reclaim walks the depot.
    reclaiming: AtomicBool,
}

/// One thread's state in one pool.
struct Slot<T: Send + 'static> {
    cache: ThreadCache<T>,
    owner: Owner,
    /// The reclaimer's: the owner's gets and puts when it last looked, and
    /// whether it took the cache since they last moved.
    seen: AtomicU64,
    taken: AtomicBool,
}

impl<T: Send + 'static> std::fmt::Debug for Caches<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("id", &self.id)
            .field("specs", &self.specs)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Caches<T> {
    /// The layer of pool `id`: classes of the given specs, one thread's
    /// magazines weighing at most `budget`, the depot at most `limit`.
    pub(crate) fn new(id: u64, specs: impl IntoIterator<Item = ClassSpec>, budget: usize, limit: usize) -> Self {
        let specs: Box<[ClassSpec]> = specs.into_iter().collect();
        Caches {
            id,
            remote: specs.iter().map(|_| ClassCounters::default()).collect(),
            depot: Depot::new(specs.iter().map(|s| s.weight), limit),
            specs,
            budget,
            slots: Slots::new(),
            reclaims: AtomicU64::new(0),
            reclaiming: AtomicBool::new(false),
        }
    }

    /// The pool's id in the registry of live pools.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Number of classes.
    pub(crate) fn classes(&self) -> usize {
        self.specs.len()
    }

    /// Pops the calling thread's loaded magazine of `class`, if the thread's
    /// hint has its cache for pool `id` (the pool's own id, passed from
    /// where the pool keeps it inline): the hot path of a get.
    #[inline(always)]
    pub(crate) fn pop(&self, id: u64, class: usize) -> Option<T> {
        local::with_thread(|thread| {
            thread.begin();
            // A hint hit inside an access: this thread owns the slot and no
            // reclaimer holds it (`owner.rs`); the slot lives in `self.slots`,
            // which never frees one before it drops; the pool passes a class
            // below `classes()`.
            let item = match thread.hint(id) {
                // SAFETY: the hint hit inside an access (above).
                Some(addr) => unsafe { Hot::<T>::from_addr(addr).pop(class) },
                None => None,
            };
            thread.end();
            item
        })
    }

    /// Pushes onto the calling thread's loaded magazine of `class`, or hands
    /// the item back (no hint, or the magazine is full): the hot path of a
    /// release.
    #[inline(always)]
    pub(crate) fn push(&self, id: u64, class: usize, item: T) -> Result<(), T> {
        local::with_thread(|thread| {
            thread.begin();
            let pushed = match thread.hint(id) {
                // SAFETY: a hint hit inside an access, as in `pop`.
                Some(addr) => unsafe { Hot::<T>::from_addr(addr).push(class, item) },
                None => Err(item),
            };
            thread.end();
            pushed
        })
    }

    /// A get after [`pop`](Self::pop) missed: the thread's magazines, the
    /// depot, or else `make`, which runs outside every access. Without a
    /// cache (thread teardown) it makes.
    ///
    /// # Errors
    ///
    /// Whatever `make` returns; nothing is counted then.
    #[cold]
    #[inline(never)]
    pub(crate) fn pop_slow<E>(&self, class: usize, make: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        match self.access() {
            Some(access) => {
                let counters = access.slot.cache.counters(class);
                if let Some(item) = exchange::get_slow(&access, counters, class, &self.depot) {
                    return Ok(item);
                }
                let item = make()?;
                counters.allocations.bump_local(1);
                counters.gets.bump_local(1);
                Ok(item)
            }
            None => {
                let item = make()?;
                self.remote[class].allocations.bump_shared(1);
                self.remote[class].gets.bump_shared(1);
                Ok(item)
            }
        }
    }

    /// A release after [`push`](Self::push) handed the item back: the
    /// thread's magazines, the depot, or else the item is dropped (outside
    /// every access).
    #[cold]
    #[inline(never)]
    pub(crate) fn push_slow(&self, class: usize, item: T) {
        match self.access() {
            Some(access) => {
                let counters = access.slot.cache.counters(class);
                exchange::put_slow(&access, counters, class, item, &self.depot);
            }
            None => {
                drop(item);
                self.count_dropped(class);
            }
        }
    }

    /// Counts the release of an item of `class` that the pool dropped
    /// itself instead of releasing (a refused or panicking recycle, a
    /// detached object): a put and a discard, in the shared counters.
    pub(crate) fn count_dropped(&self, class: usize) {
        self.remote[class].puts.bump_shared(1);
        self.remote[class].discarded.bump_shared(1);
    }

    /// Frees what the depot and the calling thread's cache hold.
    pub(crate) fn trim(&self) {
        if let Some(access) = self.access() {
            let cache = &access.slot.cache;
            exchange::flush(&access, &self.depot, Flush::Free, |class, _, dropped| {
                cache.counters(class).discarded.bump_local(dropped);
                cache.counters(class).trimmed.bump_local(dropped);
            });
        }
        for class in 0..self.classes() {
            let freed = self.depot.drain(class);
            self.remote[class].discarded.bump_shared(freed);
            self.remote[class].trimmed.bump_shared(freed);
        }
    }

    /// Frees what nobody needed since the last call: per class, the depot's
    /// magazines below its low-water mark (`depot.rs`), and the caches of
    /// threads that made no get or release in the pool since the last call,
    /// taken from them without their help (`owner.rs`; where no heavy
    /// barrier exists, idle threads keep their caches). Returns the items
    /// freed per class.
    pub(crate) fn reclaim_idle(&self) -> Vec<u64> {
        self.reclaims.fetch_add(1, Relaxed);
        // One depot reclaim at a time: two would both free the magazines the
        // same low-water mark counts, and so part of the working set.
        let mut freed = vec![0; self.classes()];
        if !self.reclaiming.swap(true, Acquire) {
            freed.iter_mut().enumerate().for_each(|(class, n)| *n = self.depot.reclaim(class));
            self.reclaiming.store(false, Release);
        }
        let taken = if barrier::available() { self.take_idle_caches() } else { Vec::new() };
        // Every slot is handed back by now: what the items' drops do (even
        // get and release in this pool, on this thread) waits for no one.
        for taken in taken {
            exchange::dispose(taken, &self.depot, Flush::Free, |class, _, dropped| freed[class] += dropped);
        }
        for (class, &items) in freed.iter().enumerate() {
            self.remote[class].discarded.bump_shared(items);
            self.remote[class].reclaimed.bump_shared(items);
        }
        freed
    }

    /// Takes the magazines of every thread cache whose owner went idle (see
    /// `owner.rs`): revokes them all, one heavy barrier, takes each idle
    /// one's magazines (moves only), and hands every slot back before
    /// anything is dropped.
    fn take_idle_caches(&self) -> Vec<Vec<(usize, exchange::Taken<T>)>> {
        let held: Vec<_> = self
            .slots
            .iter()
            .filter(|slot| slot.went_idle())
            .filter_map(|slot| Some((slot, slot.owner.revoke(self.id)?)))
            .collect();
        if held.is_empty() || !barrier::heavy() {
            return Vec::new();
        }
        let mut taken = Vec::new();
        for (slot, revoked) in held {
            if revoked.idle() {
                // SAFETY: the cache is ours alone until `revoked` drops
                // (`owner.rs`).
                let access = unsafe { Exclusive::new(&slot.cache) };
                taken.push(exchange::take_all(&access));
                slot.taken.store(true, Relaxed);
            }
            drop(revoked); // handed back: the owner's next access proceeds
        }
        taken
    }

    /// Calls of [`reclaim_idle`](Self::reclaim_idle) so far.
    pub(crate) fn reclaims(&self) -> u64 {
        self.reclaims.load(Relaxed)
    }

    /// Every thread's counters of `class`, summed the safe way
    /// ([`Reading::sum`]).
    pub(crate) fn reading(&self, class: usize) -> Reading {
        Reading::sum(|| self.slots.iter().map(move |slot| slot.cache.counters(class)).chain([&self.remote[class]]))
    }

    /// Number of (full, empty) magazines the depot holds for `class`.
    pub(crate) fn depot_magazines(&self, class: usize) -> (usize, usize) {
        self.depot.magazines(class)
    }

    /// Item weight the depot holds, all classes.
    pub(crate) fn depot_weight(&self) -> usize {
        self.depot.retained_bytes()
    }

    /// The exit hook's flush of the slot this thread registered (`local.rs`):
    /// gives its cache to the depot and releases the slot, if thread `serial`
    /// still owns it, with one pin for the whole flush (`exchange::flush`).
    pub(crate) fn flush_at_exit(&self, slot: SlotAddr, serial: u64) {
        // SAFETY: the hook passes the address this thread registered for this
        // pool, a slot in `self.slots`, alive as long as `self` (which the
        // hook holds an `Arc` to).
        let slot = unsafe { &*slot.cast::<Slot<T>>() };
        if !slot.owner.owned_by(serial) {
            return;
        }
        let access = OwnerAccess { slot, serial, id: self.id, exiting: true };
        exchange::flush(&access, &self.depot, Flush::ToDepot, |class, spilled, dropped| {
            slot.cache.counters(class).spills.bump_local(spilled);
            slot.cache.counters(class).discarded.bump_local(dropped);
        });
        slot.owner.release(serial);
    }

    /// Number of slots (threads that hold one now, or held one before).
    #[cfg(test)]
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.iter().count()
    }

    /// An owner access to the slot the calling thread owns in this pool,
    /// claimed (and registered for the exit flush) if needed. `None` once
    /// the thread is exiting (work then bypasses caches). Safe at any point
    /// of thread teardown: it asks no other crate for a thread id.
    fn access(&self) -> Option<OwnerAccess<'_, T>> {
        let serial = local::claim_serial()?;
        let id = self.id;
        let slot = match local::with_thread(|thread| thread.hinted_slot(id)).or_else(|| local::registered(id)) {
            // SAFETY: the hint or the thread's record holds this pool's slot
            // that the thread owns: a slot in `self.slots`, alive as long as
            // `self`, which the thread owns until its exit hook releases it.
            Some(addr) => unsafe { &*addr.cast::<Slot<T>>() },
            None => {
                let slot = local::with_thread(|thread| {
                    self.slots.claim(
                        |free| free.owner.try_claim(serial, thread),
                        || Slot {
                            cache: ThreadCache::new(self.specs.iter().copied(), self.budget),
                            owner: Owner::new(serial, thread),
                            seen: AtomicU64::new(u64::MAX),
                            taken: AtomicBool::new(false),
                        },
                    )
                });
                if !local::register(id, ptr::from_ref(slot).cast()) {
                    slot.owner.release(serial);
                    return None;
                }
                slot
            }
        };
        debug_assert!(slot.owner.owned_by(serial));
        Some(OwnerAccess { slot, serial, id, exiting: false })
    }
}

impl<T: Send + 'static> Drop for Caches<T> {
    /// Leaves the registry of live pools (`local.rs`), now that no one can
    /// hold the pool's state any more.
    fn drop(&mut self) {
        local::remove_pool(self.id);
    }
}

impl<T: Send + 'static> Slot<T> {
    /// The reclaimer's look at an owned slot: `true` when its owner made no
    /// get or release since the last look and its cache was not taken since.
    fn went_idle(&self) -> bool {
        let activity = (0..self.cache.len()).fold(0u64, |sum, class| {
            let c = self.cache.counters(class);
            sum.wrapping_add(c.gets.get()).wrapping_add(c.puts.get())
        });
        if self.seen.swap(activity, Relaxed) != activity {
            self.taken.store(false, Relaxed);
            return false;
        }
        !self.taken.load(Relaxed)
    }
}

/// An owner access to a slot the calling thread owns.
struct OwnerAccess<'a, T: Send + 'static> {
    slot: &'a Slot<T>,
    serial: u64,
    id: u64,
    /// The exit hook's flush: the hint, emptied for good, is not written
    /// again (the slot is released right after).
    exiting: bool,
}

impl<T: Send + 'static> Access<T> for OwnerAccess<'_, T> {
    /// Opens the access and validates it (`Owner::validate`): a hint that
    /// still holds this slot costs nothing more; a missed one is written
    /// again and the slot settled with a read-modify-write.
    fn with<R>(&self, f: impl FnOnce(&ThreadCache<T>) -> R) -> R {
        local::with_thread(|thread| {
            let _access = Bracket::begin(thread);
            let place = (self.slot.cache.hot().addr(), ptr::from_ref(self.slot).cast());
            self.slot.owner.validate(thread, self.serial, self.id, place, !self.exiting);
            f(&self.slot.cache)
        })
    }
}

/// An owner access, open until dropped: so that a panic inside one (an
/// internal assertion) still closes it, and the thread stays reclaimable.
struct Bracket<'t>(&'t ThreadState);

impl<'t> Bracket<'t> {
    fn begin(thread: &'t ThreadState) -> Self {
        thread.begin();
        Bracket(thread)
    }
}

impl Drop for Bracket<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn caches() -> Caches<u32> {
        let spec = ClassSpec { weight: 1, base: 2, max: 2, pooled: true };
        // An id no registered pool has: these tests use the layer directly.
        Caches::new(u64::MAX - 7, [spec], usize::MAX, usize::MAX)
    }

    /// The exit hook empties the thread's hints, then flushes: the flush must
    /// not write them again, or a get later in the thread's teardown would
    /// use a slot that is no longer the thread's.
    #[test]
    fn the_exit_flush_leaves_the_hint_empty() {
        let c = caches();
        std::thread::spawn(move || {
            c.push_slow(0, 1);
            assert!(c.pop(c.id, 0).is_some(), "the hint hits after a slow path");
            c.push_slow(0, 2);
            let serial = local::claim_serial().unwrap();
            let slot = local::registered(c.id).expect("registered");
            local::with_thread(|t| t.forget_all());
            c.flush_at_exit(slot, serial);
            assert_eq!(local::with_thread(|t| t.hint(c.id)), None, "the flush wrote the hint again");
            assert_eq!(c.depot_magazines(0).0, 1, "the cached item went to the depot");
        })
        .join()
        .unwrap();
    }
}
