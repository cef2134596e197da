//! [`Buf`]: the RAII handle to a pooled buffer; dropping it is the release.
//!
//! # Invariants
//!
//! - `ptr`, `size` and `dirty` are the raw parts of a [`Block`] this handle
//!   owns (`Block::into_raw_parts`), rebuilt exactly once: on drop, or when
//!   growth swaps in another block.
//! - `len <= dirty <= size`: `dirty` is the high-water mark of `len`, so it
//!   covers every byte this handle exposed.
//! - Bytes `[0, size)` are initialised (see `block.rs`). With zeroing
//!   on, the block was all zero when handed out, so bytes past the dirty mark
//!   are still zero, and the next hand-out of the block wipes only the prefix
//!   up to the mark.
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

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::{fmt, io, ptr, slice};

use crate::buffer::block::Block;
use crate::{Error, Pool};

/// A byte buffer from a [`Pool`], with a length and a class-sized capacity.
///
/// It dereferences to `[u8]` (its first `len()` bytes) and fills like a `Vec`:
/// [`extend_from_slice`](Buf::extend_from_slice), [`resize`](Buf::resize),
/// [`push`](Buf::push) and [`io::Write`]. Growing past the capacity moves the
/// contents once into a buffer of the next class that fits, from the same
/// pool. Dropping it gives the buffer back to the pool, even during a panic.
///
/// `Buf` is `Send + Sync`: it may be dropped on another thread than the one
/// that got it (the buffer then goes to that thread's cache).
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
    ptr: NonNull<u8>,
    len: usize,
    size: usize,
    class: usize,
    dirty: usize,
    pool: &'p Pool,
}

const _: () = assert!(std::mem::size_of::<Buf<'_>>() == 6 * std::mem::size_of::<usize>());

/// A `Buf` owns its block exclusively, like a `Vec<u8>`, and its pool is `Sync`.
// SAFETY: no other handle reaches the block's bytes; sending the `Buf` sends
// that ownership, and releasing on another thread is supported (the block then
// goes to that thread's cache).
unsafe impl Send for Buf<'_> {}
// SAFETY: `&Buf` only reads the bytes (`as_slice`); every write needs `&mut`.
unsafe impl Sync for Buf<'_> {}

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
    fn set_len_grown(&mut self, len: usize) {
        debug_assert!(len <= self.capacity());
        self.len = len;
        self.dirty = self.dirty.max(len);
    }

    /// Moves into a block that holds `len + additional` bytes.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, additional: usize) -> Result<(), Error> {
        let needed = self.len.checked_add(additional).ok_or(Error::CapacityOverflow { requested: usize::MAX })?;
        let largest = self.pool.size_classes().last().copied().unwrap_or(0);
        // Oversized growth doubles, like `Vec`, so appending stays amortised O(1).
        let target = if needed > largest { needed.max(self.capacity().saturating_mul(2)) } else { needed };
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

impl Deref for Buf<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl DerefMut for Buf<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl AsRef<[u8]> for Buf<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for Buf<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl std::borrow::Borrow<[u8]> for Buf<'_> {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq<[u8]> for Buf<'_> {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq for Buf<'_> {
    fn eq(&self, other: &Buf<'_>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Buf<'_> {}

impl Extend<u8> for Buf<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        self.reserve(iter.size_hint().0);
        iter.for_each(|b| self.push(b));
    }
}

impl<'a> Extend<&'a u8> for Buf<'_> {
    fn extend<I: IntoIterator<Item = &'a u8>>(&mut self, iter: I) {
        self.extend(iter.into_iter().copied());
    }
}

impl io::Write for Buf<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.try_reserve(bytes.len()).map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
        self.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write(bytes).map(drop)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for Buf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        let head = &self.as_slice()[..self.len.min(SHOWN)];
        f.debug_struct("Buf")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .field("oversized", &self.is_oversized())
            .field("head", &head)
            .finish()
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
