//! The registry of live pools, thread identity, the per-thread state of the
//! owner protocol (`owner.rs`: the access flag and the slot hint), and
//! thread-exit hooks.
//!
//! A pool keeps its per-thread slots in a list (`slots.rs`) that a thread
//! walks only to claim one. This module holds the rest, per thread:
//!
//! - each thread gets a serial number (never reused), the unit of slot
//!   ownership (see `caches.rs`);
//! - a record of the slot the thread claimed in each pool ([`registered`]),
//!   kept by the exit hook below;
//! - a hook that, when the thread's thread-locals are destroyed, asks every
//!   live pool the thread claimed a slot in to flush and release that slot;
//! - its [`ThreadState`]: the flag a reclaimer reads, and a hint that maps a
//!   pool id to the slot the thread owns in it (as the address of the slot
//!   cache's class table): one thread-local load on the hot path.
//!
//! Hooks name pools by id, and only the registry holds a `Weak` to each live
//! pool, removed when the pool drops: a thread that used a pool keeps nothing
//! of it alive, not even the `Arc`'s allocation.
//!
//! # Invariants
//!
//! - `LIVE` maps the id of every pool whose shared state is alive to a
//!   `Weak` of it (the entry goes when that state drops, after the last
//!   `Arc`: `Caches`' drop); ids are never reused. So while anyone holds
//!   the state (a reclaimer, say), an exiting thread's hook still finds the
//!   pool and releases its slot, and no slot keeps a dead thread's state.
//! - `SERIAL` is 0 until the thread first claims a slot, then a unique
//!   non-zero number below `owner::REVOKED`, then [`EXITING`] once the hook
//!   has started running.
//! - `THREAD`'s hint holds `(id, addr)` only while this thread owns, in the
//!   pool `id`, the slot that `addr` points into and no reclaimer holds it:
//!   entries are written after a claim, a reclaimer revokes one before it
//!   holds a slot, and the hook empties them all (after setting
//!   [`EXITING`], so none is written again) before it releases any slot. A
//!   stale entry of a dropped pool is never read as valid, since ids are
//!   never reused. `THREAD` has no destructor and a const initialiser, so it
//!   is valid at every point of the thread's teardown, which a reclaimer
//!   reading it relies on.
//! - The hook holds the slot address with the pool id, so it reaches the slot
//!   directly. Nothing here asks another crate for a thread id, so every
//!   function is safe at any point of thread teardown (a first use then
//!   registers the hook late, and it runs after the destructor that used it).
//! - No allocation is made while the hook's record is borrowed: `register`
//!   takes the record out, edits it, and puts it back.
//!
//! Called by the layer's front: [`with_thread`] on every get and release,
//! the rest on slow paths only.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use once_cell::sync::Lazy;

use crate::cache::owner::ThreadState;
use crate::sync::atomic::{AtomicU64, Ordering::Relaxed};
use crate::sync::thread_local;

/// The address of a pool's per-thread slot, opaque here (`caches.rs` owns the
/// type). Valid while that pool is alive.
pub(crate) type SlotAddr = *const ();

/// What the registry can ask of a live pool.
pub(crate) trait LivePool: Send + Sync {
    /// Flushes and releases the slot at `slot` (this pool's, as registered by
    /// the calling thread) if thread `serial` still owns it. Called by the
    /// thread's exit hook, which keeps the pool alive meanwhile.
    fn flush_at_exit(&self, slot: SlotAddr, serial: u64);

    /// The pool's counters (for observers that hold only its id).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))] // the collector is the one observer
    fn stats(&self) -> crate::Stats;

    /// Gives back what nobody needed since the last call (the background
    /// reclaimer's call; see `reclaim.rs`).
    fn reclaim_idle(&self) -> usize;
}

/// `SERIAL` of a thread whose exit hook has started.
pub(crate) const EXITING: u64 = u64::MAX;

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);
static NEXT_POOL: AtomicU64 = AtomicU64::new(1);

/// Every live pool, by id. Locked only when a pool is made or dropped, when a
/// thread first uses a pool, at thread exit, and by the metrics collector.
static LIVE: Lazy<Mutex<HashMap<u64, Weak<dyn LivePool>>>> = Lazy::new(Default::default);

fn live() -> std::sync::MutexGuard<'static, HashMap<u64, Weak<dyn LivePool>>> {
    // Nothing panics while holding the lock, and the map is valid at every
    // step anyway: a poisoned lock is safe to keep using.
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Pools leaked for the life of the process (`Pool::leak`), by address:
/// kept reachable, so that leak checkers (LeakSanitizer, valgrind) see them
/// as the process's on purpose and not as leaks.
static LEAKED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Leaks a pool on purpose, for the life of the process, and records it
/// (see [`LEAKED`]): a lock and a push, once per leak.
pub(crate) fn leak<P: 'static>(pool: P) -> &'static P {
    let pool: &'static P = Box::leak(Box::new(pool));
    LEAKED.lock().unwrap_or_else(PoisonError::into_inner).push(std::ptr::from_ref(pool) as usize);
    pool
}

