//! [`Caches`]: the generic layer of one pool: every thread's [`ThreadCache`],
//! the [`Depot`] behind them, and the counters of work done outside any cache.
//! A pool routes each get and release here with a class index; what an item
//! is, how it is made and what it weighs are the pool's business.
//!
//! # Invariants
//!
//! - A slot's cache is used only by the thread whose serial is in its `owner`.
//!   A thread claims a slot (`0 → serial`, Acquire) before its first use, and
//!   its exit hook flushes the slot and releases it (`serial → 0`, Release)
//!   after its last, so each owner's accesses happen after the previous
//!   owner's. A thread finds its slot through its own thread-local record
//!   (`local.rs`); a thread without one claims a free slot from the list
//!   (`slots.rs`), or adds one.
//! - The thread's slot hint (`local::current`) holds the [`Hot`] address of a
//!   slot's cache only while the thread owns the slot (`local.rs`), so a hint
//!   hit needs no other check.
//! - `caps` has one entry per class; a class with base capacity 0 is never
//!   cached (its items are made on every get and dropped on every release).
//!
//! Called by the pools: `pop`/`push` on every get and release, the rest on
//! slow paths, at thread exit and from `stats()`.

use std::ptr;

use crate::cache::counters::{ClassCounters, Reading};
use crate::cache::depot::Depot;
use crate::cache::local::{self, SlotAddr};
use crate::cache::slots::Slots;
use crate::cache::thread_cache::{Hot, ThreadCache};
use crate::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

/// Every thread's cache of one pool, and the depot.
///
/// # Invariants
///
/// See the module docs.
pub(crate) struct Caches<T: Send + 'static> {
    depot: Depot<T>,
    /// Base and maximum magazine capacity per class.
    caps: Box<[(usize, usize)]>,
    /// Every thread's slot; a slot's address never changes while the pool
    /// lives.
    slots: Slots<Slot<T>>,
    /// Counters for work done without a cache (thread teardown, depot trim).
    remote: Box<[ClassCounters]>,
}

/// One thread's state in one pool.
struct Slot<T: Send + 'static> {
    cache: ThreadCache<T>,
    /// Serial of the thread that owns `cache`, 0 while none does (see the
    /// module invariants for how ownership passes).
    owner: AtomicU64,
}

