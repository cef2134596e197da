//! [`Depot`]: the shared, lock-free store of full and empty magazines, per
//! class (Bonwick & Adams 2001, §3.3), on `crossbeam-epoch`.
//!
//! # Invariants
//!
//! - Each class has two Treiber stacks: `full` (magazines holding at least one
//!   item) and `empty`. A magazine is in at most one stack, and a popped
//!   magazine belongs to exactly one popper.
//! - The stacks are `stack.rs`'s epoch-protected Treiber stacks; a class's
//!   two recycle their nodes through one [`Shells`] of the class's own: a popped node is reused only after
//!   every thread that could have read it has unpinned (no ABA, no
//!   use-after-free), and magazine traffic makes no allocator call once warm.
//! - `retained` is the weight of the items in `full` stacks plus the weight
//!   reserved by pushes in flight; it never exceeds `limit`.
//! - Per class and stack, `low` is at most the fewest magazines the stack
//!   held since the last [`reclaim`](Depot::reclaim) (approximately: stack
//!   lengths are read without a lock). Those magazines were not needed in
//!   that interval: the working set of Bonwick & Adams §3.3.
//! - Items are never dropped while a guard is held: what the depot frees is
//!   collected under the pin and dropped after it, so an item's `Drop` never
//!   runs inside an epoch critical section of magpool's collector.
//!
//! Called by the layer's slow paths (refill, spill, exit flush), by `trim`
//! and by the reclaimer. Knows nothing of bytes: items are opaque; a class's
//! `weight` is only how much one item counts against the retention limit.

use crate::cache::magazine::Magazine;
use crate::cache::stack::{Shells, Stack};
use crate::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use crate::sync::epoch::{self, Guard};

// === impl Depot ===

/// Full and empty magazines for each class, with a shared retention limit.
///
/// # Invariants
///
/// See the module docs. `classes[c].weight` is the weight of one item of
/// class `c` against `limit`.
#[derive(Debug)]
pub(crate) struct Depot<T: Send + 'static> {
    classes: Box<[DepotClass<T>]>,
    retained: AtomicUsize,
    limit: usize,
}

/// One class's stacks, on cache lines of their own (128 bytes, as
/// crossbeam's `CachePadded` on x86_64), so that exchanges of two classes on
/// two cores never contend for a line.
#[derive(Debug)]
#[repr(align(128))]
struct DepotClass<T: Send + 'static> {
    full: Stack<Magazine<T>>,
    empty: Stack<Magazine<T>>,
    /// Fewest magazines in `full` / `empty` since the last reclaim.
    low_full: AtomicUsize,
    low_empty: AtomicUsize,
    weight: usize,
}

