//! [`Block`]: an owned run of initialised bytes; the only caller of the global
//! allocator.
//!
//! # Invariants
//!
//! - A `Block` of `size > 0` owns an allocation made here with
//!   `Layout::from_size_align(size, align_for(size))`, and frees it exactly once, on drop.
//! - A `Block` of size 0 owns nothing; its pointer is dangling but aligned.
//! - Every byte of a block is initialised: blocks are born zeroed
//!   (`alloc_zeroed`), and later writes only store bytes.
//! - `dirty <= size`, and bytes `dirty..size` are zero unless the pool runs
//!   with zeroing off: `dirty` is how far any user may have written. Blocks
//!   are born clean (`dirty == 0`); a [`Buf`](crate::Buf) raises `dirty` as
//!   it lengthens, and only a wipe of everything past a length lowers it.
//!   Bytes below `dirty` may hold an earlier user's data: the pool zeroes a
//!   prefix ([`zero_prefix`](Block::zero_prefix)) before exposing it, and a
//!   `Buf` writes every other byte before it exposes it.
//!
//! Called by the pool (to make, wipe and free blocks) and by
//! [`Buf`](crate::Buf) (which records how far it exposed a block).
#![allow(clippy::disallowed_methods)] // this is block.rs: the one home of alloc/dealloc

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use crate::Error;

/// Largest alignment of any block (see [`align_for`]).
pub(crate) const ALIGN: usize = 64;

/// Blocks this big or bigger are 16-aligned, what `malloc` gives on 64-bit
/// targets, so that the system allocator serves `alloc_zeroed` with `calloc`,
/// whose fresh pages from the kernel need no memset and stay untouched (not
/// resident) until used. glibc maps allocations from 128 KiB up this way.
const CALLOC_FROM: usize = 128 << 10;

/// The alignment of a block of `size` bytes: a cache line (64) below
/// [`CALLOC_FROM`], so that vector stores never straddle two lines (a
/// 16-aligned 512-byte block cost twice as much to zero and to fill: `perf`);
/// 16 from there up, so that a fresh block's pages stay lazily zeroed.
#[inline]
pub(crate) const fn align_for(size: usize) -> usize {
    if size < CALLOC_FROM {
        ALIGN
    } else {
        16
    }
}

/// An owned, initialised, aligned ([`align_for`]) byte allocation of a fixed size,
/// and how much of it a user may have written.
///
/// # Invariants
///
/// See the module docs: owns `size` initialised bytes (or nothing when
/// `size == 0`), freed on drop; `dirty <= size`, zeroes past `dirty`.
#[derive(Debug)]
pub(crate) struct Block {
    ptr: BlockPtr,
    size: usize,
    dirty: usize,
}

/// The address of a block's bytes, held by the block's one owner: a `Block`,
/// or a `Buf` (which holds a block's raw parts).
///
/// # Invariants
///
/// Whoever holds a `BlockPtr` owns the block's bytes exclusively, like a
/// `Box<[u8]>`, and reaches them through it alone.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockPtr(NonNull<u8>);

/// Moving the pointer moves the ownership of the bytes, which are plain data.
// SAFETY: no other handle to the bytes exists (type invariant), so another
// thread's use of them cannot overlap ours.
unsafe impl Send for BlockPtr {}
/// Sharing the pointer shares only its value: reaching the bytes through
/// `&` gives reads, and every write needs the owner's `&mut`.
// SAFETY: as for `Send`; `BlockPtr` has no interior mutability.
unsafe impl Sync for BlockPtr {}

impl BlockPtr {
    /// The first byte.
    #[inline(always)]
    pub(crate) fn as_ptr(self) -> *mut u8 {
        self.0.as_ptr()
    }
}

const _: () = assert!(std::mem::size_of::<Block>() == 3 * std::mem::size_of::<usize>());

#[cfg(test)]
crate::sync::thread_local! {
    /// Bytes this thread's `zero_prefix` calls zeroed: unit tests check that
    /// nothing is zeroed that is not exposed.
    pub(crate) static ZEROED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}
const _: () = assert!(std::mem::align_of::<u128>() <= 16 && align_for(usize::MAX) >= 16);

/// Dirty prefixes up to this many bytes are wiped with one fixed-size store
/// sequence, inlined, instead of a call to `memset` (the common case of a
/// small record in a larger class), in blocks at least this big.
const INLINE_WIPE: usize = 64;

impl Block {
    /// A block of zero bytes: allocates nothing.
    #[inline]
    pub(crate) const fn empty() -> Block {
        // ALIGN is a power of two and non-zero.
        let ptr = NonNull::<u8>::dangling().as_ptr().wrapping_add(ALIGN - 1);
        // SAFETY: `dangling()` is 1 and ALIGN - 1 + 1 = ALIGN: non-null.
        Block { ptr: BlockPtr(unsafe { NonNull::new_unchecked(ptr) }), size: 0, dirty: 0 }
    }

