//! The background reclaimer: one process-wide thread that calls
//! `reclaim_idle` on every pool that asked for it, each at its own interval.
//!
//! It starts with the first such pool, holds none of them alive (it keeps
//! their ids and looks each up in the registry of live pools only for the
//! length of one call, as the metrics collector does), and ends when the
//! last one has dropped.
//!
//! # Invariants
//!
//! - `State::running` is true exactly while a reclaimer thread exists that
//!   will see `pools` again before it exits; a pool added while it is false
//!   starts a new thread.
//! - A pool's entry leaves `pools` when the pool drops ([`stop`]), or when
//!   the thread finds it gone.
//!
//! Called by the pools when built and dropped.
#![forbid(unsafe_code)]

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;

use crate::cache::local;

/// The pools to reclaim, and whether the thread runs.
#[derive(Debug, Default)]
struct State {
    /// (pool id, interval, next due).
    pools: Vec<(u64, Duration, Instant)>,
    running: bool,
}

static STATE: Lazy<(Mutex<State>, Condvar)> = Lazy::new(Default::default);

fn state() -> MutexGuard<'static, State> {
    // Nothing panics while holding the lock; the state is valid at every step.
    STATE.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reclaims pool `id` every `every`, starting the thread if needed.
pub(crate) fn every(id: u64, every: Duration) {
    let mut s = state();
    s.pools.push((id, every, Instant::now() + every));
    if !s.running {
        s.running = true;
        let spawned = std::thread::Builder::new().name("magpool-reclaim".into()).spawn(run);
        if spawned.is_err() {
            // No thread: the pool works, only without background reclaim.
            s.running = false;
        }
    }
    STATE.1.notify_all();
}

/// Stops reclaiming pool `id` (it is dropping).
pub(crate) fn stop(id: u64) {
    state().pools.retain(|&(pool, _, _)| pool != id);
    STATE.1.notify_all();
}

/// Whether the reclaimer thread is running (for tests).
#[cfg(test)]
pub(crate) fn running() -> bool {
    state().running
}

/// The thread: sleeps until the next pool is due, reclaims every pool that
/// is, and exits when none is left.
fn run() {
    let mut s = state();
    loop {
        let Some(due) = s.pools.iter().map(|&(_, _, due)| due).min() else {
            s.running = false;
            return;
        };
        let now = Instant::now();
        if due > now {
            s = STATE.1.wait_timeout(s, due - now).unwrap_or_else(PoisonError::into_inner).0;
            continue;
        }
        let ready: Vec<u64> = s.pools.iter().filter(|&&(_, _, due)| due <= now).map(|&(id, _, _)| id).collect();
        for entry in s.pools.iter_mut().filter(|(_, _, due)| *due <= now) {
            entry.2 = now + entry.1;
        }
        drop(s);
        let mut gone = Vec::new();
        for id in ready {
            // The pool lives for this call only; then the thread holds nothing.
            match local::find_pool(id) {
                Some(pool) => {
                    pool.reclaim_idle();
                }
                None => gone.push(id),
            }
        }
        s = state();
        s.pools.retain(|(id, _, _)| !gone.contains(id));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// The only unit test that asks for a reclaimer, so it alone decides
    /// whether one runs.
    #[test]
    fn starts_with_a_pool_and_stops_when_it_drops() {
        assert!(!running());
        let pool = crate::Pool::builder().reclaim_interval(Duration::from_millis(5)).build().unwrap();
        assert!(running());
        drop((0..8).map(|_| pool.get(4096)).collect::<Vec<_>>());
        let began = Instant::now();
        while pool.stats().reclaims < 2 {
            assert!(began.elapsed() < Duration::from_secs(10), "the reclaimer never ran: {:?}", pool.stats());
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(pool);
        while running() {
            assert!(began.elapsed() < Duration::from_secs(10), "the reclaimer outlived its last pool");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(state().pools.is_empty());
    }
}
