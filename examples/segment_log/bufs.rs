//! Where the log's buffers come from: a magpool [`Pool`] or plain `Vec<u8>`s.
//!
//! Everything else in the example is generic over [`Buffers`], so the two
//! modes run the very same code and differ only in `with_capacity` and in
//! what dropping a buffer does.
//!
//! # Invariants
//!
//! - A buffer from [`Buffers::with_capacity`] is empty and holds at least the
//!   requested capacity without moving; one from [`Buffers::zeroed`] holds
//!   exactly the requested number of zero bytes.
//!
//! Used by the codec (records and batches), the segment writer (index
//! entries), the reader (fetches, index files) and the workload.

use std::io;
use std::ops::DerefMut;

use magpool::{Buf, Pool};

/// A growable byte buffer: what the log needs of `Vec<u8>` and of [`Buf`].
pub(crate) trait ByteBuf: DerefMut<Target = [u8]> + io::Write + Send + Sync {
    /// Appends `bytes`, growing if needed.
    fn extend_from_slice(&mut self, bytes: &[u8]);
    /// Sets the length to 0, keeping the capacity.
    fn clear(&mut self);
    /// Sets the length to `len`, appending zeroes or truncating.
    fn resize_zeroed(&mut self, len: usize);
}

impl ByteBuf for Vec<u8> {
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        Vec::extend_from_slice(self, bytes);
    }
    fn clear(&mut self) {
        Vec::clear(self);
    }
    fn resize_zeroed(&mut self, len: usize) {
        self.resize(len, 0);
    }
}

impl ByteBuf for Buf<'_> {
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        Buf::extend_from_slice(self, bytes);
    }
    fn clear(&mut self) {
        Buf::clear(self);
    }
    fn resize_zeroed(&mut self, len: usize) {
        self.resize(len, 0);
    }
}

/// A source of [`ByteBuf`]s, shared by every thread of a run.
pub(crate) trait Buffers: Sync {
    /// The buffer type handed out.
    type Buf<'a>: ByteBuf
    where
        Self: 'a;

    /// An empty buffer with room for at least `capacity` bytes.
    fn with_capacity(&self, capacity: usize) -> Self::Buf<'_>;

    /// A buffer of `len` zero bytes, to read into.
    fn zeroed(&self, len: usize) -> Self::Buf<'_>;
}

impl Buffers for Pool {
    type Buf<'a> = Buf<'a>;

    fn with_capacity(&self, capacity: usize) -> Buf<'_> {
        Pool::with_capacity(self, capacity)
    }

    /// `get`: with zeroing on (the default) the pool hands out an all-zero
    /// block, so nothing is written here.
    fn zeroed(&self, len: usize) -> Buf<'_> {
        self.get(len)
    }
}

/// The baseline: every buffer is a fresh `Vec<u8>` from the global allocator.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Heap;

impl Buffers for Heap {
    type Buf<'a> = Vec<u8>;

    fn with_capacity(&self, capacity: usize) -> Vec<u8> {
        Vec::with_capacity(capacity)
    }

    /// `vec![0; len]`: one `alloc_zeroed`, which the allocator may serve
    /// with fresh zero pages.
    fn zeroed(&self, len: usize) -> Vec<u8> {
        vec![0; len]
    }
}

/// Buffers per magazine in the example's pool (the default is 32). A record
/// buffer is filled on a producer and freed on the writer, so every buffer
/// crosses the depot; bigger magazines mean fewer depot exchanges, and each
/// exchange costs allocator calls (see the README).
pub(crate) const MAGAZINE_CAPACITY: usize = 128;

/// The pool the example runs on: the defaults but for
/// [`MAGAZINE_CAPACITY`].
pub(crate) fn example_pool() -> Pool {
    Pool::builder().magazine_capacity(MAGAZINE_CAPACITY).build().expect("a valid pool configuration")
}
