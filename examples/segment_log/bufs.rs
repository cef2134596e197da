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
use std::sync::OnceLock;

use magpool::{Buf, Clear, ObjectPool, Pool};

use crate::codec::RecordRef;

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

    /// An empty list with room for `records` entries, for the decoded
    /// records of one batch (`Fetch::decode_into`).
    fn batch(&self, records: usize) -> impl DerefMut<Target = Vec<RecordRef>>;
}

/// The decoded batches of every magpool-mode log in the process: a typed
/// object pool (Bonwick's object cache on magpool's machinery). Lists start
/// with room for 256 records and are kept while under 16 Ki entries.
fn batches() -> &'static ObjectPool<Vec<RecordRef>> {
    static BATCHES: OnceLock<&'static ObjectPool<Vec<RecordRef>>> = OnceLock::new();
    BATCHES.get_or_init(|| ObjectPool::new(Clear::new(256, 16 << 10)).leak())
}

/// A fresh `Vec`, for the baseline: `DerefMut` to itself.
struct Fresh(Vec<RecordRef>);

impl std::ops::Deref for Fresh {
    type Target = Vec<RecordRef>;
    fn deref(&self) -> &Vec<RecordRef> {
        &self.0
    }
}

impl DerefMut for Fresh {
    fn deref_mut(&mut self) -> &mut Vec<RecordRef> {
        &mut self.0
    }
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

    /// From the object pool: a list some earlier batch used, cleared.
    fn batch(&self, records: usize) -> impl DerefMut<Target = Vec<RecordRef>> {
        let mut list = batches().get();
        list.reserve(records);
        list
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

    /// `Vec::with_capacity`: one allocation per batch, freed after it.
    fn batch(&self, records: usize) -> impl DerefMut<Target = Vec<RecordRef>> {
        Fresh(Vec::with_capacity(records))
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
