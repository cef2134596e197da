//! [`Block`]: an owned run of initialised bytes; the only caller of the global
//! allocator.
//!
//! # Invariants
//!
//! - A `Block` of `size > 0` owns an allocation made here with
//!   `Layout::from_size_align(size, ALIGN)`, and frees it exactly once, on drop.
//! - A `Block` of size 0 owns nothing; its pointer is dangling but aligned.
//! - Every byte of a block is initialised: blocks are born zeroed
//!   (`alloc_zeroed`), and later writes only store bytes.
//!
//! Called by the pool (to make and free class blocks and oversized buffers) and
//! by [`Buf`](crate::Buf) (to zero or poison what a user wrote).
#![allow(clippy::disallowed_methods)] // this is block.rs: the one home of alloc/dealloc

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use crate::Error;

/// Alignment of every block: 16 bytes, what `malloc` gives on 64-bit targets,
/// so that the system allocator can serve `alloc_zeroed` with `calloc` (fresh
/// pages from the kernel need no memset).
pub(crate) const ALIGN: usize = 16;

/// An owned, initialised, `ALIGN`-aligned byte allocation of a fixed size.
///
/// # Invariants
///
/// See the module docs: owns `size` initialised bytes (or nothing when
/// `size == 0`), freed on drop.
#[derive(Debug)]
pub(crate) struct Block {
    ptr: NonNull<u8>,
    size: usize,
}

/// A `Block` owns its allocation exclusively, like `Box<[u8]>`.
// SAFETY: no other handle to the allocation exists; moving it between threads
// moves the whole ownership.
unsafe impl Send for Block {}
/// `&Block` only exposes the pointer's value and the size.
// SAFETY: no interior mutability reachable from `&Block`.
unsafe impl Sync for Block {}

const _: () = assert!(std::mem::size_of::<Block>() == 2 * std::mem::size_of::<usize>());

impl Block {
    /// A block of zero bytes: allocates nothing.
    #[inline]
    pub(crate) const fn empty() -> Block {
        // ALIGN is a power of two and non-zero.
        let ptr = NonNull::<u8>::dangling().as_ptr().wrapping_add(ALIGN - 1);
        // SAFETY: `dangling()` is 1 and ALIGN - 1 + 1 = ALIGN: non-null.
        Block { ptr: unsafe { NonNull::new_unchecked(ptr) }, size: 0 }
    }

    /// The layout of a block of `size` bytes, or the error naming the size.
    #[inline]
    fn layout(size: usize) -> Result<Layout, Error> {
        Layout::from_size_align(size, ALIGN).map_err(|_| Error::CapacityOverflow { requested: size })
    }

    /// Allocates `size` zeroed bytes from the global allocator.
    ///
    /// # Errors
    ///
    /// [`Error::CapacityOverflow`] past `isize::MAX`, [`Error::AllocationFailed`]
    /// when the allocator returns null. Nothing is allocated on error.
    pub(crate) fn new_zeroed(size: usize) -> Result<Block, Error> {
        if size == 0 {
            return Ok(Block::empty());
        }
        let layout = Block::layout(size)?;
        // SAFETY: `layout` has a non-zero size (checked above).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        match NonNull::new(raw) {
            Some(ptr) => Ok(Block { ptr, size }),
            None => Err(Error::AllocationFailed { size }),
        }
    }

    /// Size in bytes.
    #[inline]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Pointer to the first byte; valid for `size` bytes of reads and writes
    /// by whoever owns the block.
    #[inline]
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Sets the first `len` bytes to `byte`. Cost: `len` bytes of memset.
    #[inline]
    pub(crate) fn fill_prefix(&mut self, len: usize, byte: u8) {
        assert!(len <= self.size, "fill_prefix({len}) past a {}-byte block", self.size);
        // SAFETY: `len <= size`, and the block owns `size` writable bytes
        // (`&mut self`: nobody else reads them now).
        unsafe { self.ptr.as_ptr().write_bytes(byte, len) };
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if self.size == 0 {
            return;
        }
        // Cannot fail: the same layout was accepted when the block was made.
        if let Ok(layout) = Block::layout(self.size) {
            // SAFETY: `ptr` was returned by `alloc_zeroed(layout)` with this very
            // layout (invariant), and this is the only place it is freed.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn zeroed_and_aligned() {
        let mut b = Block::new_zeroed(4096).unwrap();
        assert_eq!(b.as_ptr() as usize % ALIGN, 0);
        // SAFETY: 4096 initialised bytes owned by `b`.
        let s = unsafe { std::slice::from_raw_parts(b.as_ptr(), 4096) };
        assert!(s.iter().all(|&x| x == 0));
        b.fill_prefix(100, 7);
        // SAFETY: as above.
        let s = unsafe { std::slice::from_raw_parts(b.as_ptr(), 4096) };
        assert!(s[..100].iter().all(|&x| x == 7) && s[100..].iter().all(|&x| x == 0));
    }

    #[test]
    fn empty_and_overflow() {
        let e = Block::new_zeroed(0).unwrap();
        assert_eq!(e.size(), 0);
        assert_eq!(e.as_ptr() as usize % ALIGN, 0);
        assert_eq!(Block::new_zeroed(usize::MAX).unwrap_err(), Error::CapacityOverflow { requested: usize::MAX });
        assert!(Block::new_zeroed(isize::MAX as usize - 1).is_err());
    }
}
