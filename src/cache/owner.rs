//! Who may touch a thread cache: its owner, inside an *owner access*, or the
//! reclaimer, which takes the cache of a thread that has gone idle without
//! that thread's help.
//!
//! # The protocol
//!
//! Each thread has a [`ThreadState`]: a flag `in_op`, set while it is inside
//! an owner access of any pool, and its slot hint (pool id → cache). Each
//! slot has an [`Owner`] word: 0 (free), the owner's serial, or the serial
//! with [`REVOKED`] set while a reclaimer holds the slot.
//!
//! ```text
//!  owner (every get and release)        reclaimer (an idle slot)
//!  in_op = 1            (plain store)   state: serial → serial|REVOKED  (CAS)
//!  light barrier        (compiler only) hint[id]: id → 0                (CAS)
//!  hint[id] == id? ──no──► slow path:   heavy barrier (membarrier)
//!      │ yes               CAS state,   in_op == 0?  ──no──► give up
//!      ▼                   wait while      │ yes
//!                          REVOKED         ▼
//!  pop / push
//!  in_op = 0            (Release)       take every magazine; free
//!                                       state: → serial             (Release)
//! ```
//!
//! This is the store-buffering pattern (Dekker's): the owner writes `in_op`
//! then reads the hint, the reclaimer writes the hint then reads `in_op`, and
//! a full barrier on both sides rules out both reading the old value. The
//! owner's side is only a compiler barrier; the heavy barrier
//! (`membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` on Linux, as in folly's
//! asymmetric fences and userspace RCU) makes every running thread of the
//! process execute a full barrier, which supplies the owner's half at
//! whatever point its program is at. So either the reclaimer sees `in_op`
//! set (and gives up), or the owner's next hint load sees the revocation
//! (and its slow path waits until the reclaimer is done). The owner's get
//! and release gain two plain stores to its own thread-local line: no
//! atomic read-modify-write, no fence, no lock.
//!
//! # Invariants
//!
//! - `in_op` is set only by its thread, around accesses that never nest (no
//!   user code runs inside one); debug builds assert it.
//! - While `REVOKED` is set, the reclaimer that set it may read the owner's
//!   `ThreadState` (the thread cannot finish exiting: its exit flush waits)
//!   and, once it has seen `in_op == 0` after the heavy barrier, it alone
//!   touches the cache. Clearing `REVOKED` (Release) hands the cache back;
//!   the owner's slow path waits for that (Acquire) before touching it.
//! - `thread` is null or the current owner's state: an owner publishes it
//!   after its claim and nulls it before it releases the slot.
//!
//! Called by the layer's front (`caches.rs`) and the loom models.

use std::ptr;

use crate::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU64,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use crate::sync::{barrier, yield_now};

/// Entries of the slot hint: pools a thread can alternate between without
/// leaving the hot path (pool ids are sequential, so consecutive pools never
/// share an entry).
pub(crate) const WAYS: usize = 4;

/// The `Owner` bit a reclaimer sets while it holds the slot.
pub(crate) const REVOKED: u64 = 1 << 63;

// === impl ThreadState ===

/// One thread's side of the protocol (see the module docs).
#[derive(Debug)]
pub(crate) struct ThreadState {
    in_op: AtomicBool,
    hint: [Hint; WAYS],
}

/// A hint entry: pool `id`'s cache table is at `addr`, in the slot at
/// `slot`. Only `id` is ever written by another thread (a reclaimer's
/// revocation, to 0).
#[derive(Debug)]
struct Hint {
    id: AtomicU64,
    addr: AtomicPtr<()>,
    slot: AtomicPtr<()>,
}

impl Hint {
    #[cfg(not(loom))]
    const fn none() -> Self {
        Hint { id: AtomicU64::new(0), addr: AtomicPtr::new(ptr::null_mut()), slot: AtomicPtr::new(ptr::null_mut()) }
    }
}