/// Enters a new pool in the registry; returns its id.
pub(crate) fn add_pool(pool: Weak<dyn LivePool>) -> u64 {
    let id = NEXT_POOL.fetch_add(1, Relaxed);
    live().insert(id, pool);
    id
}

/// Removes a pool whose shared state is dropping: from now on no hook or
/// collector reaches it.
pub(crate) fn remove_pool(id: u64) {
    live().remove(&id);
}

/// The pool with this id, if it is still alive. The `Arc` keeps it alive for
/// as long as the caller holds it, even if its `Pool` drops meanwhile.
pub(crate) fn find_pool(id: u64) -> Option<Arc<dyn LivePool>> {
    live().get(&id).and_then(Weak::upgrade)
}

thread_local! {
    static SERIAL: Cell<u64> = const { Cell::new(0) };
    // No destructor and a const initialiser: each access is a plain
    // thread-local load, valid at every point of thread teardown.
    static THREAD: ThreadState = const { ThreadState::new() };
    static HOOK: ExitHook = const { ExitHook { slots: RefCell::new(Vec::new()), prune_at: Cell::new(PRUNE_MIN) } };
}

/// Fewest records at which `register` forgets dropped pools.
const PRUNE_MIN: usize = 8;

/// The slots this thread claimed, with their pools' ids; flushes and releases
/// them on drop.
struct ExitHook {
    /// Sorted by pool id, for a binary search on slow paths.
    slots: RefCell<Vec<(u64, SlotAddr)>>,
    /// Length at which `register` next forgets dropped pools: twice what
    /// the last pruning kept, so that pruning costs O(1) per register,
    /// amortised.
    prune_at: Cell<usize>,
}

impl Drop for ExitHook {
    fn drop(&mut self) {
        let serial = SERIAL.with(|s| s.replace(EXITING));
        THREAD.with(ThreadState::forget_all);
        for (id, slot) in self.slots.take() {
            if let Some(pool) = find_pool(id) {
                pool.flush_at_exit(slot, serial);
            }
        }
    }
}

/// Runs `f` with this thread's [`ThreadState`]: on the hot path, one
/// thread-local address computation.
///
/// `LocalKey::with` gets only a closure that returns the address: with the
/// whole of `f` inside it, LLVM kept `with` out of line, a call and 48
/// instructions more per get or release (callgrind).
#[inline(always)]
pub(crate) fn with_thread<R>(f: impl FnOnce(&ThreadState) -> R) -> R {
    let thread: *const ThreadState = THREAD.with(std::ptr::from_ref);
    // SAFETY: `THREAD` has a const initialiser and no destructor, so its
    // storage is valid until this thread ends, and `f` runs on this thread,
    // within this call.
    f(unsafe { &*thread })
}

/// This thread's serial: 0 if it never registered, [`EXITING`] once exiting.
#[inline]
fn serial() -> u64 {
    // `SERIAL` has no destructor, so it is readable at any point of teardown.
    SERIAL.with(Cell::get)
}

/// This thread's serial for claiming a slot, assigned on first use; `None`
/// once the thread is exiting (the caller then works without a cache).
pub(crate) fn claim_serial() -> Option<u64> {
    match serial() {
        EXITING => None,
        0 => {
            let fresh = NEXT_SERIAL.fetch_add(1, Relaxed);
            SERIAL.with(|s| s.set(fresh));
            Some(fresh)
        }
        known => Some(known),
    }
}

/// The slot this thread registered in pool `id`, if any; `None` too once the
/// thread's exit hook is gone. A binary search over the pools the thread has
/// used, on slow paths only.
pub(crate) fn registered(id: u64) -> Option<SlotAddr> {
    HOOK.try_with(|hook| {
        let slots = hook.slots.borrow();
        slots.binary_search_by_key(&id, |&(pool, _)| pool).ok().map(|at| slots[at].1)
    })
    .ok()
    .flatten()
}

/// Registers the slot this thread just claimed in pool `id`, to be flushed
/// and released when the thread exits; `false` when the thread is already
/// exiting (the caller must then release the slot itself).
pub(crate) fn register(id: u64, slot: SlotAddr) -> bool {
    if serial() == EXITING {
        return false;
    }
    HOOK.try_with(|hook| {
        // Out of the cell for the edit, which may allocate (module invariants).
        let mut slots = hook.slots.take();
        if slots.len() >= hook.prune_at.get() {
            let live = live();
            slots.retain(|(id, _)| live.contains_key(id));
            hook.prune_at.set((2 * slots.len()).max(PRUNE_MIN));
        }
        // Ids grow over time, so this is nearly always the end.
        let at = slots.partition_point(|&(pool, _)| pool < id);
        slots.insert(at, (id, slot));
        let nested = hook.slots.replace(slots);
        debug_assert!(nested.is_empty(), "magpool: a slot was registered from inside a registration");
    })
    .is_ok()
}
