//! [`Buf`]: the RAII handle to a pooled buffer; dropping it is the release.
//!
//! # Invariants
//!
//! - `ptr`, `size` and `dirty` are the raw parts of a [`Block`] this handle
//!   owns (`Block::into_raw_parts`), rebuilt exactly once: on drop, or when
//!   growth swaps in another block.
//! - `len <= dirty <= size`: `dirty` is the block's mark (`block.rs`), raised
//!   to cover every byte this handle exposed; with zeroing on, bytes past it
//!   are zero.
//! - Bytes `[0, size)` are initialised (see `block.rs`), and bytes `[0, len)`
//!   were zeroed when the pool handed the block out or written by this
//!   handle's user since. Bytes `[len, size)` may hold an earlier user's data:
//!   no safe method reads them or exposes them without writing them first
//!   (zero on exposure: `Pool::get` zeroes its prefix, every method that
//!   lengthens writes first, and the spare capacity is write-only).
//! - `class` is the class the block belongs to in `pool` (or the oversized
//!   pseudo-class for exact-size and empty blocks).
//!
//! Calls the pool on drop and on growth.
//!
//! A `Buf` cannot outlive its pool:
//!
//! ```compile_fail
//! let buf = {
//!     let pool = magpool::Pool::new();
//!     pool.get(10)
//! };
//! ```
//!
//! and is not `Clone` (a clone would release the same block twice):
//!
//! ```compile_fail
//! let pool = magpool::Pool::new();
//! let a = pool.get(10);
//! let b = a.clone();
//! ```

use std::mem::MaybeUninit;
use std::{ptr, slice};

use crate::buffer::block::{Block, BlockPtr};
use crate::{Error, Pool};

/// A byte buffer from a [`Pool`], with a length and a class-sized capacity.
///
/// It dereferences to `[u8]` (its first `len()` bytes) and fills like a `Vec`:
/// [`extend_from_slice`](Buf::extend_from_slice), [`resize`](Buf::resize),
/// [`push`](Buf::push) and [`io::Write`](std::io::Write). Growing past the capacity moves the
/// contents once into a buffer of the next class that fits, from the same
/// pool. Dropping it gives the buffer back to the pool, even during a panic.
///
/// `Buf` is `Send + Sync`: it may be dropped on another thread than the one
/// that got it (the buffer then goes to that thread's cache).
///
/// # What a buffer shows
///
/// With zeroing on (the default), a `Buf` shows only zeroes and what its own
/// user wrote: [`Pool::get`] zeroes the bytes it exposes, and every method
/// that lengthens the buffer writes the new bytes first. Its spare capacity
/// (past `len()`) may still hold an earlier user's bytes, which no safe
/// method reads: [`spare_capacity_mut`](Buf::spare_capacity_mut) is
/// write-only (`MaybeUninit`), and [`set_len`](Buf::set_len) is `unsafe`.
/// The pool zeroes on exposure, not on release: a released buffer's bytes
/// stay in memory until they are overwritten or freed, so overwrite a secret
/// before dropping its buffer.
///
/// # Examples
///
/// ```
/// let pool = magpool::Pool::new();
/// let mut buf = pool.with_capacity(512);
/// buf.extend_from_slice(&[1; 500]);
/// buf.extend_from_slice(&[2; 100]); // 600 > 512: moves to the 1 KiB class
/// assert_eq!((buf.len(), buf.capacity()), (600, 1024));
/// assert_eq!(buf[499..501], [1, 2]);
/// ```
///
/// `repr(C)`, in this order, so that no two fields the drop copies into a
/// magazine slot are adjacent: LLVM would copy such a pair with one 16-byte
/// load, which cannot be forwarded from the two 8-byte stores that wrote it a
/// few nanoseconds earlier (`perf annotate` showed that stall as half the
/// cost of a get+release).
#[repr(C)]
pub struct Buf<'p> {
    ptr: BlockPtr,
    len: usize,
    size: usize,
    class: usize,
    dirty: usize,
    pool: &'p Pool,
}

const _: () = assert!(std::mem::size_of::<Buf<'_>>() == 6 * std::mem::size_of::<usize>());
// `Send + Sync` follow from the fields: the block's pointer (`BlockPtr`) and
// a `&Pool`.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Buf<'static>>();
};

