//! [`Depot`]: the shared, lock-free store of full and empty magazines, per
//! class (Bonwick & Adams 2001, §3.3), on `crossbeam-epoch`.
//!
//! # Invariants
//!
//! - Each class has two Treiber stacks: `full` (magazines holding at least one
//!   item) and `empty`. A magazine is in at most one stack, and a popped
//!   magazine belongs to exactly one popper.
//! - The stacks are `stack.rs`'s epoch-protected Treiber stacks, all recycling
//!   their nodes through one [`Shells`]: a popped node is reused only after
//!   every thread that could have read it has unpinned (no ABA, no
//!   use-after-free), and magazine traffic makes no allocator call once warm.
//! - `retained` is the number of item bytes in `full` stacks plus the bytes
//!   reserved by pushes in flight; it never exceeds `limit`.
//!
//! Called by the thread cache on refill and spill (slow paths only) and by the
//! pool on `trim`. Knows nothing of bytes: items are opaque; `item_bytes` is
//! only their weight against the retention limit.

use crate::cache::magazine::Magazine;
use crate::cache::stack::{Shells, Stack};
use crate::sync::atomic::{AtomicUsize, Ordering::Relaxed};

// === impl Depot ===

/// Full and empty magazines for each class, with a shared retention limit.
///
/// # Invariants
///
/// See the module docs. `classes[c].item_bytes` is the weight of one item of
/// class `c` against `limit`.
#[derive(Debug)]
pub(crate) struct Depot<T: Send + 'static> {
    classes: Box<[DepotClass<T>]>,
    retained: AtomicUsize,
    limit: usize,
}

#[derive(Debug)]
struct DepotClass<T: Send + 'static> {
    full: Stack<Magazine<T>>,
    empty: Stack<Magazine<T>>,
    item_bytes: usize,
}

impl<T: Send + 'static> Depot<T> {
    /// A depot for classes whose items weigh `item_bytes`, keeping at most
    /// `limit` item bytes in full magazines.
    pub(crate) fn new(item_bytes: impl IntoIterator<Item = usize>, limit: usize) -> Self {
        let shells = Shells::new();
        let classes = item_bytes
            .into_iter()
            .map(|item_bytes| DepotClass {
                full: Stack::new(shells.clone()),
                empty: Stack::new(shells.clone()),
                item_bytes,
            })
            .collect();
        Depot { classes, retained: AtomicUsize::new(0), limit }
    }

    fn weight(&self, class: usize, mag: &Magazine<T>) -> usize {
        mag.len().saturating_mul(self.classes[class].item_bytes)
    }

    /// Pins the calling thread until the guard drops, so that the depot
    /// operations meanwhile pin re-entrantly, without a fence each: an
    /// exchange (a full magazine for an empty one) then costs one pin.
    #[inline]
    pub(crate) fn pin(&self) -> crate::sync::epoch::Guard {
        crate::sync::epoch::pin()
    }

    pub(crate) fn pop_full(&self, class: usize) -> Option<Magazine<T>> {
        let mag = self.classes[class].full.pop()?;
        self.retained.fetch_sub(self.weight(class, &mag), Relaxed);
        mag.assert_valid();
        Some(mag)
    }

    /// Stores a non-empty magazine, or hands it back when keeping it would put
    /// the depot over its retention limit. Lock-free.
    ///
    /// A placeholder (capacity 0) is always handed back: a refill must never
    /// take one for a full magazine. A spill cannot pass one unless something
    /// inside it panicked halfway, so this is a release-build guard on a
    /// path that is already slow.
    pub(crate) fn push_full(&self, class: usize, mag: Magazine<T>) -> Result<(), Magazine<T>> {
        if mag.capacity() == 0 {
            return Err(mag);
        }
        debug_assert!(!mag.is_empty());
        mag.assert_valid();
        let bytes = self.weight(class, &mag);
        let reserved = if cfg!(magpool_mutant = "depot_limit_check_then_add") {
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
                self.classes[class].full.push(mag);
                Ok(())
            }
            Err(_) => Err(mag),
        }
    }

    /// Takes an empty magazine, if any. Lock-free.
    pub(crate) fn pop_empty(&self, class: usize) -> Option<Magazine<T>> {
        self.classes[class].empty.pop()
    }

    /// Stores an empty magazine for reuse. Lock-free. A placeholder is
    /// dropped instead (as in `push_full`): a spill must never take one for
    /// an empty magazine with room.
    pub(crate) fn push_empty(&self, class: usize, mag: Magazine<T>) {
        debug_assert!(mag.is_empty());
        if mag.capacity() > 0 {
            self.classes[class].empty.push(mag);
        }
    }

    /// Frees every magazine of `class` and the items in them; returns how many
    /// items were dropped.
    pub(crate) fn drain(&self, class: usize) -> u64 {
        let mut items = 0;
        while let Some(mut mag) = self.pop_full(class) {
            items += mag.clear() as u64;
        }
        while self.pop_empty(class).is_some() {}
        items
    }

    /// Item bytes held in full magazines, all classes.
    pub(crate) fn retained_bytes(&self) -> usize {
        self.retained.load(Relaxed)
    }

    /// Number of (full, empty) magazines held for `class`.
    pub(crate) fn magazines(&self, class: usize) -> (usize, usize) {
        let c = &self.classes[class];
        (c.full.len(), c.empty.len())
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
        assert!(d.push_full(0, full(&[1, 2, 3])).is_ok());
        assert_eq!(d.retained_bytes(), 30);
        let back = d.push_full(0, full(&[4, 5, 6])).unwrap_err();
        assert_eq!(back.len(), 3, "refused magazine comes back whole");
        assert!(d.push_full(0, full(&[7, 8])).is_ok());
        assert_eq!(d.retained_bytes(), 50);
        assert_eq!(d.magazines(0), (2, 0));
        assert_eq!(d.pop_full(0).unwrap().len(), 2);
        assert_eq!(d.retained_bytes(), 30);
        d.push_empty(0, Magazine::with_capacity(4));
        assert_eq!(d.drain(0), 3);
        assert_eq!(d.magazines(0), (0, 0));
        assert_eq!(d.retained_bytes(), 0);
    }

    #[test]
    fn placeholders_are_never_stored() {
        let d = Depot::<u32>::new([10], 50);
        assert_eq!(d.push_full(0, Magazine::none()).unwrap_err().capacity(), 0);
        d.push_empty(0, Magazine::none());
        assert_eq!((d.magazines(0), d.retained_bytes()), ((0, 0), 0));
        assert!(d.pop_full(0).is_none() && d.pop_empty(0).is_none());
    }
}
