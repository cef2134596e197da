//! The allocator baselines: `Vec` from the global allocator, and a `Vec`-like
//! [`RawBuf`] that calls mimalloc or jemalloc directly through its
//! `GlobalAlloc` impl (the `allocator_api` that would let `Vec` do this is
//! unstable).

use std::alloc::{GlobalAlloc, Layout};
use std::ptr::NonNull;
use std::slice;

use mimalloc::MiMalloc;
use tikv_jemallocator::Jemalloc;

use crate::count::CountingAlloc;
use crate::Impl;

// === impl SystemVec ===

/// `vec![0; len]` and `Vec::with_capacity` from the global allocator (the
/// system allocator in the benches and the report, behind the report's
/// counting wrapper).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemVec;

impl Impl for SystemVec {
    type Buf<'a> = Vec<u8>;

    fn name(&self) -> &'static str {
        "vec"
    }

    fn is_pool(&self) -> bool {
        false
    }

    #[inline]
    fn get(&self, len: usize) -> Vec<u8> {
        vec![0; len]
    }

    #[inline]
    fn with_capacity(&self, capacity: usize) -> Vec<u8> {
        Vec::with_capacity(capacity)
    }

    #[inline]
    fn extend(buf: &mut Vec<u8>, bytes: &[u8]) {
        buf.extend_from_slice(bytes);
    }
}

// === impl RawBuf ===

/// An owned byte buffer allocated through `alloc`, with `Vec`'s layout rules
/// (alignment 1, nothing allocated at capacity 0).
///
/// # Invariants
///
/// `len <= cap`; when `cap > 0`, `ptr` came from `alloc` with
/// `Layout::from_size_align(cap, 1)` and its first `len` bytes are initialised.
#[derive(Debug)]
pub struct RawBuf<A: GlobalAlloc + 'static> {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
    alloc: &'static A,
}

/// A `RawBuf` owns its allocation exclusively, like `Vec<u8>`.
// SAFETY: no other handle to the allocation exists; the allocator is a
// `'static` shared reference to a `Sync` allocator, usable from any thread.
unsafe impl<A: GlobalAlloc + Sync> Send for RawBuf<A> {}

impl<A: GlobalAlloc + 'static> RawBuf<A> {
    fn layout(cap: usize) -> Layout {
        match Layout::from_size_align(cap, 1) {
            Ok(layout) => layout,
            Err(_) => panic!("capacity overflow"),
        }
    }

    /// `len` zero bytes through `alloc_zeroed`, as `vec![0; len]` does.
    #[inline]
    pub fn zeroed(alloc: &'static A, len: usize) -> Self {
        if len == 0 {
            return RawBuf { ptr: NonNull::dangling(), len: 0, cap: 0, alloc };
        }
        let layout = Self::layout(len);
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc.alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        RawBuf { ptr, len, cap: len, alloc }
    }

    /// Empty, with room for `cap` bytes, as `Vec::with_capacity` does.
    #[inline]
    pub fn with_capacity(alloc: &'static A, cap: usize) -> Self {
        if cap == 0 {
            return RawBuf { ptr: NonNull::dangling(), len: 0, cap: 0, alloc };
        }
        let layout = Self::layout(cap);
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc.alloc(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        RawBuf { ptr, len: 0, cap, alloc }
    }

    /// Appends `bytes`, reallocating to at least twice the capacity if needed.
    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let needed = self.len.checked_add(bytes.len()).expect("capacity overflow");
        if needed > self.cap {
            self.grow(needed);
        }
        // SAFETY: `needed <= cap` now: the destination is inside our
        // allocation, and `bytes` cannot overlap it (we own it exclusively).
        unsafe { self.ptr.as_ptr().add(self.len).copy_from_nonoverlapping(bytes.as_ptr(), bytes.len()) };
        self.len = needed;
    }

    #[cold]
    fn grow(&mut self, needed: usize) {
        let new_cap = needed.max(self.cap.saturating_mul(2));
        let new_layout = Self::layout(new_cap);
        let raw = if self.cap == 0 {
            // SAFETY: `new_cap >= needed > 0`.
            unsafe { self.alloc.alloc(new_layout) }
        } else {
            // SAFETY: `ptr` was allocated by `alloc` with `layout(cap)`
            // (invariant) and `new_cap` is non-zero and fits a `Layout`.
            unsafe { self.alloc.realloc(self.ptr.as_ptr(), Self::layout(self.cap), new_cap) }
        };
        self.ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(new_layout));
        self.cap = new_cap;
    }
}

impl<A: GlobalAlloc + 'static> AsMut<[u8]> for RawBuf<A> {
    #[inline]
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: `len` initialised bytes owned by `self` (or an empty slice
        // at a dangling, aligned pointer when `cap == 0`).
        unsafe { slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<A: GlobalAlloc + 'static> Drop for RawBuf<A> {
    #[inline]
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: `ptr` was allocated by `alloc` with `layout(cap)`
            // (invariant) and is freed only here.
            unsafe { self.alloc.dealloc(self.ptr.as_ptr(), Self::layout(self.cap)) };
        }
    }
}

// === impl Direct ===

static MIMALLOC: CountingAlloc<MiMalloc> = CountingAlloc(MiMalloc);
static JEMALLOC: CountingAlloc<Jemalloc> = CountingAlloc(Jemalloc);

/// `vec![0; len]` and `Vec::with_capacity` semantics, through mimalloc or
/// jemalloc called directly (whatever the process's global allocator is).
#[derive(Debug)]
pub struct Direct<A: GlobalAlloc + Sync + 'static> {
    name: &'static str,
    alloc: &'static A,
}

impl Direct<CountingAlloc<MiMalloc>> {
    /// Through mimalloc.
    pub fn mimalloc() -> Self {
        Direct { name: "mimalloc", alloc: &MIMALLOC }
    }
}

impl Direct<CountingAlloc<Jemalloc>> {
    /// Through jemalloc (tikv-jemallocator, prefixed symbols: it does not
    /// replace `malloc`).
    pub fn jemalloc() -> Self {
        Direct { name: "jemalloc", alloc: &JEMALLOC }
    }
}

impl<A: GlobalAlloc + Sync + 'static> Impl for Direct<A> {
    type Buf<'a> = RawBuf<A>;

    fn name(&self) -> &'static str {
        self.name
    }

    fn is_pool(&self) -> bool {
        false
    }

    #[inline]
    fn get(&self, len: usize) -> RawBuf<A> {
        RawBuf::zeroed(self.alloc, len)
    }

    #[inline]
    fn with_capacity(&self, capacity: usize) -> RawBuf<A> {
        RawBuf::with_capacity(self.alloc, capacity)
    }

    #[inline]
    fn extend(buf: &mut RawBuf<A>, bytes: &[u8]) {
        buf.extend_from_slice(bytes);
    }
}