impl<'p> Buf<'p> {
    /// Wraps `block` with `len` exposed bytes.
    #[inline]
    pub(crate) fn new(pool: &'p Pool, block: Block, class: usize, len: usize) -> Buf<'p> {
        let (ptr, size, dirty) = block.into_raw_parts();
        debug_assert!(len <= size);
        Buf { ptr, len, size, class, dirty: dirty.max(len), pool }
    }

    /// Number of bytes in the buffer. O(1).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when `len() == 0`. O(1).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the buffer holds without moving: its class size (or, oversized,
    /// its exact size). O(1).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.size
    }

    /// `true` for a buffer above the largest class: allocated exactly, freed on
    /// drop rather than pooled.
    pub fn is_oversized(&self) -> bool {
        self.capacity() > 0 && self.class >= self.pool.size_classes().len()
    }

    /// The pool this buffer returns to.
    pub fn pool(&self) -> &'p Pool {
        self.pool
    }

    /// The contents. O(1).
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len <= block.size()` initialised bytes owned by this handle.
        unsafe { slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The contents, mutably. O(1).
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as `as_slice`, and `&mut self` makes the access exclusive.
        unsafe { slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes past the length, write-only: fill them, then
    /// [`set_len`](Buf::set_len) to take them in. They may hold an earlier
    /// user's bytes (see [What a buffer shows](Buf#what-a-buffer-shows)),
    /// which is why they are `MaybeUninit`: reading them takes `unsafe`.
    /// O(1).
    ///
    /// ```
    /// let pool = magpool::Pool::new();
    /// let mut buf = pool.with_capacity(16);
    /// let spare = buf.spare_capacity_mut();
    /// spare[0].write(b'h');
    /// spare[1].write(b'i');
    /// // SAFETY: the first two spare bytes were just written.
    /// unsafe { buf.set_len(2) };
    /// assert_eq!(&buf[..], b"hi");
    /// ```
    #[inline]
    pub fn spare_capacity_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: `len <= size` bytes of the block this handle owns; the
        // slice is `MaybeUninit`, so nothing safe can read what is there.
        unsafe { slice::from_raw_parts_mut(self.ptr.as_ptr().add(self.len).cast(), self.size - self.len) }
    }

    /// Sets the length to `len`, like `Vec::set_len`. O(1).
    ///
    /// # Safety
    ///
    /// - `len <= capacity()`;
    /// - bytes `[old len, len)` were written since this `Buf` was handed out
    ///   (through [`spare_capacity_mut`](Buf::spare_capacity_mut), or before
    ///   a `truncate`). The memory is always initialised, so breaking only
    ///   this second rule is not undefined behaviour, but it may expose an
    ///   earlier user's bytes, which the pool otherwise never does.
    #[inline]
    pub unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= self.size, "set_len({len}) past a capacity of {}", self.size);
        self.set_len_grown(len);
    }

    /// Sets the length to 0, keeping the capacity. O(1).
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Shortens to `len` bytes; no effect if already shorter. O(1).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Makes room for `additional` more bytes, moving to a larger class if
    /// needed (one copy of `len()` bytes; the old buffer goes back to the pool).
    ///
    /// # Panics
    ///
    /// As [`Pool::get`] when the new size is impossible.
    #[inline]
    pub fn reserve(&mut self, additional: usize) {
        if additional > self.capacity() - self.len {
            if let Err(e) = self.grow(additional) {
                crate::buffer::pool::fail(e);
            }
        }
    }

    /// Like [`reserve`](Buf::reserve), but returns an error instead of
    /// panicking; the buffer is unchanged on error.
    ///
    /// # Errors
    ///
    /// [`Error::CapacityOverflow`] or [`Error::AllocationFailed`].
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), Error> {
        if additional > self.capacity() - self.len {
            self.grow(additional)?;
        }
        Ok(())
    }

    /// Appends `bytes`, growing if needed. O(`bytes.len()`) plus, on growth,
    /// O(`len()`).
    ///
    /// # Panics
    ///
    /// As [`reserve`](Buf::reserve).
    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        // SAFETY: `reserve` made `len + bytes.len() <= capacity`; `bytes` cannot
        // overlap our block, which only `&mut self` can reach.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(self.len), bytes.len());
        }
        self.set_len_grown(self.len + bytes.len());
    }

    /// Appends one byte.
    ///
    /// # Panics
    ///
    /// As [`reserve`](Buf::reserve).
    #[inline]
    pub fn push(&mut self, byte: u8) {
        self.extend_from_slice(&[byte]);
    }

    /// Resizes to `new_len`: truncates, or appends copies of `byte`.
    ///
    /// # Panics
    ///
    /// As [`reserve`](Buf::reserve).
    pub fn resize(&mut self, new_len: usize, byte: u8) {
        if new_len <= self.len {
            return self.truncate(new_len);
        }
        let extra = new_len - self.len;
        self.reserve(extra);
        // SAFETY: `reserve` made `new_len <= capacity`.
        unsafe { self.ptr.as_ptr().add(self.len).write_bytes(byte, extra) };
        self.set_len_grown(new_len);
    }

    /// Records a length reached by writing, keeping the high-water mark.
    #[inline(always)]
    pub(crate) fn set_len_grown(&mut self, len: usize) {
        debug_assert!(len <= self.capacity());
        self.len = len;
        self.dirty = self.dirty.max(len);
    }

    /// Zeroes what an earlier user may have left past the length (up to the
    /// mark), which then falls to the length: the whole spare capacity is
    /// zero. Once per block at most: `read_from` calls it before lending
    /// the spare capacity to a reader as `&mut [u8]`.
    pub(crate) fn zero_spare(&mut self) {
        let stale = self.dirty - self.len;
        if stale == 0 {
            return;
        }
        #[cfg(test)]
        crate::buffer::block::ZEROED.with(|z| z.set(z.get() + stale));
        // SAFETY: `len <= dirty <= size` bytes of the block this handle owns.
        unsafe { self.ptr.as_ptr().add(self.len).write_bytes(0, stale) };
        self.dirty = self.len;
    }

    /// Moves into a block that holds `len + additional` bytes.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, additional: usize) -> Result<(), Error> {
        let needed = self.len.checked_add(additional).ok_or(Error::CapacityOverflow { requested: usize::MAX })?;
        let largest = self.pool.size_classes().last().copied().unwrap_or(0);
        // Oversized growth doubles, like `Vec`, so appending stays amortised O(1).
        let target = if needed > largest { needed.max(self.capacity().saturating_mul(2)) } else { needed };
        // Nothing to zero: only the first `len` bytes are exposed, and they
        // are copied over.
        let (block, class) = match self.pool.take(target) {
            Err(_) if target > needed => self.pool.take(needed)?,
            taken => taken?,
        };
        // SAFETY: both blocks hold at least `len` bytes (the new one holds
        // `needed >= len`), and they are distinct allocations.
        unsafe { ptr::copy_nonoverlapping(self.ptr.as_ptr(), block.as_ptr(), self.len) };
        let new = Buf::new(self.pool, block, class, self.len);
        // The old block goes back when `new`, now holding it, drops.
        drop(std::mem::replace(self, new));
        Ok(())
    }
}

