//! [`Magazine`]: a fixed-capacity stack of items, the unit a thread cache
//! exchanges with the depot (Bonwick & Adams 2001, §3).
//!
//! # Invariants
//!
//! - `items.len() <= cap` always; `items.capacity() >= cap`, so `push` below
//!   `cap` never reallocates.
//! - A magazine has one owner at a time: a thread cache, or the depot (which
//!   hands it to exactly one popper). It has no atomics and needs none.
//! - A magazine with `cap == 0` is the "no magazine" placeholder: it owns no
//!   allocation, and every push and pop on it misses.
//!
//! Called by the thread cache (push/pop on the hot path) and the depot (which
//! stores whole magazines). Knows nothing of bytes: items are opaque.
#![forbid(unsafe_code)]

/// A stack of at most `cap` items.
///
/// # Invariants
///
/// `items.len() <= cap <= items.capacity()`.
#[derive(Debug)]
pub(crate) struct Magazine<T> {
    items: Vec<T>,
    cap: usize,
}

impl<T> Magazine<T> {
    /// The placeholder: capacity 0, no allocation.
    pub(crate) const fn none() -> Self {
        Magazine { items: Vec::new(), cap: 0 }
    }

    /// An empty magazine for `cap` items. Allocates its slot array once.
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Magazine { items: Vec::with_capacity(cap), cap }
    }

    /// Number of items held.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Most items it can hold.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// `true` when holding nothing.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// `true` when no item fits (always for the placeholder).
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= self.cap
    }

    /// Pops the most recently pushed item. O(1), no allocation.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.items.pop()
    }

    /// Pushes `item`, or hands it back when full. O(1), no allocation.
    #[inline]
    pub(crate) fn push(&mut self, item: T) -> Result<(), T> {
        if self.is_full() {
            return Err(item);
        }
        self.items.push(item); // below `cap <= capacity`: never grows
        Ok(())
    }

    /// Removes and drops every item; returns how many there were.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.items.len();
        self.items.clear();
        n
    }

    /// Checks the invariants (debug builds, at refill/spill boundaries).
    #[inline]
    pub(crate) fn assert_valid(&self) {
        debug_assert!(self.items.len() <= self.cap && self.cap <= self.items.capacity().max(self.cap));
        debug_assert!(self.cap == 0 || self.items.capacity() >= self.cap);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let mut m = Magazine::with_capacity(3);
        assert!(m.is_empty() && !m.is_full());
        for i in 0..3 {
            assert_eq!(m.push(i), Ok(()));
        }
        assert!(m.is_full());
        assert_eq!(m.push(9), Err(9));
        let cap = m.items.capacity();
        assert_eq!(m.pop(), Some(2));
        assert_eq!(m.len(), 2);
        assert_eq!(m.clear(), 2);
        assert_eq!(m.pop(), None);
        assert_eq!(m.items.capacity(), cap, "clear keeps the slot array");
        m.assert_valid();
    }

    #[test]
    fn placeholder_misses() {
        let mut m = Magazine::<u8>::none();
        assert!(m.is_full() && m.is_empty());
        assert_eq!(m.capacity(), 0);
        assert_eq!(m.push(1), Err(1));
        assert_eq!(m.pop(), None);
    }

    #[test]
    fn drops_items() {
        use std::rc::Rc;
        let rc = Rc::new(());
        let mut m = Magazine::with_capacity(4);
        m.push(rc.clone()).unwrap();
        m.push(rc.clone()).unwrap();
        assert_eq!(Rc::strong_count(&rc), 3);
        drop(m);
        assert_eq!(Rc::strong_count(&rc), 1);
    }
}