impl<T: Send + 'static> std::fmt::Debug for Caches<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches").field("caps", &self.caps).finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Caches<T> {
    /// Caches for classes whose items weigh `item_bytes` against the depot's
    /// `limit`, with the given (base, maximum) magazine capacities.
    pub(crate) fn new(classes: impl IntoIterator<Item = (usize, (usize, usize))>, limit: usize) -> Self {
        let (item_bytes, caps): (Vec<usize>, Vec<(usize, usize)>) = classes.into_iter().unzip();
        Caches {
            remote: caps.iter().map(|_| ClassCounters::default()).collect(),
            depot: Depot::new(item_bytes, limit),
            caps: caps.into(),
            slots: Slots::new(),
        }
    }

    /// Number of classes.
    pub(crate) fn classes(&self) -> usize {
        self.caps.len()
    }

    /// Pops the calling thread's loaded magazine of `class`, if the thread's
    /// hint has its cache for pool `id`: the hot path of a get.
    #[inline(always)]
    pub(crate) fn pop(&self, id: u64, class: usize) -> Option<T> {
        let cache = self.hinted(id)?;
        // SAFETY: `hinted` returns the cache of a live slot the calling
        // thread owns; the pool passes a class below `classes()`.
        unsafe { cache.pop(class) }
    }

    /// Pushes onto the calling thread's loaded magazine of `class`, or hands
    /// the item back (no hint, or the magazine is full): the hot path of a
    /// release.
    #[inline(always)]
    pub(crate) fn push(&self, id: u64, class: usize, item: T) -> Result<(), T> {
        match self.hinted(id) {
            // SAFETY: as in `pop`.
            Some(cache) => unsafe { cache.push(class, item) },
            None => Err(item),
        }
    }

    /// A get after [`pop`](Self::pop) missed: the thread's magazines, the
    /// depot, or else `make`. Without a cache (thread teardown) it makes.
    ///
    /// # Errors
    ///
    /// Whatever `make` returns; nothing is counted then.
    #[cold]
    #[inline(never)]
    pub(crate) fn pop_slow<E>(&self, id: u64, class: usize, make: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        match self.local_slot(id) {
            // The hint may have missed with items cached: try the magazine
            // first, as the hot path would have.
            // SAFETY: `local_slot` returns a slot the calling thread owns.
            Some(slot) => match unsafe { slot.cache.pop_local(class) } {
                Some(item) => Ok(item),
                // SAFETY: as above.
                None => unsafe { slot.cache.pop_slow(class, &self.depot, make) },
            },
            None => {
                let item = make()?;
                self.remote[class].allocations.bump_shared(1);
                self.remote[class].gets.bump_shared(1);
                Ok(item)
            }
        }
    }

    /// A release after [`push`](Self::push) handed the item back: the
    /// thread's magazines, the depot, or else the item is dropped.
    #[cold]
    #[inline(never)]
    pub(crate) fn push_slow(&self, id: u64, class: usize, item: T) {
        match self.local_slot(id) {
            // As in `pop_slow`: the magazine may have room after a hint miss.
            // SAFETY: `local_slot` returns a slot the calling thread owns.
            Some(slot) => match unsafe { slot.cache.push_local(class, item) } {
                Ok(()) => {}
                // SAFETY: as above.
                Err(item) => unsafe { slot.cache.push_slow(class, item, &self.depot) },
            },
            None => {
                drop(item);
                self.remote[class].puts.bump_shared(1);
                self.remote[class].discarded.bump_shared(1);
            }
        }
    }

    /// Frees what the depot and the calling thread's cache hold.
    pub(crate) fn trim(&self, id: u64) {
        if let Some(slot) = self.local_slot(id) {
            // SAFETY: `local_slot` returns a slot the calling thread owns.
            unsafe { slot.cache.drain() };
        }
        for class in 0..self.classes() {
            let freed = self.depot.drain(class);
            self.remote[class].discarded.bump_shared(freed);
            self.remote[class].trimmed.bump_shared(freed);
        }
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

    /// Item bytes the depot holds, all classes.
    pub(crate) fn depot_bytes(&self) -> usize {
        self.depot.retained_bytes()
    }

    /// The exit hook's flush of the slot this thread registered (`local.rs`):
    /// gives its cache to the depot and releases the slot, if thread `serial`
    /// still owns it.
    pub(crate) fn flush_at_exit(&self, slot: SlotAddr, serial: u64) {
        // SAFETY: the hook passes the address this thread registered for this
        // pool, a slot in `self.slots`, alive as long as `self` (which the
        // hook holds an `Arc` to).
        let slot = unsafe { &*slot.cast::<Slot<T>>() };
        if slot.owner.load(Relaxed) == serial {
            // SAFETY: thread `serial`, the caller, owns the slot.
            unsafe { slot.cache.flush(&self.depot) };
            slot.owner.store(0, Release);
        }
    }

    /// Number of slots (threads that hold one now, or held one before).
    #[cfg(test)]
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.iter().count()
    }

    /// The cache of the slot the calling thread owns in pool `id`, if its
    /// hint has it: the hot path's one thread-local load.
    #[inline(always)]
    fn hinted(&self, id: u64) -> Option<Hot<T>> {
        let addr = local::current(id)?;
        // The slot lives in `self.slots`, which never moves or frees a value
        // before it drops, and the pool's `&self` keeps `self` alive.
        // SAFETY: so the slot is alive, and the hint maps pool `id` to its
        // `Hot` address only while this thread owns it (`local.rs`).
        Some(unsafe { Hot::from_addr(addr) })
    }

    /// The slot the calling thread owns in pool `id`, claimed (and registered
    /// for the exit flush) if needed. `None` once the thread is exiting (work
    /// then bypasses caches). Safe at any point of thread teardown: it asks
    /// no other crate for a thread id.
    fn local_slot(&self, id: u64) -> Option<&Slot<T>> {
        let serial = local::claim_serial()?;
        let slot = match local::registered(id) {
            // SAFETY: the thread registered this address for this pool: a
            // slot in `self.slots`, which lives as long as `self`, and which
            // the thread owns until its exit hook releases it.
            Some(addr) => unsafe { &*addr.cast::<Slot<T>>() },
            None => {
                let slot = self.slots.claim(
                    // Load first: a failed compare-exchange would still take
                    // the owned slot's cache line from its owner.
                    |free| {
                        free.owner.load(Relaxed) == 0
                            && free.owner.compare_exchange(0, serial, Acquire, Relaxed).is_ok()
                    },
                    || Slot { cache: ThreadCache::new(self.caps.iter().copied()), owner: AtomicU64::new(serial) },
                );
                if !local::register(id, ptr::from_ref(slot).cast()) {
                    slot.owner.store(0, Release);
                    return None;
                }
                slot
            }
        };
        debug_assert_eq!(slot.owner.load(Relaxed), serial);
        local::remember(id, slot.cache.hot().addr());
        Some(slot)
    }
}