impl<T: Send + 'static> Depot<T> {
    /// A depot for classes whose items weigh `weights`, keeping at most
    /// `limit` weight in full magazines.
    pub(crate) fn new(weights: impl IntoIterator<Item = usize>, limit: usize) -> Self {
        let classes = weights
            .into_iter()
            .map(|weight| {
                // Shells per class, on the class's own lines: two classes'
                // exchanges never contend for one list head.
                let shells = Shells::new();
                DepotClass {
                    full: Stack::new(shells.clone()),
                    empty: Stack::new(shells),
                    low_full: AtomicUsize::new(0),
                    low_empty: AtomicUsize::new(0),
                    weight,
                }
            })
            .collect();
        Depot { classes, retained: AtomicUsize::new(0), limit }
    }

    fn weight(&self, class: usize, mag: &Magazine<T>) -> usize {
        mag.len().saturating_mul(self.classes[class].weight)
    }

    /// Pins the calling thread on magpool's collector: every operation below
    /// takes the guard, so an exchange (a full magazine for an empty one)
    /// costs one pin, and a thread's exit flush one pin in all.
    #[inline]
    pub(crate) fn pin(&self) -> Guard {
        epoch::pin()
    }

    /// Takes the most recently stored full magazine. Lock-free.
    pub(crate) fn pop_full(&self, class: usize, guard: &Guard) -> Option<Magazine<T>> {
        let c = &self.classes[class];
        let mag = c.full.pop(guard)?;
        lower(&c.low_full, c.full.len());
        self.retained.fetch_sub(self.weight(class, &mag), Relaxed);
        mag.assert_valid();
        Some(mag)
    }

    /// Stores a non-empty magazine, or hands it back when keeping it would put
    /// the depot over its retention limit. Lock-free.
    ///
    /// A placeholder (capacity 0) is always handed back: a refill must never
    /// take one for a full magazine.
    pub(crate) fn push_full(&self, class: usize, mag: Magazine<T>, guard: &Guard) -> Result<(), Magazine<T>> {
        if mag.capacity() == 0 || mag.is_empty() {
            return Err(mag);
        }
        mag.assert_valid();
        let bytes = self.weight(class, &mag);
        let reserved = if cfg!(all(loom, magpool_mutant = "depot_limit_check_then_add")) {
            // The race the CAS loop below avoids: two spills both pass the check.
            match self.retained.load(Relaxed).checked_add(bytes) {
                Some(total) if total <= self.limit => Ok(self.retained.fetch_add(bytes, Relaxed)),
                _ => Err(0),
            }
        } else {
            // A CAS loop, so that concurrent spills can never together exceed
            // the limit. Relaxed: the counter bounds memory, it publishes nothing.
            self.retained
                .fetch_update(Relaxed, Relaxed, |held| held.checked_add(bytes).filter(|&total| total <= self.limit))
        };
        match reserved {
            Ok(_) => {
                self.classes[class].full.push(mag, guard);
                Ok(())
            }
            Err(_) => Err(mag),
        }
    }

    /// Takes an empty magazine, if any. Lock-free.
    pub(crate) fn pop_empty(&self, class: usize, guard: &Guard) -> Option<Magazine<T>> {
        let c = &self.classes[class];
        let mag = c.empty.pop(guard)?;
        lower(&c.low_empty, c.empty.len());
        Some(mag)
    }

    /// Stores an empty magazine for reuse. Lock-free. A placeholder is
    /// dropped instead (it owns no allocation): a spill must never take one
    /// for an empty magazine with room.
    pub(crate) fn push_empty(&self, class: usize, mag: Magazine<T>, guard: &Guard) {
        debug_assert!(mag.is_empty());
        if mag.capacity() > 0 {
            self.classes[class].empty.push(mag, guard);
        }
    }

    /// Frees every magazine of `class` and the items in them; returns how many
    /// items were dropped. The items drop after the depot unpins.
    pub(crate) fn drain(&self, class: usize) -> u64 {
        self.free(class, usize::MAX, usize::MAX)
    }

    /// Frees what `class` did not need since the last call: as many full
    /// magazines (with their items) and empty ones as each stack never went
    /// below. Returns how many items were dropped. Steady traffic keeps its
    /// working set: a stack that ran dry in the interval loses nothing.
    pub(crate) fn reclaim(&self, class: usize) -> u64 {
        let c = &self.classes[class];
        let (full, empty) = (c.low_full.load(Relaxed), c.low_empty.load(Relaxed));
        let items = self.free(class, full, empty);
        // The next interval starts from what is left.
        c.low_full.store(c.full.len(), Relaxed);
        c.low_empty.store(c.empty.len(), Relaxed);
        items
    }

    /// Pops up to `full` full and `empty` empty magazines of `class` under
    /// one pin, then drops them (and their items) after it.
    fn free(&self, class: usize, full: usize, empty: usize) -> u64 {
        let mut popped = Vec::new();
        {
            let guard = self.pin();
            popped.extend(std::iter::from_fn(|| self.pop_full(class, &guard)).take(full));
            popped.extend(std::iter::from_fn(|| self.pop_empty(class, &guard)).take(empty));
        }
        if cfg!(all(loom, magpool_mutant = "depot_reclaim_uncounted")) {
            return 0; // frees the items, tells no one
        }
        popped.iter().map(|m| m.len() as u64).sum()
    }

    /// Item weight held in full magazines, all classes.
    pub(crate) fn retained_bytes(&self) -> usize {
        self.retained.load(Relaxed)
    }

    /// Number of (full, empty) magazines held for `class`.
    pub(crate) fn magazines(&self, class: usize) -> (usize, usize) {
        let c = &self.classes[class];
        (c.full.len(), c.empty.len())
    }
}

