//! [`Magazine`]: a bounded stack of items, the unit a thread cache
//! exchanges with the depot (Bonwick & Adams 2001, §3).
//!
//! # Invariants
//!
//! - `items.len() <= items.capacity()`, and the capacity is the magazine's:
//!   `push` refuses an item at `len == capacity`, so the `Vec` never grows
//!   on its own; only its owner's explicit `grow_to` enlarges it.
//!   Using the `Vec`'s own capacity, not a copy of it, lets the compiler see
//!   that `Vec::push` cannot reach its growth path: a release's fast path is
//!   then a leaf function with no stack frame (seen with `objdump -d` of an
//!   x86_64 release build: `drop_in_place::<Buf>` saved five registers while
//!   the growth call was there, and saves none now).
//! - `T` is not zero-sized (a `Vec` of those has capacity `usize::MAX`).
//! - A magazine has one owner at a time: a thread cache, or the depot (which
//!   hands it to exactly one popper). It has no atomics and needs none.
//! - A magazine with capacity 0 is the "no magazine" placeholder: it owns no
//!   allocation, and every push and pop on it misses.
//!
//! Called by the thread cache (push/pop on the hot path) and the depot (which
//! stores whole magazines). Knows nothing of bytes: items are opaque.
#![forbid(unsafe_code)]

/// A stack of at most `capacity()` items.
///
/// # Invariants
///
/// `items.len() <= items.capacity()`; `T` is not zero-sized.
#[derive(Debug)]
pub(crate) struct Magazine<T> {
    items: Vec<T>,
}

impl<T> Magazine<T> {
    /// Referenced by both constructors, so that a zero-sized `T` fails to
    /// compile.
    const SIZED: () = assert!(std::mem::size_of::<T>() != 0, "a magazine holds sized items");

    /// The placeholder: capacity 0, no allocation.
    pub(crate) const fn none() -> Self {
        let () = Self::SIZED;
        Magazine { items: Vec::new() }
    }

    /// An empty magazine for `cap` items. Allocates its slot array once.
    ///
    /// std's `Vec::with_capacity` allocates exactly `cap` slots for a sized
    /// `T`. Were it ever to give more, the magazine would hold more, which
    /// bounds nothing else: the depot counts the items it holds, not slots.
    pub(crate) fn with_capacity(cap: usize) -> Self {
        let () = Self::SIZED;
        let m = Magazine { items: Vec::with_capacity(cap) };
        debug_assert_eq!(m.capacity(), cap);
        m
    }

    /// Number of items held.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Most items it can hold.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.items.capacity()
    }

    /// `true` when holding nothing.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// `true` when no item fits (always for the placeholder).
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.items.len() == self.items.capacity()
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
        self.items.push(item); // below capacity: never grows
        Ok(())
    }

    /// Makes room for `cap` items when it has less, keeping its items (the
    /// owner grows its magazines; see `thread_cache`). One reallocation of
    /// the slot array; a no-op on a placeholder, which stays one.
    pub(crate) fn grow_to(&mut self, cap: usize) {
        if self.capacity() > 0 && cap > self.capacity() {
            self.items.reserve_exact(cap - self.items.len());
            debug_assert_eq!(self.capacity(), cap);
        }
    }

    /// Cuts an empty magazine with room for more than `cap` items down to
    /// `cap`. One reallocation; a no-op on a placeholder, on a magazine that
    /// holds items, when `cap` is 0 (that would make a placeholder), or when
    /// it is not larger.
    pub(crate) fn shrink_to(&mut self, cap: usize) {
        if self.is_empty() && cap > 0 && cap < self.capacity() {
            self.items.shrink_to(cap);
            debug_assert_eq!(self.capacity(), cap);
        }
    }

    /// Removes and drops every item; returns how many there were.
    #[cfg(test)]
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.items.len();
        self.items.clear();
        n
    }

    /// Moves every item out, newest last, keeping the slot array: the caller
    /// decides where they go and when they drop.
    pub(crate) fn drain(&mut self) -> std::vec::Drain<'_, T> {
        self.items.drain(..)
    }

    /// Checks the invariants (debug builds, at refill/spill boundaries).
    #[inline]
    pub(crate) fn assert_valid(&self) {
        debug_assert!(self.items.len() <= self.items.capacity());
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
    fn grows_and_shrinks_only_when_asked_and_safe() {
        let mut m = Magazine::with_capacity(2);
        m.push(7).unwrap();
        m.grow_to(8);
        assert_eq!((m.capacity(), m.len(), m.pop()), (8, 1, Some(7)), "grows and keeps its items");
        m.grow_to(4);
        assert_eq!(m.capacity(), 8, "never shrinks");
        m.shrink_to(3);
        assert_eq!(m.capacity(), 3, "an empty one shrinks");
        m.push(1).unwrap();
        m.shrink_to(1);
        assert_eq!(m.capacity(), 3, "one with items does not");
        let mut none = Magazine::<u8>::none();
        none.grow_to(8);
        none.shrink_to(1);
        assert_eq!(none.capacity(), 0, "a placeholder stays one");
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
