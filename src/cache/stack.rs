//! [`Stack`]: a lock-free Treiber stack on `crossbeam-epoch` whose nodes are
//! recycled, so that a steady stream of pushes and pops (magazines moving
//! through the depot) makes no allocator call.
//!
//! # Invariants
//!
//! - A node is in exactly one place: linked in one stack (with its value
//!   initialised), owned by one pusher or popper, waiting in a deferred
//!   function, or resting in [`Shells`] (value uninitialised).
//! - A popped node goes back to [`Shells`] only through `Guard::defer`, that
//!   is after every thread that could have read it from any stack has
//!   unpinned. So a stale reader never sees its node come back (no ABA), and
//!   no node is freed while a stale reader may still read its `next` (no
//!   use-after-free). Nodes are freed only by [`Shells`], when it is full or
//!   dropped.
//! - `len` is never below the number of nodes reachable from `head` (pushes
//!   add before they link; pops subtract after they unlink).
//!
//! Called by the depot.

use std::mem::MaybeUninit;
use std::ptr;

use crate::sync::atomic::{
    AtomicUsize, Ordering,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::sync::epoch::{self, Atomic, Guard, Owned, Shared};
use crate::sync::Arc;

/// Ordering of the load of `head` in `pop`: Acquire, weakened to Relaxed only
/// in the loom mutant build that must fail (see `loom-tests/README.md`).
const OBSERVE: Ordering = if cfg!(all(loom, magpool_mutant = "depot_pop_relaxed")) { Relaxed } else { Acquire };

/// Most node shells kept for reuse (about 48 bytes each); more are freed.
const SHELLS_MAX: usize = 1024;

#[derive(Debug)]
struct Node<M> {
    /// Initialised while the node is linked in a [`Stack`]: written by the
    /// pusher, moved out by the one pop that unlinks the node.
    value: MaybeUninit<M>,
    next: Atomic<Node<M>>,
}

impl<M> Node<M> {
    fn shell() -> Owned<Node<M>> {
        Owned::new(Node { value: MaybeUninit::uninit(), next: Atomic::null() })
    }
}

/// Links `node` on top of `head` (Treiber push). `node` is ours until the
/// compare-exchange publishes it; only its `next` is written here.
fn link<M>(head: &Atomic<Node<M>>, node: Shared<'_, Node<M>>, guard: &Guard) {
    // SAFETY: `node` is a live node that no stack links yet (the caller's).
    let next = unsafe { &(*node.as_raw()).next };
    let mut top = head.load(Relaxed, guard);
    let mut first = true;
    loop {
        if first || !cfg!(all(loom, magpool_mutant = "depot_push_stale_next")) {
            next.store(top, Relaxed);
        }
        first = false;
        // Release: publishes the node and its value; pairs with the Acquire
        // loads of `head` in `unlink`. (The SeqCst fence inside `pin()` already
        // orders the value's writes before this CAS, so loom cannot see a
        // Relaxed here fail; we keep the Release so the stack does not lean on
        // crossbeam-epoch's internals.)
        match head.compare_exchange(top, node, Release, Relaxed, guard) {
            Ok(_) => return,
            // The mutant loses the node: a leak, and a value that never arrives.
            Err(_) if cfg!(all(loom, magpool_mutant = "depot_push_lost_on_conflict")) => return,
            Err(e) => top = e.current,
        }
    }
}

/// Unlinks the top node (Treiber pop); the caller owns it from then on.
fn unlink<'g, M>(head: &Atomic<Node<M>>, order: Ordering, guard: &'g Guard) -> Option<Shared<'g, Node<M>>> {
    loop {
        let top = head.load(order, guard);
        if top.is_null() {
            return None;
        }
        // Only `next` is borrowed, never the whole node: between our load and
        // our CAS another thread may unlink `top` and, for a shell, write its
        // `value`, and a `&Node` would overlap that write (a data race under
        // Rust's memory model, which miri reported).
        // SAFETY: `top` was loaded under `guard`, and nodes are freed only
        // after a grace period that this guard holds back (module invariants).
        let next = unsafe { &(*top.as_raw()).next }.load(Relaxed, guard);
        // Relaxed on success: the Acquire load above already synchronised with
        // the push of `top`, and the node is ours once this succeeds.
        if head.compare_exchange(top, next, Relaxed, Relaxed, guard).is_ok() {
            return Some(top);
        }
    }
}

/// A node unlinked by `Stack::pop`, its value moved out, on its way back to
/// the shells in a deferred function (which may run on any thread). A pointer
/// rather than an address, so that the node's provenance goes with it.
struct Retired<M>(*mut Node<M>);

// SAFETY: the deferred function is the node's only owner, and the node holds
// no `M` (its value was moved out): only an empty node changes threads.
unsafe impl<M> Send for Retired<M> {}