/// Lowers a low-water mark to `now`: a plain load first, so that the common
/// case (the stack is above its mark) writes nothing shared.
#[inline]
fn lower(low: &AtomicUsize, now: usize) {
    if now < low.load(Relaxed) {
        low.fetch_min(now, Relaxed);
    }
}

/// Empties the stacks, then runs the collector until the nodes they deferred
/// are back in their shells, so that the shells (and the nodes) are freed with
/// the depot: nothing but magpool pins magpool's collector (`sync::epoch`), so
/// without this they would wait for the next pool's activity. Best effort: a
/// thread pinned elsewhere in magpool meanwhile can hold some back.
impl<T: Send + 'static> Drop for Depot<T> {
    fn drop(&mut self) {
        for class in 0..self.classes.len() {
            self.drain(class);
        }
        // A node returns two epoch advances after its bag is sealed, and a
        // collection runs a few bags at most: 32 rounds cover both. (Not under
        // loom, where each round would multiply the interleavings to explore.)
        if cfg!(not(loom)) {
            for _ in 0..32 {
                self.pin().flush();
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn full(items: &[u32]) -> Magazine<u32> {
        let mut m = Magazine::with_capacity(4);
        for &i in items {
            m.push(i).unwrap();
        }
        m
    }

    #[test]
    fn retention_limit() {
        // Items weigh 10 bytes; the depot keeps at most 50.
        let d = Depot::new([10], 50);
        let g = &d.pin();
        assert!(d.push_full(0, full(&[1, 2, 3]), g).is_ok());
        assert_eq!(d.retained_bytes(), 30);
        let back = d.push_full(0, full(&[4, 5, 6]), g).unwrap_err();
        assert_eq!(back.len(), 3, "refused magazine comes back whole");
        assert!(d.push_full(0, full(&[7, 8]), g).is_ok());
        assert_eq!(d.retained_bytes(), 50);
        assert_eq!(d.magazines(0), (2, 0));
        assert_eq!(d.pop_full(0, g).unwrap().len(), 2);
        assert_eq!(d.retained_bytes(), 30);
        d.push_empty(0, Magazine::with_capacity(4), g);
        assert_eq!(d.drain(0), 3);
        assert_eq!(d.magazines(0), (0, 0));
        assert_eq!(d.retained_bytes(), 0);
    }

    #[test]
    fn placeholders_are_never_stored() {
        let d = Depot::<u32>::new([10], 50);
        let g = &d.pin();
        assert_eq!(d.push_full(0, Magazine::none(), g).unwrap_err().capacity(), 0);
        d.push_empty(0, Magazine::none(), g);
        assert_eq!((d.magazines(0), d.retained_bytes()), ((0, 0), 0));
        assert!(d.pop_full(0, g).is_none() && d.pop_empty(0, g).is_none());
    }

    #[test]
    fn reclaim_frees_only_what_was_not_needed() {
        let d = Depot::new([1], usize::MAX);
        let push = |items: &[u32]| d.push_full(0, full(items), &d.pin()).unwrap();
        // A burst leaves four magazines; the first reclaim only starts the
        // interval (nothing was below four since it began).
        (0..4).for_each(|i| push(&[i, i]));
        d.push_empty(0, Magazine::with_capacity(4), &d.pin());
        assert_eq!(d.reclaim(0), 0);
        // The stack dips to two, so two of the four were idle all interval.
        let taken: Vec<_> = (0..2).map(|_| d.pop_full(0, &d.pin()).unwrap()).collect();
        taken.into_iter().for_each(|m| d.push_full(0, m, &d.pin()).unwrap());
        assert_eq!(d.reclaim(0), 4, "two magazines of two items");
        assert_eq!(d.magazines(0), (2, 0), "the empty was idle too");
        // A steady load that takes everything every interval loses nothing.
        for _ in 0..3 {
            let taken: Vec<_> = (0..2).map(|_| d.pop_full(0, &d.pin()).unwrap()).collect();
            taken.into_iter().for_each(|m| d.push_full(0, m, &d.pin()).unwrap());
            assert_eq!(d.reclaim(0), 0);
        }
        // Then idle: gone within two reclaims.
        d.reclaim(0);
        assert_eq!((d.magazines(0), d.retained_bytes()), ((0, 0), 0));
    }
}
