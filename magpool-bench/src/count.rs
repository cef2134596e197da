//! A counting allocator: wraps any [`GlobalAlloc`] and, while counting is on,
//! counts every call into it. The report installs `CountingAlloc<System>` as
//! its global allocator, and the mimalloc and jemalloc buffers of
//! [`peers`](crate::peers) call through a `CountingAlloc` too, so allocator
//! calls per op can be counted for every implementation.
//!
//! Counting is off unless [`arm`] was called; the workloads call [`begin`] and
//! [`end`] around their timed section, so only steady-state work is counted.
//! Off, each call costs one relaxed load of a flag.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

static ARMED: AtomicBool = AtomicBool::new(false);
static COUNTING: AtomicBool = AtomicBool::new(false);
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Makes the next [`begin`] turn counting on (the report's count pass).
pub fn arm(on: bool) {
    ARMED.store(on, Relaxed);
}

/// Resets the count and starts counting, if [`arm`]ed. Called by the
/// workloads when their timed section starts.
pub fn begin() {
    if ARMED.load(Relaxed) {
        CALLS.store(0, Relaxed);
        COUNTING.store(true, Relaxed);
    }
}

/// Stops counting. Called by the workloads when their timed section ends.
pub fn end() {
    COUNTING.store(false, Relaxed);
}

/// Allocator calls (alloc, alloc_zeroed, realloc, dealloc) counted between the
/// last [`begin`] and [`end`].
pub fn calls() -> u64 {
    CALLS.load(Relaxed)
}

#[inline(always)]
fn note() {
    if COUNTING.load(Relaxed) {
        CALLS.fetch_add(1, Relaxed);
    }
}

/// `A`, counting its calls while counting is on.
#[derive(Debug)]
pub struct CountingAlloc<A>(pub A);

// SAFETY: every method forwards to `A` with the caller's arguments unchanged,
// so `A`'s guarantees are ours; counting touches only atomics, never memory
// the allocator hands out, and never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded from our caller.
        unsafe { self.0.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded from our caller.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: forwarded from our caller.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded from our caller.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}