impl<M> Retired<M> {
    /// A method, not a field access, so that a closure captures the whole
    /// `Retired` (which is `Send`), not the raw pointer inside it.
    fn into_raw(self) -> *mut Node<M> {
        self.0
    }
}

// === impl Shells ===

/// Node shells waiting for reuse, shared by the stacks of one depot and by
/// the deferred functions that bring popped nodes back.
///
/// # Invariants
///
/// Every node here has an uninitialised value and is reachable by no stack.
#[derive(Debug)]
pub(crate) struct Shells<M> {
    head: Atomic<Node<M>>,
    /// Shells resting here (approximate).
    len: AtomicUsize,
    /// Nodes allocated so far (only when none was resting).
    made: AtomicUsize,
}

/// Shells hold no `M`: only empty nodes move between threads here.
// SAFETY: nodes are taken by exactly one thread (the CAS in `unlink`), and no
// value is ever stored while a node rests here.
unsafe impl<M> Send for Shells<M> {}
/// See `Send`.
// SAFETY: as for `Send`.
unsafe impl<M> Sync for Shells<M> {}

impl<M> Shells<M> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Shells { head: Atomic::null(), len: AtomicUsize::new(0), made: AtomicUsize::new(0) })
    }

    /// A node to push with: a resting shell, or a new allocation.
    fn take(&self, guard: &Guard) -> Owned<Node<M>> {
        match unlink(&self.head, Acquire, guard) {
            Some(node) => {
                self.len.fetch_sub(1, Relaxed);
                // SAFETY: `unlink` made us the node's only owner, and shells
                // are never freed while a guard that saw them is alive.
                unsafe { node.into_owned() }
            }
            None => {
                self.made.fetch_add(1, Relaxed);
                Node::shell()
            }
        }
    }

    /// Nodes allocated so far.
    #[cfg_attr(not(test), allow(dead_code))] // for tests; the field costs one add per allocation
    pub(crate) fn made(&self) -> usize {
        self.made.load(Relaxed)
    }

    /// Takes back a node popped from a stack, once its grace period is over.
    ///
    /// # Safety
    ///
    /// `node` was unlinked from a stack, its value moved out, and every guard
    /// that could have seen it has been dropped since (it comes from a
    /// function deferred with `Guard::defer` by the unlinking thread).
    unsafe fn give(&self, node: *mut Node<M>) {
        // SAFETY: the caller hands over the only reference to a live node.
        let node = unsafe { Owned::from_raw(node) };
        if self.len.load(Relaxed) >= SHELLS_MAX {
            return drop(node);
        }
        self.len.fetch_add(1, Relaxed);
        // SAFETY: `link` only loads `head` to store it in `node.next` and CAS;
        // it dereferences no node but ours, so it needs no pin. (Deferred
        // functions may run while the epoch machinery itself is shutting down.)
        let guard = unsafe { epoch::unprotected() };
        link(&self.head, node.into_shared(guard), guard);
    }
}

impl<M> Drop for Shells<M> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can reach these nodes.
        let guard = unsafe { epoch::unprotected() };
        let mut top = self.head.load(Relaxed, guard);
        // SAFETY: as above; each node is freed once, after reading `next`.
        while let Some(node) = unsafe { top.as_ref() } {
            let next = node.next.load(Relaxed, guard);
            // SAFETY: as above.
            drop(unsafe { top.into_owned() });
            top = next;
        }
    }
}

// === impl Stack ===

/// A lock-free stack of values; see the module docs.
#[derive(Debug)]
pub(crate) struct Stack<M: Send + 'static> {
    head: Atomic<Node<M>>,
    len: AtomicUsize,
    shells: Arc<Shells<M>>,
}

/// The stack moves each `M` from one owner to the next; it never lends `&M` to
/// two threads.
// SAFETY: a value is written by its pusher before the Release CAS that
// publishes it and read only by the single popper whose CAS unlinks it.
unsafe impl<M: Send> Send for Stack<M> {}
/// See `Send`: shared access only moves whole values in and out.
// SAFETY: as for `Send`; `&Stack` gives no access to a value in place.
unsafe impl<M: Send> Sync for Stack<M> {}

