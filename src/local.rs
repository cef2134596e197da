//! The registry of live pools, thread identity, and thread-exit hooks.
//!
//! `thread_local::ThreadLocal` keeps a pool's per-thread slots alive until the
//! pool drops and hands a dead thread's slot to the next thread that gets the
//! same id; it runs nothing at thread exit. This module adds the missing
//! piece: each thread gets a serial number (never reused) and a hook that, when
//! the thread's thread-locals are destroyed, asks every live pool it touched to
//! flush this thread's magazines to the depot.
//!
//! Hooks name pools by id, and only the registry holds a `Weak` to each live
//! pool, removed when the pool drops: a thread that used a pool keeps nothing
//! of it alive, not even the `Arc`'s allocation.
//!
//! # Invariants
//!
//! - `LIVE` maps the id of every pool that has not begun dropping to a `Weak`
//!   of its shared state; ids are never reused.
//! - `SERIAL` is 0 until the thread first registers, then a unique non-zero
//!   number, then [`EXITING`] once the hook has started running.
//! - A pool is flushed at exit only through `ThreadLocal::get`, which returns
//!   the slot only while this thread still holds its id; so a flush never
//!   races with a thread that has taken the id over.
//! - Registering happens after the pool's `ThreadLocal::get_or`, so the
//!   thread_local crate's own id guard is registered first and, destructors
//!   running last-in first-out, outlives our hook.
//!
//! Called by the pool's slow paths only.
#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use once_cell::sync::Lazy;

use crate::sync::atomic::{AtomicU64, Ordering::Relaxed};
use crate::sync::thread_local;

/// What the registry can ask of a live pool.
pub(crate) trait LivePool: Send + Sync {
    /// Flushes the calling thread's cache, if the slot is still registered to
    /// thread `serial`. Called by the thread's exit hook.
    fn flush_at_exit(&self, serial: u64);

    /// The pool's counters (for observers that hold only its id).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))] // the collector is the one observer
    fn stats(&self) -> crate::Stats;
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

/// Enters a new pool in the registry; returns its id.
pub(crate) fn add_pool(pool: Weak<dyn LivePool>) -> u64 {
    let id = NEXT_POOL.fetch_add(1, Relaxed);
    live().insert(id, pool);
    id
}

/// Removes a dropping pool: from now on no hook or collector reaches it.
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
    static HOOK: ExitHook = const { ExitHook { pools: RefCell::new(Vec::new()) } };
}

/// Holds the ids of the pools this thread registered with; flushes them on drop.
struct ExitHook {
    pools: RefCell<Vec<u64>>,
}

impl Drop for ExitHook {
    fn drop(&mut self) {
        let serial = SERIAL.with(|s| s.replace(EXITING));
        for id in self.pools.take() {
            if let Some(pool) = find_pool(id) {
                pool.flush_at_exit(serial);
            }
        }
    }
}

/// This thread's serial: 0 if it never registered, [`EXITING`] once exiting.
#[inline]
pub(crate) fn serial() -> u64 {
    // `SERIAL` has no destructor, so it is readable at any point of teardown.
    SERIAL.with(Cell::get)
}

/// Registers pool `id` to be flushed when this thread exits; returns this
/// thread's serial, or `None` when the thread is already exiting (the caller
/// then works without a cache).
pub(crate) fn register(id: u64) -> Option<u64> {
    if serial() == EXITING {
        return None;
    }
    HOOK.try_with(|hook| {
        let serial = match serial() {
            0 => {
                let fresh = NEXT_SERIAL.fetch_add(1, Relaxed);
                SERIAL.with(|s| s.set(fresh));
                fresh
            }
            known => known,
        };
        let mut pools = hook.pools.borrow_mut();
        if pools.len() >= 8 && pools.len().is_power_of_two() {
            // Forget dropped pools now and then: amortised O(1) per register.
            let live = live();
            pools.retain(|id| live.contains_key(id));
        }
        pools.push(id);
        serial
    })
    .ok()
}
