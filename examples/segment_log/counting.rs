//! A counting global allocator: `System`, plus a count of the calls into it
//! (alloc, alloc_zeroed, realloc, dealloc) made by *armed* threads: the
//! threads of a run arm themselves ([`arm`]), so the progress bar's drawing
//! thread and the test harness's threads are not counted.
//!
//! Each armed thread counts on its own cache line (a stripe chosen when it
//! arms), so the counting adds no contention that would slow the `Vec`
//! baseline more than the pool.
//!
//! # Invariants
//!
//! - Counting never allocates: the stripe is a `const` thread-local without a
//!   destructor, readable even during thread teardown.
//!
//! Armed by `workload.rs`; read by `main.rs` around a run, and by the tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// `System`, counted.
#[derive(Debug)]
pub(crate) struct Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const STRIPES: usize = 64;

/// One counter on its own cache line.
#[repr(align(128))]
struct Stripe(AtomicU64);

static COUNTS: [Stripe; STRIPES] = [const { Stripe(AtomicU64::new(0)) }; STRIPES];
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's stripe plus one, or 0 while it is not armed.
    static STRIPE: Cell<usize> = const { Cell::new(0) };
}

/// Counts the calling thread's allocator calls from now on (idempotent).
pub(crate) fn arm() {
    STRIPE.with(|s| {
        if s.get() == 0 {
            s.set(NEXT_STRIPE.fetch_add(1, Relaxed) % STRIPES + 1);
        }
    });
}

fn count() {
    let stripe = STRIPE.try_with(Cell::get).unwrap_or(0);
    if stripe > 0 {
        COUNTS[stripe - 1].0.fetch_add(1, Relaxed);
    }
}

/// Calls into the global allocator by armed threads so far. Exact once the
/// threads that made them are joined (Relaxed: the join orders them).
pub(crate) fn calls() -> u64 {
    COUNTS.iter().map(|s| s.0.load(Relaxed)).sum()
}

// SAFETY: every method forwards to `System` with the caller's arguments, so
// `System`'s guarantees are ours; counting touches no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded: the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count();
        // SAFETY: forwarded: `ptr` came from this allocator (so from `System`)
        // with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded: the caller upholds `realloc`'s contract, and `ptr`
        // came from `System` through this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