impl ThreadState {
    /// Not in an access, no hint.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        ThreadState { in_op: AtomicBool::new(false), hint: [const { Hint::none() }; WAYS] }
    }

    /// Not in an access, no hint (loom's atomics are not `const`).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        let hint = std::array::from_fn(|_| Hint {
            id: AtomicU64::new(0),
            addr: AtomicPtr::new(ptr::null_mut()),
            slot: AtomicPtr::new(ptr::null_mut()),
        });
        ThreadState { in_op: AtomicBool::new(false), hint }
    }

    /// Opens an owner access: from here until [`end`](Self::end), a reclaimer
    /// that passes its heavy barrier sees this thread busy.
    #[inline(always)]
    pub(crate) fn begin(&self) {
        debug_assert!(
            !self.in_op.load(Relaxed),
            "magpool: a thread cache was entered from inside one of its own accesses \
             (re-entry: user code or an allocator called back into magpool)"
        );
        self.in_op.store(true, Relaxed);
        // Orders the store before the hint load for the compiler; the heavy
        // barrier supplies the hardware half (module docs).
        barrier::light();
    }

    /// Closes an owner access. Release: a reclaimer whose Acquire load sees
    /// this store also sees every access made inside.
    #[inline(always)]
    pub(crate) fn end(&self) {
        self.in_op.store(false, Release);
    }

    /// The address remembered for pool `id`, if the hint has it. Inside an
    /// access, a hit means the thread owns the slot and no reclaimer holds it.
    #[inline(always)]
    pub(crate) fn hint(&self, id: u64) -> Option<*const ()> {
        let h = &self.hint[id as usize % WAYS];
        if h.id.load(Relaxed) != id {
            return None;
        }
        Some(h.addr.load(Relaxed).cast_const())
    }

    /// The slot remembered for pool `id`, if the hint has it: a slot this
    /// thread owns (a reclaimer may hold it; the access settles that).
    pub(crate) fn hinted_slot(&self, id: u64) -> Option<*const ()> {
        let h = &self.hint[id as usize % WAYS];
        if h.id.load(Relaxed) != id {
            return None;
        }
        Some(h.slot.load(Relaxed).cast_const())
    }

    /// Records that this thread owns, in pool `id`, the slot at `slot`, whose
    /// cache's table is at `addr`. Only inside an access, after
    /// [`Owner::settle`].
    pub(crate) fn remember(&self, id: u64, addr: *const (), slot: *const ()) {
        debug_assert!(id != 0);
        let h = &self.hint[id as usize % WAYS];
        if h.id.load(Relaxed) == id && h.addr.load(Relaxed).cast_const() == addr {
            return; // the common case: nothing to write
        }
        h.id.store(0, Relaxed);
        h.addr.store(addr.cast_mut(), Relaxed);
        h.slot.store(slot.cast_mut(), Relaxed);
        h.id.store(id, Relaxed);
    }

    /// Forgets every hint (the thread is exiting).
    pub(crate) fn forget_all(&self) {
        self.hint.iter().for_each(|h| h.id.store(0, Relaxed));
    }

    /// The reclaimer's revocation of pool `id`'s hint entry, if it is there.
    fn revoke(&self, id: u64) {
        let h = &self.hint[id as usize % WAYS];
        let _ = h.id.compare_exchange(id, 0, Relaxed, Relaxed);
    }

    /// After the heavy barrier: is the thread inside an access? Acquire:
    /// pairs with [`end`](Self::end).
    fn busy(&self) -> bool {
        self.in_op.load(Acquire)
    }
}

// === impl Owner ===

/// A slot's ownership word, and where its owner's [`ThreadState`] is.
#[derive(Debug)]
pub(crate) struct Owner {
    state: AtomicU64,
    thread: AtomicPtr<ThreadState>,
}

impl Owner {
    /// A slot owned from the start by thread `serial` (published by the slot
    /// list's Release, which the reclaimer's walk acquires).
    pub(crate) fn new(serial: u64, thread: &ThreadState) -> Self {
        Owner { state: AtomicU64::new(serial), thread: AtomicPtr::new(ptr::from_ref(thread).cast_mut()) }
    }

    /// Claims a free slot for thread `serial`. AcqRel: acquires the previous
    /// owner's last access (its release), and publishes to a reclaimer that
    /// the previous owner's `thread` is gone (nulled before that release).
    pub(crate) fn try_claim(&self, serial: u64, thread: &ThreadState) -> bool {
        // Load first: a failed compare-exchange would still take the owned
        // slot's cache line from its owner.
        let claimed = self.state.load(Relaxed) == 0 && self.state.compare_exchange(0, serial, AcqRel, Relaxed).is_ok();
        if claimed {
            self.thread.store(ptr::from_ref(thread).cast_mut(), Release);
        }
        claimed
    }

    /// The start of a slow path's owner access (after `ThreadState::begin`):
    /// makes sure no reclaimer holds the slot. A hint that still holds the
    /// slot proves it, as on the hot path. Otherwise the hint is written
    /// again first (unless `remember` is off: the exit flush), then
    /// [`settle`](Self::settle) waits out a reclaimer. In that order, a
    /// reclaimer whose revocation comes after the settle sees the hint and
    /// revokes it; written after the settle, the hint would stay valid under
    /// a reclaimer that goes on to take the cache (the loom model
    /// `idle_thread_hand_off_cold_hint` finds that order; the mutant
    /// `remember_after_settle` keeps it).
    pub(crate) fn validate(
        &self,
        thread: &ThreadState,
        serial: u64,
        id: u64,
        (addr, slot): (*const (), *const ()),
        remember: bool,
    ) {
        if thread.hint(id) == Some(addr) {
            return;
        }
        if cfg!(all(loom, magpool_mutant = "remember_after_settle")) {
            self.settle(serial);
            if remember {
                thread.remember(id, addr, slot);
            }
            return;
        }
        if remember {
            thread.remember(id, addr, slot);
        }
        self.settle(serial);
    }

    /// Whether thread `serial` owns the slot (a reclaimer may hold it).
    pub(crate) fn owned_by(&self, serial: u64) -> bool {
        self.state.load(Relaxed) & !REVOKED == serial
    }

