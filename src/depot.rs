//! [`Depot`]: the shared, lock-free store of full and empty magazines, per
//! class (Bonwick & Adams 2001, §3.3), on `crossbeam-epoch`.
//!
//! # Invariants
//!
//! - Each class has two Treiber stacks: `full` (magazines holding at least one
//!   item) and `empty`. A magazine is in at most one stack, and a popped
//!   magazine belongs to exactly one popper.
//! - Stack nodes are freed only through `Guard::defer_destroy`, after every
//!   thread that could have read them has unpinned: no use-after-free, and no
//!   ABA (a node's address cannot come back while a stale reader is pinned).
//! - `retained` is the number of item bytes in `full` stacks plus the bytes
//!   reserved by pushes in flight; it never exceeds `limit`.
//!
//! Called by the thread cache on refill and spill (slow paths only) and by the
//! pool on `trim`. Knows nothing of bytes: items are opaque; `item_bytes` is
//! only their weight against the retention limit.

use std::mem::ManuallyDrop;
use std::ptr;

use crossbeam_epoch::{self as epoch, Atomic, Owned};

use crate::magazine::Magazine;
use crate::sync::atomic::{
    AtomicUsize, Ordering,
    Ordering::{Acquire, Relaxed, Release},
};

/// Ordering of the load of `head` in `pop`: Acquire, weakened to Relaxed only
/// in the loom mutant build that must fail (see `loom-tests/README.md`).
const OBSERVE: Ordering = if cfg!(magpool_mutant = "depot_pop_relaxed") { Relaxed } else { Acquire };

/// A lock-free stack of values, nodes reclaimed by epoch.
///
/// # Invariants
///
/// `len` is never below the number of nodes reachable from `head` (pushes add
/// before they link; pops subtract after they unlink).
#[derive(Debug)]
pub(crate) struct Stack<M> {
    head: Atomic<Node<M>>,
    len: AtomicUsize,
}

#[derive(Debug)]
struct Node<M> {
    /// Moved out by the one pop that unlinks the node; never dropped in place.
    value: ManuallyDrop<M>,
    next: Atomic<Node<M>>,
}

/// The stack moves each `M` from one owner to the next; it never lends `&M` to
/// two threads.
// SAFETY: a value is written by its pusher before the Release CAS that
// publishes it and read only by the single popper whose CAS unlinks it.
unsafe impl<M: Send> Send for Stack<M> {}
/// See `Send`: shared access only moves whole values in and out.
// SAFETY: as for `Send`; `&Stack` gives no access to a value in place.
unsafe impl<M: Send> Sync for Stack<M> {}

impl<M> Stack<M> {
    pub(crate) fn new() -> Self {
        Stack { head: Atomic::null(), len: AtomicUsize::new(0) }
    }

    /// Number of values, approximately (exact when no push or pop runs).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// Pushes `value`. Lock-free; allocates one node.
    pub(crate) fn push(&self, value: M) {
        self.len.fetch_add(1, Relaxed);
        let mut node = Owned::new(Node { value: ManuallyDrop::new(value), next: Atomic::null() });
        let guard = epoch::pin();
        let mut head = self.head.load(Relaxed, &guard);
        let mut first = true;
        loop {
            if first || !cfg!(magpool_mutant = "depot_push_stale_next") {
                node.next.store(head, Relaxed);
            }
            first = false;
            // Release: publishes the node and its value; pairs with the Acquire
            // load of `head` in `pop`. (The SeqCst fence inside `pin()` already
            // orders the value's writes before this CAS, so loom cannot see a
            // Relaxed here fail; we keep the Release so the stack does not lean
            // on crossbeam-epoch's internals.)
            match self.head.compare_exchange(head, node, Release, Relaxed, &guard) {
                Ok(_) => return,
                Err(e) if cfg!(magpool_mutant = "depot_push_lost_on_conflict") => return drop(e.new),
                Err(e) => (head, node) = (e.current, e.new),
            }
        }
    }

