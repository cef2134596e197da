//! The [`Stats`] snapshot a pool's `stats()` returns: the counters of
//! `cache/counters.rs`, summed over every thread and named for users.
//!
//! No Prometheus types here: `metrics` adapts these numbers.
#![forbid(unsafe_code)]

use crate::cache::Reading;

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
    /// Of `discarded`, buffers freed by
    /// [`Pool::reclaim_idle`](crate::Pool::reclaim_idle) (by hand or by the
    /// background reclaimer).
    pub reclaimed: u64,
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
            reclaimed: r.reclaimed,
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
    /// Bytes of free buffers held in threads' caches, all threads:
    /// `retained_bytes - depot_bytes` (each thread's share is never above
    /// [`thread_cache_bytes`](crate::Builder::thread_cache_bytes)).
    pub thread_cached_bytes: u64,
    /// Bytes of buffers freed by [`Pool::reclaim_idle`](crate::Pool::reclaim_idle)
    /// so far (by hand or by the background reclaimer).
    pub reclaimed_bytes: u64,
    /// Calls of [`Pool::reclaim_idle`](crate::Pool::reclaim_idle) so far.
    pub reclaims: u64,
    /// Per size class, smallest first.
    pub classes: Vec<ClassStats>,
    /// The oversized pseudo-class (`size == 0`): its `gets` equals `oversized`.
    pub oversized_class: ClassStats,
}

impl Stats {
    /// Totals `classes` and `oversized_class` into the top-level fields.
    pub(crate) fn from_classes(
        classes: Vec<ClassStats>,
        oversized_class: ClassStats,
        depot_bytes: usize,
        reclaims: u64,
    ) -> Self {
        let mut s =
            Stats { oversized: oversized_class.gets, depot_bytes: depot_bytes as u64, reclaims, ..Stats::default() };
        for c in classes.iter().chain(std::iter::once(&oversized_class)) {
            s.allocations = s.allocations.wrapping_add(c.allocations);
            s.gets = s.gets.wrapping_add(c.gets);
            s.puts = s.puts.wrapping_add(c.puts);
            s.in_use = s.in_use.wrapping_add(c.in_use);
            s.discarded = s.discarded.wrapping_add(c.discarded);
            s.retained_bytes = s.retained_bytes.wrapping_add(c.retained_bytes);
            s.reclaimed_bytes = s.reclaimed_bytes.wrapping_add(c.reclaimed.wrapping_mul(c.size as u64));
        }
        // The two reads are not one instant: never below zero.
        s.thread_cached_bytes = s.retained_bytes.saturating_sub(s.depot_bytes);
        s.classes = classes;
        s.oversized_class = oversized_class;
        s
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::cache::ClassCounters;

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
        let total = Stats::from_classes(vec![s.clone(), s], ClassStats::default(), 4096, 0);
        assert_eq!(total.thread_cached_bytes, 3 * 4096);
        assert_eq!((total.gets, total.in_use, total.retained_bytes), (18, 4, 4 * 4096));
    }
}
