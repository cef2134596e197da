//! [`Buf`]'s standard traits (`Deref` to `[u8]`, comparisons, `Extend`,
//! `Debug`) and its I/O: `io::Write`, which appends, and
//! [`read_from`](Buf::read_from), one read into the spare capacity.
//!
//! # Invariants
//!
//! Those of `buf.rs`: every method here that lengthens the buffer writes the
//! new bytes first, and `read_from` zeroes what an earlier user left in the
//! spare capacity before a reader sees it (with zeroing on).

use std::ops::{Deref, DerefMut};
use std::{fmt, io, slice};

use crate::Buf;

impl Buf<'_> {
    /// Reads once from `reader` into the spare capacity and takes in what
    /// was read; returns how many bytes, `Ok(0)` at the end of the stream.
    /// A full buffer first grows to the next class (as
    /// [`reserve`](Buf::reserve)`(1)`), so a loop of `read_from` reads a
    /// whole stream. On error the buffer keeps everything read before.
    ///
    /// `io::Read` hands the reader a `&mut [u8]` it could read from, so with
    /// zeroing on, what an earlier user left in the spare capacity is zeroed
    /// first (once per buffer: up to its dirty mark). Through
    /// [`bytes::BufMut`](https://docs.rs/bytes) (tokio's `read_buf`) the spare
    /// capacity stays write-only and nothing is zeroed.
    ///
    /// # Errors
    ///
    /// The reader's error, or `OutOfMemory` when the buffer cannot grow, or
    /// `InvalidData` when the reader claims more bytes than it was given.
    ///
    /// ```
    /// let pool = magpool::Pool::new();
    /// let mut buf = pool.with_capacity(4);
    /// let mut input: &[u8] = b"a request, longer than four bytes";
    /// while buf.read_from(&mut input)? > 0 {}
    /// assert_eq!(&buf[..], b"a request, longer than four bytes");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_from(&mut self, reader: &mut impl io::Read) -> io::Result<usize> {
        if self.len() == self.capacity() {
            self.try_reserve(1).map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
        }
        if self.pool().zero_on_release() {
            self.zero_spare();
        }
        let spare = self.spare_capacity_mut();
        let room = spare.len();
        // SAFETY: every byte of a block is initialised (`block.rs`), and with
        // zeroing on, `zero_spare` has just zeroed what an earlier user left.
        let spare = unsafe { slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<u8>(), room) };
        let n = reader.read(spare)?;
        if n > room {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the reader claimed {n} bytes read into a buffer of {room}"),
            ));
        }
        self.set_len_grown(self.len() + n);
        Ok(n)
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

impl fmt::Debug for Buf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        let head = &self.as_slice()[..self.len().min(SHOWN)];
        f.debug_struct("Buf")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("oversized", &self.is_oversized())
            .field("head", &head)
            .finish()
    }
}