    /// The owner's slow path, inside an access, before it touches the cache
    /// (and before it writes its hint again): waits while a reclaimer holds
    /// the slot.
    ///
    /// A read-modify-write, not a load, because a load may return a state
    /// older than a revocation whose hint it has already seen (nothing
    /// orders the two locations), and the owner would then remember the
    /// hint under a reclaimer that goes on to find it idle (the loom model
    /// `idle_thread_hand_off` found exactly that). An RMW reads the latest
    /// state: a revocation before it makes it wait, and (AcqRel) a revocation
    /// after it acquires this access's `in_op` store, so that reclaimer sees
    /// the owner busy, or its end and everything before. Acquire on the wait:
    /// what the reclaimer did happens before what the owner does next.
    pub(crate) fn settle(&self, serial: u64) {
        if cfg!(all(loom, magpool_mutant = "settle_loads")) {
            // The first version: a load, which the model catches.
            while self.state.load(Acquire) & REVOKED != 0 {
                yield_now();
            }
            return;
        }
        while let Err(state) = self.state.compare_exchange(serial, serial, AcqRel, Acquire) {
            debug_assert_eq!(state & !REVOKED, serial, "settle by a thread that does not own the slot");
            yield_now();
        }
    }

    /// The owner gives the slot up (at its exit, after its flush), waiting
    /// out a reclaimer that holds it. Release: the next claimant sees every
    /// access of this owner's.
    pub(crate) fn release(&self, serial: u64) {
        self.thread.store(ptr::null_mut(), Relaxed);
        while self.state.compare_exchange(serial, 0, Release, Relaxed).is_err() {
            debug_assert_eq!(self.state.load(Relaxed) & !REVOKED, serial, "release by a non-owner");
            yield_now();
        }
    }

    /// A reclaimer's first step: holds an owned slot (sets `REVOKED`) and
    /// revokes its owner's hint for pool `id`. `None` when the slot is free,
    /// held already, or its owner has not published its state yet.
    pub(crate) fn revoke(&self, id: u64) -> Option<Revoked<'_>> {
        let serial = self.state.load(Relaxed);
        if serial == 0 || serial & REVOKED != 0 {
            return None;
        }
        // Acquire: pairs with the claim's AcqRel (see `try_claim`).
        self.state.compare_exchange(serial, serial | REVOKED, Acquire, Relaxed).ok()?;
        let held = Revoked { owner: self, serial, thread: self.thread.load(Acquire) };
        // SAFETY: non-null means the current owner's state, alive while
        // REVOKED is set (module invariants).
        unsafe { held.thread.as_ref() }?.revoke(id);
        Some(held)
    }
}

/// A slot a reclaimer holds; dropping it hands the slot back to its owner.
#[derive(Debug)]
pub(crate) struct Revoked<'a> {
    owner: &'a Owner,
    serial: u64,
    thread: *const ThreadState,
}

impl Revoked<'_> {
    /// After [`barrier::heavy`] has returned: `true` when the owner is not
    /// inside an access, and so, until this drops, the cache is the
    /// reclaimer's alone (the owner's next access waits in `settle`).
    pub(crate) fn idle(&self) -> bool {
        if cfg!(all(loom, magpool_mutant = "reclaim_ignores_busy")) {
            return true;
        }
        // SAFETY: non-null (checked in `revoke`) and alive while REVOKED is
        // set (module invariants).
        !unsafe { &*self.thread }.busy()
    }
}

impl Drop for Revoked<'_> {
    fn drop(&mut self) {
        // Release: the reclaimer's accesses happen before the owner's next,
        // which acquires this in `settle`.
        self.owner.state.store(self.serial, Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Owner accesses never nest: a nested one is a bug (user code or an
    /// allocator calling back into magpool from inside one), caught in
    /// debug builds before it could alias the cache.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "re-entry")]
    fn a_nested_access_panics_in_debug_builds() {
        let thread = ThreadState::new();
        thread.begin();
        thread.begin();
    }

    #[test]
    fn revocation_makes_the_hint_miss_and_waits_for_the_owner() {
        let thread = ThreadState::new();
        let owner = Owner::new(7, &thread);
        let (addr, slot) = (8 as *const (), 16 as *const ());
        thread.remember(3, addr, slot);
        assert_eq!((thread.hint(3), thread.hinted_slot(3)), (Some(addr), Some(slot)));
        assert_eq!(thread.hint(7), None, "another pool in the same way misses");
        // A reclaimer holds the slot: the hint misses from now on, and the
        // owner, not inside an access, is idle.
        let held = owner.revoke(3).expect("an owned slot");
        assert_eq!(thread.hint(3), None);
        assert!(held.idle());
        assert!(owner.revoke(3).is_none(), "held already");
        drop(held);
        owner.settle(7); // handed back: no wait
                         // Busy: inside an access, the reclaimer must give up.
        thread.remember(3, addr, slot);
        thread.begin();
        let held = owner.revoke(3).expect("owned");
        assert!(!held.idle());
        drop(held);
        thread.end();
        owner.release(7);
        assert!(owner.revoke(3).is_none(), "a free slot has nothing to take");
    }
}
