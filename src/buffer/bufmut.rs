//! The `bytes` crate's side of [`Buf`] (feature `bytes`): encoders write
//! into a pooled buffer through `BufMut`, and [`freeze`](Buf::freeze) turns
//! it into `Bytes` with no copy, the pooled block behind every clone and
//! slice until the last one drops.
//!
//! # Invariants
//!
//! - `chunk_mut` lends the spare capacity as `UninitSlice`, which is
//!   write-only; `advance_mut` takes in only bytes its caller promises to
//!   have written (`buf.rs`'s exposure rule holds).
//! - A frozen `Buf` is the owner `Bytes::from_owner` keeps: the block goes
//!   back to its pool, with its dirty mark, when the owner drops, on
//!   whichever thread drops the last `Bytes`.
//!
//! Called by users, through `bytes`' traits.

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes};

use crate::Buf;

/// Room `chunk_mut` makes when the buffer is full: enough for an encoder's
/// next field, and always a class move at most (as `BytesMut` reserves 64).
const CHUNK_MIN: usize = 64;

/// Writes grow the buffer through the pool's classes, like
/// [`io::Write`](std::io::Write): an encoder that takes
/// `&mut impl BufMut` (prost, tokio-util codecs, `bytes`' own `put_*`)
/// writes straight into pooled memory.
///
/// ```
/// use bytes::BufMut;
///
/// let pool = magpool::Pool::new();
/// let mut buf = pool.with_capacity(8);
/// buf.put_u32(0xCAFE);
/// buf.put_slice(b" hello");
/// assert_eq!(&buf[..4], &[0, 0, 0xCA, 0xFE]);
/// assert_eq!(buf.len(), 10);
/// ```
// SAFETY: `chunk_mut` returns the spare capacity `[len, capacity)` of the
// block this `Buf` owns (non-empty once it has grown), and `advance_mut`
// moves the length by at most its size (checked), as the trait requires.
unsafe impl BufMut for Buf<'_> {
    /// As much as a buffer can ever grow to.
    #[inline]
    fn remaining_mut(&self) -> usize {
        isize::MAX as usize - self.len()
    }

    /// # Panics
    ///
    /// When `cnt` is larger than the chunk last returned could be (past the
    /// capacity), as `bytes` asks of every implementation.
    #[inline]
    unsafe fn advance_mut(&mut self, cnt: usize) {
        let len = self.len().checked_add(cnt).filter(|&len| len <= self.capacity());
        match len {
            Some(len) => self.set_len_grown(len),
            None => panic!("advance_mut({cnt}) past the capacity: len {}, capacity {}", self.len(), self.capacity()),
        }
    }

    /// The spare capacity, write-only; a full buffer first grows (at least
    /// 64 bytes, to the class that holds them).
    ///
    /// # Panics
    ///
    /// As [`Buf::reserve`].
    #[inline]
    fn chunk_mut(&mut self) -> &mut UninitSlice {
        if self.len() == self.capacity() {
            self.reserve(CHUNK_MIN);
        }
        UninitSlice::uninit(self.spare_capacity_mut())
    }

    #[inline]
    fn put_slice(&mut self, src: &[u8]) {
        self.extend_from_slice(src);
    }

    #[inline]
    fn put_bytes(&mut self, val: u8, cnt: usize) {
        let len = self.len().checked_add(cnt).expect("put_bytes: length overflow");
        self.resize(len, val);
    }
}

impl Buf<'static> {
    /// Turns this buffer into [`Bytes`] with no copy: the pooled block backs
    /// the `Bytes` and every clone and slice of it, and goes back to its
    /// pool when the last of them drops, on whatever thread that is (as any
    /// release from another thread: into that thread's cache).
    ///
    /// Needs a `Buf<'static>`: from [`magpool::get`](crate::get), the
    /// [`global`](crate::global) pool, or a pool made `'static` with
    /// [`Pool::leak`](crate::Pool::leak), since a `Bytes` may outlive any
    /// scope.
    ///
    /// Cost: one small allocation, and its free when the last `Bytes`
    /// drops (`Bytes::from_owner` boxes the owner with a reference count;
    /// the bench report's `freeze` rows count 2 allocator calls per op); clones and slices are the usual
    /// atomic increments of `Bytes`. The get and release of the buffer stay
    /// as they are. A buffer from a pool with zeroing on shows only its
    /// user's bytes (the capacity past the length is never part of the
    /// `Bytes`), and it comes home with its dirty mark, zeroed on exposure
    /// like any other.
    ///
    /// ```
    /// use bytes::BufMut;
    ///
    /// let mut reply = magpool::get(0);
    /// reply.put_slice(b"+PONG\r\n");
    /// let bytes = reply.freeze();
    /// let head = bytes.slice(..5);
    /// std::thread::spawn(move || drop(bytes)).join().unwrap();
    /// assert_eq!(&head[..], b"+PONG"); // the block is still held by `head`
    /// ```
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl From<Buf<'static>> for Bytes {
    /// [`Buf::freeze`].
    fn from(buf: Buf<'static>) -> Bytes {
        buf.freeze()
    }
}
