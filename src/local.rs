//! Thread identity and thread-exit hooks for the pools a thread has touched.
//!
//! `thread_local::ThreadLocal` keeps a pool's per-thread slots alive until the
//! pool drops and hands a dead thread's slot to the next thread that gets the
//! same id; it runs nothing at thread exit. This module adds the missing
//! piece: each thread gets a serial number (never reused) and a hook that, when
//! the thread's thread-locals are destroyed, asks every live pool it touched to
//! flush this thread's magazines to the depot.
//!
//! # Invariants
//!
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
use std::sync::Weak;

use crate::sync::atomic::{AtomicU64, Ordering::Relaxed};
use crate::sync::thread_local;

/// What a pool does when a thread that used it exits.
pub(crate) trait ExitFlush: Send + Sync {
    /// Flushes the calling thread's cache, if the slot is still registered to
    /// thread `serial`.
    fn flush_at_exit(&self, serial: u64);
}

/// `SERIAL` of a thread whose exit hook has started.
pub(crate) const EXITING: u64 = u64::MAX;

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static SERIAL: Cell<u64> = const { Cell::new(0) };
    static HOOK: ExitHook = const { ExitHook { pools: RefCell::new(Vec::new()) } };
}

/// Holds the pools this thread registered with; flushes them on drop.
struct ExitHook {
    pools: RefCell<Vec<Weak<dyn ExitFlush>>>,
}

impl Drop for ExitHook {
    fn drop(&mut self) {
        let serial = SERIAL.with(|s| s.replace(EXITING));
        for pool in self.pools.take() {
            if let Some(pool) = pool.upgrade() {
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

/// Registers `pool` to be flushed when this thread exits; returns this thread's
/// serial, or `None` when the thread is already exiting (the caller then works
/// without a cache).
pub(crate) fn register(pool: Weak<dyn ExitFlush>) -> Option<u64> {
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
        pools.retain(|p| p.strong_count() > 0);
        pools.push(pool);
        serial
    })
    .ok()
}