    /// Pops the most recently pushed value. Lock-free.
    pub(crate) fn pop(&self) -> Option<M> {
        #[cfg(not(magpool_mutant = "depot_pop_unpinned"))]
        let guard = &epoch::pin();
        // SAFETY: none: this is the mutant that must fail under loom.
        #[cfg(magpool_mutant = "depot_pop_unpinned")]
        let guard = unsafe { epoch::unprotected() };
        loop {
            // Acquire: pairs with the Release CAS in `push`, so the node's
            // fields and value are visible before we read them.
            let head = self.head.load(OBSERVE, guard);
            // SAFETY: `head` was loaded under `guard`; nodes are only freed by
            // `defer_destroy`, which waits for this guard to be dropped.
            let node = unsafe { head.as_ref() }?;
            let next = node.next.load(Relaxed, guard);
            // Relaxed on success: the Acquire load above already synchronised
            // with the push of `head`, and the node is ours once this succeeds.
            if self.head.compare_exchange(head, next, Relaxed, Relaxed, guard).is_ok() {
                self.len.fetch_sub(1, Relaxed);
                // SAFETY: 1. Our CAS unlinked `head`: no other pop can reach it
                // again, so we are the only one to move `value` out, exactly once.
                // 2. The node is freed only after every guard that saw it is gone,
                // and dropping a `Node` never drops `value` (ManuallyDrop).
                unsafe {
                    let value = ptr::read(&*node.value);
                    guard.defer_destroy(head);
                    return Some(value);
                }
            }
        }
    }
}

impl<M> Drop for Stack<M> {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

// === impl Depot ===

/// Full and empty magazines for each class, with a shared retention limit.
///
/// # Invariants
///
/// See the module docs. `classes[c].item_bytes` is the weight of one item of
/// class `c` against `limit`.
#[derive(Debug)]
pub(crate) struct Depot<T> {
    classes: Box<[DepotClass<T>]>,
    retained: AtomicUsize,
    limit: usize,
}

#[derive(Debug)]
struct DepotClass<T> {
    full: Stack<Magazine<T>>,
    empty: Stack<Magazine<T>>,
    item_bytes: usize,
}

impl<T: Send> Depot<T> {
    /// A depot for classes whose items weigh `item_bytes`, keeping at most
    /// `limit` item bytes in full magazines.
    pub(crate) fn new(item_bytes: impl IntoIterator<Item = usize>, limit: usize) -> Self {
        let classes = item_bytes
            .into_iter()
            .map(|item_bytes| DepotClass { full: Stack::new(), empty: Stack::new(), item_bytes })
            .collect();
        Depot { classes, retained: AtomicUsize::new(0), limit }
    }

    fn weight(&self, class: usize, mag: &Magazine<T>) -> usize {
        mag.len().saturating_mul(self.classes[class].item_bytes)
    }

    /// Takes a magazine holding at least one item, if any. Lock-free.
    pub(crate) fn pop_full(&self, class: usize) -> Option<Magazine<T>> {
        let mag = self.classes[class].full.pop()?;
        self.retained.fetch_sub(self.weight(class, &mag), Relaxed);
        mag.assert_valid();
        Some(mag)
    }

    /// Stores a non-empty magazine, or hands it back when keeping it would put
    /// the depot over its retention limit. Lock-free.
    pub(crate) fn push_full(&self, class: usize, mag: Magazine<T>) -> Result<(), Magazine<T>> {
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

    /// Stores an empty magazine for reuse. Lock-free.
    pub(crate) fn push_empty(&self, class: usize, mag: Magazine<T>) {
        debug_assert!(mag.is_empty() && mag.capacity() > 0);
        self.classes[class].empty.push(mag);
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
    fn stack_is_lifo() {
        let s = Stack::new();
        for i in 0..10 {
            s.push(i);
        }
        assert_eq!(s.len(), 10);
        for i in (0..10).rev() {
            assert_eq!(s.pop(), Some(i));
        }
        assert_eq!(s.pop(), None);
        assert_eq!(s.len(), 0);
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
    fn concurrent_push_pop_loses_nothing() {
        use std::sync::Mutex;
        let s = Stack::new();
        let n: u64 = if cfg!(miri) { 50 } else { 20_000 };
        let seen = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for t in 0..2u64 {
                let (s, seen) = (&s, &seen);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..n {
                        s.push(t * n + i);
                        if let Some(v) = s.pop() {
                            mine.push(v);
                        }
                    }
                    seen.lock().unwrap().extend(mine);
                });
            }
        });
        let mut all = seen.into_inner().unwrap();
        while let Some(v) = s.pop() {
            all.push(v);
        }
        all.sort_unstable();
        assert_eq!(all, (0..2 * n).collect::<Vec<_>>());
    }
}