impl<M: Send + 'static> Stack<M> {
    /// An empty stack recycling its nodes through `shells`.
    pub(crate) fn new(shells: Arc<Shells<M>>) -> Self {
        Stack { head: Atomic::null(), len: AtomicUsize::new(0), shells }
    }

    /// Number of values, approximately (exact when no push or pop runs).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// Pushes `value`, pinned by `guard` (which may be any guard of
    /// magpool's collector, `sync::epoch`). Lock-free; allocates only when no
    /// shell is resting.
    pub(crate) fn push(&self, value: M, guard: &Guard) {
        self.len.fetch_add(1, Relaxed);
        let node = self.shells.take(guard).into_shared(guard);
        // Written through a raw place, not `&mut Node`: a stale taker of this
        // node as a shell may still read its `next` (see `unlink`).
        // SAFETY: the node came from `take`, so it is ours alone until `link`
        // publishes it, and its value is uninitialised (shells hold none).
        unsafe { ptr::addr_of_mut!((*node.as_raw().cast_mut()).value).write(MaybeUninit::new(value)) };
        link(&self.head, node, guard);
    }

    /// Pops the most recently pushed value, pinned by `guard`. Lock-free; no
    /// allocation.
    pub(crate) fn pop(&self, guard: &Guard) -> Option<M> {
        // SAFETY: none: this is the mutant that must fail under loom.
        #[cfg(all(loom, magpool_mutant = "depot_pop_unpinned"))]
        let guard = unsafe { epoch::unprotected() };
        let top = unlink(&self.head, OBSERVE, guard)?;
        self.len.fetch_sub(1, Relaxed);
        // SAFETY: `unlink` made us the only owner of the node, whose value the
        // pusher initialised before publishing it; we move it out exactly once.
        let value = unsafe { top.deref().value.assume_init_read() };
        let (shells, node) = (Arc::clone(&self.shells), Retired(top.as_raw().cast_mut()));
        if cfg!(all(loom, magpool_mutant = "depot_recycle_early")) {
            // SAFETY: none: this is the mutant that must fail under loom.
            unsafe { shells.give(node.into_raw()) };
            return Some(value);
        }
        // The node rests in `shells` only after every thread pinned now has
        // unpinned (module invariants).
        guard.defer(move || {
            // SAFETY: deferred by the unlinking thread, value moved out above.
            unsafe { shells.give(node.into_raw()) }
        });
        Some(value)
    }
}

impl<M: Send + 'static> Drop for Stack<M> {
    fn drop(&mut self) {
        let guard = epoch::pin();
        while self.pop(&guard).is_some() {}
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn lifo() {
        let s = Stack::new(Shells::new());
        for i in 0..10 {
            s.push(i, &epoch::pin());
        }
        assert_eq!(s.len(), 10);
        for i in (0..10).rev() {
            assert_eq!(s.pop(&epoch::pin()), Some(i));
        }
        assert_eq!((s.pop(&epoch::pin()), s.len()), (None, 0));
    }

    #[test]
    fn nodes_are_recycled() {
        // Popped nodes come back once the epoch moves on and are reused. Other
        // tests pinning in parallel hold the epoch back while they are pinned,
        // and on a loaded machine a pinned thread can be descheduled for a
        // whole attempt (seen: 5003 nodes for 10000 pushes). So: up to five
        // attempts, and one with far fewer nodes than pushes passes. Without
        // recycling every attempt makes one node per push.
        let rounds = if cfg!(miri) { 100 } else { 10_000 };
        let mut made = Vec::new();
        for _ in 0..5 {
            let shells = Shells::new();
            let s = Stack::new(shells.clone());
            for round in 0..rounds {
                s.push(round, &epoch::pin());
                assert_eq!(s.pop(&epoch::pin()), Some(round));
                epoch::pin().flush();
            }
            made.push(shells.made());
            if made.last().is_some_and(|&m| m < rounds / 4) {
                return;
            }
        }
        panic!("nodes made per attempt of {rounds} pushes: {made:?}");
    }

    #[test]
    fn drops_values() {
        let counter = std::sync::Arc::new(());
        let s = Stack::new(Shells::new());
        s.push(counter.clone(), &epoch::pin());
        s.push(counter.clone(), &epoch::pin());
        assert_eq!(std::sync::Arc::strong_count(&counter), 3);
        drop(s);
        assert_eq!(std::sync::Arc::strong_count(&counter), 1);
    }

    #[test]
    fn concurrent_push_pop_loses_nothing() {
        use std::sync::Mutex;
        let s = Stack::new(Shells::new());
        let n: u64 = if cfg!(miri) { 50 } else { 20_000 };
        let seen = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for t in 0..2u64 {
                let (s, seen) = (&s, &seen);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..n {
                        s.push(t * n + i, &epoch::pin());
                        if let Some(v) = s.pop(&epoch::pin()) {
                            mine.push(v);
                        }
                    }
                    seen.lock().unwrap().extend(mine);
                });
            }
        });
        let mut all = seen.into_inner().unwrap();
        while let Some(v) = s.pop(&epoch::pin()) {
            all.push(v);
        }
        all.sort_unstable();
        assert_eq!(all, (0..2 * n).collect::<Vec<_>>());
    }
}
