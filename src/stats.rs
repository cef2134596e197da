//! Counters and the [`Stats`] snapshot.
//!
//! Each thread cache carries one [`ClassCounters`] per class, written only by
//! the thread that owns the cache, with a plain load and store: no atomic
//! read-modify-write, no shared cache line written on the hot path. Paths that
//! run outside any cache (thread teardown, `trim` of the depot) use the pool's
//! shared counters with `fetch_add`. [`Pool::stats`](crate::Pool::stats) sums
//! both when asked.
//!
//! # Invariants
//!
//! - `puts` is stored with Release and summed (with Acquire loads) before any
//!   `gets` is read. A put of a buffer happens after its get, so a reader that
//!   sees the put also sees the get: `in_use = gets - puts` is never negative.
//! - Per class, `allocations - discarded - in_use` is the number of blocks
//!   the pool holds for reuse, exact whenever no get or release is running.
//!
//! No Prometheus types here: `metrics` adapts these numbers.
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
        if cfg!(magpool_mutant = "stats_gets_first") {
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
    }

    /// Adds the "get side" of `c`. Call after every `add_put_side` of a sum.
    pub(crate) fn add_get_side(&mut self, c: &ClassCounters) {
        self.gets = self.gets.wrapping_add(c.gets.get());
        self.allocations = self.allocations.wrapping_add(c.allocations.get());
        self.refills = self.refills.wrapping_add(c.refills.get());
    }
}

/// Counters of one size class, summed over every thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClassStats {
    /// Class size in bytes (0 for the oversized pseudo-class).
    pub size: usize,
    /// Buffers obtained from the global allocator.
    pub allocations: u64,
    /// Buffers handed out.
    pub gets: u64,
    /// Buffers given back.
    pub puts: u64,
    /// Buffers handed out and not yet given back: `gets - puts`.
    pub in_use: u64,
    /// Buffers freed to the global allocator instead of kept.
    pub discarded: u64,
    /// Bytes of free buffers the pool holds (thread caches and depot).
    pub retained_bytes: u64,
    /// Of `discarded`, buffers freed by [`Pool::trim`](crate::Pool::trim).
    pub trimmed: u64,
    /// Full magazines taken from the depot by thread caches.
    pub refills: u64,
    /// Full magazines given to the depot by thread caches.
    pub spills: u64,
    /// Full magazines in the depot now.
    pub depot_full_magazines: u64,
    /// Empty magazines in the depot now.
    pub depot_empty_magazines: u64,
}

impl ClassStats {
    pub(crate) fn from_reading(size: usize, r: Reading, depot: (usize, usize)) -> Self {
        let in_use = r.gets.wrapping_sub(r.puts);
        let held = r.allocations.saturating_sub(r.discarded).saturating_sub(in_use);
        ClassStats {
            size,
            allocations: r.allocations,
            gets: r.gets,
            puts: r.puts,
            in_use,
            discarded: r.discarded,
            retained_bytes: held.saturating_mul(size as u64),
            trimmed: r.trimmed,
            refills: r.refills,
            spills: r.spills,
            depot_full_magazines: depot.0 as u64,
            depot_empty_magazines: depot.1 as u64,
        }
    }
}

/// Counters of a whole pool, from [`Pool::stats`](crate::Pool::stats).
///
/// The first seven fields are the original design's counters, totalled over
/// every class including oversized buffers: `in_use == gets - puts` and, when
/// no get or release is running,
/// `retained_bytes == Σ (allocations - discarded - in_use) × class size`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Buffers obtained from the global allocator (pooled and oversized).
    pub allocations: u64,
    /// Buffers handed out.
    pub gets: u64,
    /// Buffers given back.
    pub puts: u64,
    /// Buffers out now: `gets - puts`.
    pub in_use: u64,
    /// Oversized buffers handed out (allocated exactly, freed on drop).
    pub oversized: u64,
    /// Buffers freed to the global allocator (retention limit, trim, thread
    /// teardown, and every oversized buffer on release).
    pub discarded: u64,
    /// Bytes of free buffers held for reuse, in thread caches and the depot.
    pub retained_bytes: u64,
    /// Bytes the depot holds in full magazines (never above
    /// [`max_retained_bytes`](crate::Builder::max_retained_bytes)).
    pub depot_bytes: u64,
    /// Per size class, smallest first.
    pub classes: Vec<ClassStats>,
    /// The oversized pseudo-class (`size == 0`): its `gets` equals `oversized`.
    pub oversized_class: ClassStats,
}

impl Stats {
    /// Totals `classes` and `oversized_class` into the top-level fields.
    pub(crate) fn from_classes(classes: Vec<ClassStats>, oversized_class: ClassStats, depot_bytes: usize) -> Self {
        let mut s = Stats { oversized: oversized_class.gets, depot_bytes: depot_bytes as u64, ..Stats::default() };
        for c in classes.iter().chain(std::iter::once(&oversized_class)) {
            s.allocations = s.allocations.wrapping_add(c.allocations);
            s.gets = s.gets.wrapping_add(c.gets);
            s.puts = s.puts.wrapping_add(c.puts);
            s.in_use = s.in_use.wrapping_add(c.in_use);
            s.discarded = s.discarded.wrapping_add(c.discarded);
            s.retained_bytes = s.retained_bytes.wrapping_add(c.retained_bytes);
        }
        s.classes = classes;
        s.oversized_class = oversized_class;
        s
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn derived_fields() {
        let c = ClassCounters::default();
        c.allocations.bump_local(5);
        c.gets.bump_local(9);
        c.puts.bump_shared(7);
        c.discarded.bump_local(1);
        let mut r = Reading::default();
        r.add_put_side(&c);
        r.add_get_side(&c);
        let s = ClassStats::from_reading(4096, r, (1, 2));
        assert_eq!((s.in_use, s.retained_bytes), (2, 2 * 4096));
        let total = Stats::from_classes(vec![s.clone(), s], ClassStats::default(), 0);
        assert_eq!((total.gets, total.in_use, total.retained_bytes), (18, 4, 4 * 4096));
    }
}