impl Drop for Buf<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the parts of a block this handle owns (type invariants),
        // rebuilt once: nothing reads them after a drop.
        let block = unsafe { Block::from_raw_parts(self.ptr, self.size, self.dirty) };
        self.pool.release(block, self.class);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::io::Write;

    use crate::Pool;

    fn small_pool(zero: bool) -> Pool {
        Pool::builder().size_classes([16, 64, 256]).magazine_capacity(2).zero_on_release(zero).build().unwrap()
    }

    #[test]
    fn reuse_is_zeroed() {
        let pool = small_pool(true);
        let mut a = pool.get(40);
        assert_eq!((a.len(), a.capacity()), (40, 64));
        a.fill(0xff);
        let addr = a.as_ptr();
        drop(a);
        let b = pool.get(64);
        assert_eq!(b.as_ptr(), addr, "the same block comes back from the cache");
        assert!(b.iter().all(|&x| x == 0));
        assert_eq!(pool.stats().allocations, 1);
    }

    /// Bytes zeroed by `zero_prefix` and `zero_spare` on this thread while
    /// running `f`.
    fn zeroed_in(f: impl FnOnce()) -> usize {
        let before = crate::buffer::block::ZEROED.with(std::cell::Cell::get);
        f();
        crate::buffer::block::ZEROED.with(std::cell::Cell::get) - before
    }

    #[test]
    fn zeroes_only_what_it_exposes() {
        let pool = small_pool(true);
        // The last user wrote the whole 256-byte block.
        drop(pool.get(256));
        assert_eq!(zeroed_in(|| drop(pool.with_capacity(256))), 0, "with_capacity exposes nothing");
        assert_eq!(zeroed_in(|| drop(pool.get(100))), 100, "get(100) zeroes 100 of the 256 dirty bytes");
        // Writing through a with_capacity buffer zeroes nothing either.
        let written = zeroed_in(|| {
            let mut b = pool.with_capacity(256);
            b.extend_from_slice(&[1; 200]);
            b.truncate(10);
            b.resize(150, 2);
        });
        assert_eq!(written, 0);
        // A reader is lent the spare capacity as `&mut [u8]`: what an earlier
        // user left there (up to the mark, 256) is zeroed once.
        let read = zeroed_in(|| {
            let mut b = pool.with_capacity(256);
            b.extend_from_slice(&[3; 6]);
            let mut input: &[u8] = &[4; 50];
            b.read_from(&mut input).unwrap();
            b.read_from(&mut input).unwrap();
        });
        assert_eq!(read, 256 - 6);
    }

    #[test]
    fn growth_moves_once_per_class() {
        let pool = small_pool(true);
        let mut buf = pool.with_capacity(1);
        assert_eq!(buf.capacity(), 16);
        for i in 0..200u8 {
            buf.push(i);
        }
        assert_eq!((buf.len(), buf.capacity()), (200, 256));
        assert!(buf.iter().enumerate().all(|(i, &x)| x == i as u8));
        write!(buf, "{}", "x".repeat(100)).unwrap(); // 300 > 256: oversized, exact-or-doubled
        assert!(buf.is_oversized() && buf.capacity() >= 300);
        assert_eq!(&buf[200..203], b"xxx");
        buf.truncate(5);
        buf.resize(8, 7);
        assert_eq!(&buf[..], &[0, 1, 2, 3, 4, 7, 7, 7]);
        drop(buf);
        let s = pool.stats();
        assert_eq!((s.in_use, s.gets, s.puts, s.oversized), (0, 4, 4, 1));
    }

    #[test]
    fn empty_and_impossible() {
        let pool = small_pool(true);
        let e = pool.get(0);
        assert_eq!((e.len(), e.capacity(), e.is_oversized()), (0, 0, false));
        drop(e);
        assert!(pool.try_get(usize::MAX).is_err());
        assert!(pool.try_with_capacity(isize::MAX as usize).is_err());
        let s = pool.stats();
        assert_eq!((s.gets, s.allocations), (0, 0));
    }

    #[test]
    fn cross_thread_and_exit() {
        let pool = small_pool(true);
        let bufs: Vec<_> = (0..6)
            .map(|i| {
                let mut b = pool.get(16);
                b[0] = i;
                b
            })
            .collect();
        std::thread::scope(|s| {
            // Released on another thread, which then exits. Join explicitly:
            // `scope` alone may return before the thread's TLS destructors
            // (and so the exit flush) have run; `join` waits for the OS thread.
            s.spawn(move || drop(bufs)).join().unwrap();
        });
        let s = pool.stats();
        assert_eq!((s.in_use, s.puts), (0, 6));
        // Six releases into magazines of two: the exiting thread flushed its
        // magazines to the depot, so these gets allocate nothing new.
        let again: Vec<_> = (0..6).map(|_| pool.get(16)).collect();
        assert!(again.iter().all(|b| b[0] == 0));
        assert_eq!(pool.stats().allocations, 6);
    }

    #[test]
    fn stale_but_initialised_without_zeroing() {
        let pool = small_pool(false);
        let mut a = pool.get(16);
        a.fill(1);
        drop(a);
        let b = pool.get(16);
        let expected = if cfg!(debug_assertions) { crate::buffer::pool::POISON } else { 1 };
        assert!(b.iter().all(|&x| x == expected), "{b:?}");
    }
}