    /// The layout of a block of `size` bytes, or the error naming the size.
    #[inline]
    fn layout(size: usize) -> Result<Layout, Error> {
        Layout::from_size_align(size, align_for(size)).map_err(|_| Error::CapacityOverflow { requested: size })
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
            Some(ptr) => Ok(Block { ptr: BlockPtr(ptr), size, dirty: 0 }),
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

    /// How far a user may have written: bytes past it are zero (with
    /// zeroing on).
    #[cfg(test)]
    pub(crate) fn dirty(&self) -> usize {
        self.dirty
    }

    /// Records that bytes up to `len` are exposed to a user (and so may be
    /// written). Never lowers the mark.
    #[cfg(test)]
    pub(crate) fn expose(&mut self, len: usize) {
        assert!(len <= self.size, "expose({len}) past a {}-byte block", self.size);
        self.dirty = self.dirty.max(len);
    }

    /// Gives up the block as `(ptr, size, dirty)`, without freeing it: the
    /// caller now owns the allocation and must rebuild the block with
    /// [`from_raw_parts`](Block::from_raw_parts) to free or reuse it.
    #[inline(always)]
    pub(crate) fn into_raw_parts(self) -> (BlockPtr, usize, usize) {
        let parts = (self.ptr, self.size, self.dirty);
        std::mem::forget(self);
        parts
    }

    /// Rebuilds a block from [`into_raw_parts`](Block::into_raw_parts).
    ///
    /// # Safety
    ///
    /// `ptr` and `size` come from one `into_raw_parts` call whose parts have
    /// not been rebuilt since; `dirty <= size`, and bytes past `dirty` are zero
    /// if the pool zeroes (or `dirty` is at least the one given up).
    #[inline(always)]
    pub(crate) unsafe fn from_raw_parts(ptr: BlockPtr, size: usize, dirty: usize) -> Block {
        debug_assert!(dirty <= size);
        Block { ptr, size, dirty }
    }

    /// Zeroes what an earlier user may have written below `len`, so that
    /// bytes `[0, len)` are all zero; the mark stays (bytes past `len` may
    /// still hold old data, never exposed without a write first). Cost:
    /// `min(len, dirty)` bytes of stores, inlined when at most 64.
    #[inline]
    pub(crate) fn zero_prefix(&mut self, len: usize) {
        let n = len.min(self.dirty);
        if n == 0 {
            return;
        }
        #[cfg(test)]
        ZEROED.with(|z| z.set(z.get() + n));
        if n <= INLINE_WIPE && self.size >= INLINE_WIPE {
            // Volatile, so that LLVM keeps these as stores: it turns any
            // plain fixed-size zeroing into a `memset` and then merges the two
            // branches into one `memset` call of a selected length (seen in
            // `perf annotate`), which is the call this branch exists to avoid.
            // SAFETY: `INLINE_WIPE <= size` writable bytes, exclusively ours
            // (`&mut self`); every block is at least 16-aligned (`align_for`),
            // which is all a `u128` needs.
            unsafe {
                let words = self.ptr.as_ptr().cast::<u128>();
                for i in 0..INLINE_WIPE / 16 {
                    words.add(i).write_volatile(0);
                }
            }
        } else {
            // SAFETY: `n <= dirty <= size` (invariant) writable bytes,
            // exclusively ours (`&mut self`).
            unsafe { self.ptr.as_ptr().write_bytes(0, n) };
        }
    }

    /// Asks the allocator to give free memory back to the operating system.
    /// Only glibc needs asking: it keeps freed memory in its heaps (and
    /// raises its mmap threshold as large blocks are freed, so later ones
    /// come from the heap too), and `malloc_trim` returns every whole free
    /// page of every arena with `madvise`. Where the global allocator is not
    /// glibc's, this only trims glibc's own, mostly empty heaps. Costs a walk
    /// of those heaps: for `trim` and the reclaimer, never a get or release.
    pub(crate) fn return_free_memory() {
        #[cfg(all(target_os = "linux", target_env = "gnu", not(miri)))]
        // SAFETY: malloc_trim takes a byte count and touches only the
        // allocator's own free memory.
        unsafe {
            libc::malloc_trim(0);
        }
    }

    /// Overwrites what a user may have written with `byte` (debug builds with
    /// zeroing off: stale reads then show up as a pattern).
    pub(crate) fn poison(&mut self, byte: u8) {
        // SAFETY: `dirty <= size` writable bytes, exclusively ours.
        unsafe { self.ptr.as_ptr().write_bytes(byte, self.dirty) };
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
        b.expose(100);
        b.poison(7);
        // SAFETY: as above.
        let s = unsafe { std::slice::from_raw_parts(b.as_ptr(), 4096) };
        assert!(s[..100].iter().all(|&x| x == 7) && s[100..].iter().all(|&x| x == 0));
        assert_eq!(b.dirty(), 100);
    }

    #[test]
    fn zero_prefix_clears_what_it_exposes_and_keeps_the_mark() {
        for (dirty, len) in [(1, 4096), (63, 10), (64, 64), (65, 4096), (100, 50), (4096, 4096), (4096, 1)] {
            let mut b = Block::new_zeroed(4096).unwrap();
            b.expose(dirty);
            b.expose(dirty / 2); // never lowers the mark
            b.poison(0xA5);
            b.zero_prefix(len);
            assert_eq!(b.dirty(), dirty, "the mark stays");
            // SAFETY: 4096 initialised bytes owned by `b`.
            let s = unsafe { std::slice::from_raw_parts(b.as_ptr(), 4096) };
            assert!(s[..len].iter().all(|&x| x == 0), "dirty {dirty}, len {len}");
            // Past the exposed prefix, old bytes stay (the inline path may
            // clear up to 64), and past the mark everything is zero.
            let kept = if len < 64 { 64 } else { len };
            assert!(s[kept.min(dirty)..dirty].iter().all(|&x| x == 0xA5), "dirty {dirty}, len {len}");
            assert!(s[dirty..].iter().all(|&x| x == 0));
        }
        // A block smaller than the inline length is zeroed by its length.
        let mut small = Block::new_zeroed(16).unwrap();
        small.expose(16);
        small.poison(1);
        small.zero_prefix(16);
        // SAFETY: 16 initialised bytes owned by `small`.
        assert_eq!(unsafe { std::slice::from_raw_parts(small.as_ptr(), 16) }, &[0; 16]);
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
