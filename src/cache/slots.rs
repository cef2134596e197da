//! [`Slots`]: a pool's per-thread slots, in a lock-free list that only grows
//! until the pool drops.
//!
//! A thread finds its own slot through its thread-local records (`local.rs`),
//! never through this list: the list is walked only to claim a slot (a
//! thread's first slow path in the pool) and to read every thread's counters.
//! Claiming asks for no thread id, so it is safe at any point of thread
//! teardown, unlike the `thread_local` crate's `ThreadLocal::get_or`, which
//! panics when its own per-thread guard is already gone (its issue #74).
//!
//! # Invariants
//!
//! - Entries are linked at the head only, each once, and their `next` is
//!   written before the Release compare-exchange that publishes them and never
//!   after; an entry is freed only by the list's `Drop` (`&mut self`). So a
//!   walk that loads `head` with Acquire reaches only live, fully written
//!   entries, for as long as it borrows the list.
//! - The list hands out only shared references; whoever stores interior
//!   mutability in `T` says who may use it (`caches.rs`: a slot's `owner`).
//!
//! Called by the pool.

use std::ptr;

use crate::sync::atomic::{
    AtomicPtr, Ordering,
    Ordering::{Acquire, Relaxed, Release},
};

/// Ordering of the exchange that publishes an entry: Release, weakened to
/// Relaxed only in the loom mutant build that must fail (`loom-tests`).
const PUBLISH: Ordering = if cfg!(all(loom, magpool_mutant = "slots_publish_relaxed")) { Relaxed } else { Release };

/// See the module docs.
pub(crate) struct Slots<T> {
    head: AtomicPtr<Entry<T>>,
}

struct Entry<T> {
    value: T,
    /// The entry below this one; fixed once the entry is published.
    next: *mut Entry<T>,
}

// SAFETY: the list owns its entries (a `Box` each) and gives out only `&T`,
// so sending it sends `T`s, and sharing it shares `&T`s.
unsafe impl<T: Send> Send for Slots<T> {}
// SAFETY: as above; `&Slots` gives `&T` to many threads, and links entries
// through an atomic head only.
unsafe impl<T: Send + Sync> Sync for Slots<T> {}

impl<T> Slots<T> {
    pub(crate) fn new() -> Self {
        Slots { head: AtomicPtr::new(ptr::null_mut()) }
    }

    /// The first entry `take` accepts (it claims the entry as it accepts it),
    /// or else a new entry made by `make`, already claimed, linked at the
    /// head. Lock-free; allocates only when no entry is accepted.
    pub(crate) fn claim(&self, take: impl Fn(&T) -> bool, make: impl FnOnce() -> T) -> &T {
        if let Some(free) = self.iter().find(|&value| take(value)) {
            return free;
        }
        let entry = Box::into_raw(Box::new(Entry { value: make(), next: ptr::null_mut() }));
        let mut top = self.head.load(Relaxed);
        loop {
            // SAFETY: `entry` is ours until the exchange below publishes it.
            unsafe { (*entry).next = top };
            // Release: publishes the entry's value and `next` to walks.
            match self.head.compare_exchange_weak(top, entry, PUBLISH, Relaxed) {
                Ok(_) => break,
                Err(now) => top = now,
            }
        }
        // SAFETY: published and never freed before the list drops, which the
        // borrow of `self` rules out.
        unsafe { &(*entry).value }
    }

    /// Every entry, newest first. Entries linked during the walk may be
    /// missed; none is seen twice.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        let mut at = self.head.load(Acquire);
        std::iter::from_fn(move || {
            // SAFETY: `at` is null or an entry reached from `head` (Acquire)
            // through `next`s written before that entry's publication, and
            // entries live as long as the borrow of `self` (module invariants).
            let entry = unsafe { at.as_ref() }?;
            at = entry.next;
            Some(&entry.value)
        })
    }
}

impl<T> Drop for Slots<T> {
    fn drop(&mut self) {
        // A load rather than `get_mut`, which loom's atomics lack (so that
        // the file can join the loom models); `&mut self` orders it anyway.
        let mut at = self.head.load(Relaxed);
        while !at.is_null() {
            // SAFETY: `&mut self`: nobody else can reach the entries, and each
            // was made by `Box::into_raw` in `claim` and is freed once here.
            let entry = unsafe { Box::from_raw(at) };
            at = entry.next;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::atomic::AtomicBool;

    /// An entry that one claimant at a time may hold.
    struct Free(AtomicBool);

    fn take(e: &Free) -> bool {
        e.0.compare_exchange(true, false, Acquire, Relaxed).is_ok()
    }

    #[test]
    fn reuses_free_entries_and_grows_otherwise() {
        let slots = Slots::new();
        let a = slots.claim(take, || Free(AtomicBool::new(false)));
        let b = slots.claim(take, || Free(AtomicBool::new(false)));
        assert!(!ptr::eq(a, b) && slots.iter().count() == 2);
        a.0.store(true, Release); // a's claimant lets go
        assert!(ptr::eq(slots.claim(take, || unreachable!()), a));
        slots.claim(take, || Free(AtomicBool::new(false)));
        assert_eq!(slots.iter().count(), 3);
    }

    #[test]
    fn concurrent_claims_are_distinct() {
        let slots = Slots::new();
        let per_thread = if cfg!(miri) { 20 } else { 2000 };
        let claimed: Vec<Vec<usize>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..per_thread)
                            .map(|i| {
                                let e = slots.claim(take, || Free(AtomicBool::new(false)));
                                let addr = ptr::from_ref(e) as usize;
                                if i % 2 == 0 {
                                    e.0.store(true, Release); // half are let go for others
                                }
                                addr
                            })
                            .collect()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        // Every entry still held (odd claims) is held by one claim only.
        let mut held: Vec<usize> = claimed.iter().flat_map(|c| c.iter().skip(1).step_by(2)).copied().collect();
        let n = held.len();
        held.sort_unstable();
        held.dedup();
        assert_eq!(held.len(), n, "an entry was handed to two claimants");
        assert!(slots.iter().count() <= 4 * per_thread);
    }
}
