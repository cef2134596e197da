//! Owner-written counters, and the one safe way to sum them.
//!
//! Each thread cache carries one [`ClassCounters`] per class, written only by
//! the thread that owns the cache, with a plain load and store: no atomic
//! read-modify-write, no shared cache line written on the hot path. Paths that
//! run outside any cache (thread teardown, `trim` of the depot) use the
//! layer's shared counters with `fetch_add`. A pool's `stats()` sums both
//! when asked.
//!
//! # Invariants
//!
//! - `puts` is stored with Release and summed (with Acquire loads) before any
//!   `gets` is read. A put of an item happens after its get, so a reader that
//!   sees the put also sees the get: `in_use = gets - puts` is never negative.
//! - Per class, `allocations - discarded - in_use` is the number of items
//!   the pool holds for reuse, exact whenever no get or release is running.
//!
//! Called by the thread caches and the pools' `stats()`.
#![forbid(unsafe_code)]

use crate::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

/// A counter written by one thread at a time, read by any.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Owner-only increment: a load and a store, no read-modify-write.
    /// `Release` so that readers that see it also see what came before.
    #[inline(always)]
    pub(crate) fn bump_local(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Release);
    }

    /// Increment from any thread (slow paths only).
    #[inline]
    pub(crate) fn bump_shared(&self, n: u64) {
        self.0.fetch_add(n, Release);
    }

    /// Acquire: pairs with the Release in the bumps.
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Acquire)
    }
}

/// The counters of one class in one thread cache (or the pool's shared set).
#[derive(Debug, Default)]
pub(crate) struct ClassCounters {
    /// Items handed out.
    pub(crate) gets: Counter,
    /// Items given back.
    pub(crate) puts: Counter,
    /// Items made because no cache or depot had one.
    pub(crate) allocations: Counter,
    /// Items dropped (freed) instead of kept: retention limit, trim, teardown,
    /// oversized release.
    pub(crate) discarded: Counter,
    /// Of `discarded`, those dropped by `trim`.
    pub(crate) trimmed: Counter,
    /// Full magazines taken from the depot.
    pub(crate) refills: Counter,
    /// Full magazines given to the depot.
    pub(crate) spills: Counter,
    /// Of `discarded`, those freed by a reclaim of idle memory.
    pub(crate) reclaimed: Counter,
}

/// A point-in-time view of one counters set, read puts-first.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Reading {
    pub(crate) gets: u64,
    pub(crate) puts: u64,
    pub(crate) allocations: u64,
    pub(crate) discarded: u64,
    pub(crate) trimmed: u64,
    pub(crate) refills: u64,
    pub(crate) spills: u64,
    pub(crate) reclaimed: u64,
}

impl Reading {
    /// Sums counter sets the one safe way: every put side, then every get side.
    /// (Reading gets first could count a put whose get it missed: `in_use`
    /// would go negative. The loom mutant `stats_gets_first` does exactly that.)
    /// `sets` is called twice and must yield the same counter sets each time.
    pub(crate) fn sum<'a, I>(sets: impl Fn() -> I) -> Reading
    where
        I: Iterator<Item = &'a ClassCounters>,
    {
        let mut r = Reading::default();
        if cfg!(all(loom, magpool_mutant = "stats_gets_first")) {
            sets().for_each(|c| r.add_get_side(c));
            sets().for_each(|c| r.add_put_side(c));
        } else {
            sets().for_each(|c| r.add_put_side(c));
            sets().for_each(|c| r.add_get_side(c));
        }
        r
    }

    /// Adds the "put side" of `c` (everything but gets and allocations).
    pub(crate) fn add_put_side(&mut self, c: &ClassCounters) {
        self.puts = self.puts.wrapping_add(c.puts.get());
        self.discarded = self.discarded.wrapping_add(c.discarded.get());
        self.trimmed = self.trimmed.wrapping_add(c.trimmed.get());
        self.spills = self.spills.wrapping_add(c.spills.get());
        self.reclaimed = self.reclaimed.wrapping_add(c.reclaimed.get());
    }

    /// Adds the "get side" of `c`. Call after every `add_put_side` of a sum.
    pub(crate) fn add_get_side(&mut self, c: &ClassCounters) {
        self.gets = self.gets.wrapping_add(c.gets.get());
        self.allocations = self.allocations.wrapping_add(c.allocations.get());
        self.refills = self.refills.wrapping_add(c.refills.get());
    }
}
