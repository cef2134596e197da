//! The two buffer modes the broker runs in, and what each gives the rest of
//! the server: network buffers (requests read with `read_buf`, replies
//! encoded through `BufMut` and sent as frozen `Bytes`) and storage buffers
//! (the segment log's [`Buffers`]: records, batches, fetches, index files).
//!
//! | mode | network | storage |
//! |---|---|---|
//! | [`Pooled`] | `magpool::Buf<'static>` from the net pool | `Buf`s from the store pool |
//! | [`Plain`] | `bytes::BytesMut` | `Vec<u8>` ([`Heap`]) |
//!
//! Everything else is generic over [`Mode`], so both modes run the same
//! code and differ only in where a buffer comes from and what its drop does.
//!
//! # Invariants
//!
//! - [`NetBuf::consume`] keeps the bytes after the consumed prefix, in order.
//! - The pools of [`Pooled`] are `'static`: a frozen reply may outlive any
//!   connection, and is released on whichever thread drops it last.
//!
//! Used by the connection loop, the store and `main.rs`.

use std::ops::DerefMut;

use bytes::{Buf as _, BufMut, Bytes, BytesMut};
use magpool::{Buf, Pool, Stats};

use crate::bufs::{Buffers, Heap};

/// A network buffer: read into with `read_buf`, written through `BufMut`,
/// sent frozen.
pub(crate) trait NetBuf: BufMut + DerefMut<Target = [u8]> + Send + Sync + Unpin + 'static {
    /// Bytes it holds without growing.
    fn capacity(&self) -> usize;
    /// Makes room for `additional` more bytes.
    fn reserve(&mut self, additional: usize);
    /// Drops the first `n` bytes, keeping the rest in order.
    fn consume(&mut self, n: usize);
    /// Shortens to `len` bytes.
    fn truncate_to(&mut self, len: usize);
    /// The bytes written so far as `Bytes`, with no copy; the buffer is
    /// left empty, ready for the next replies.
    fn split_frozen(&mut self) -> Bytes;
}

/// A reply buffer of the magpool mode: a round's replies (16 pipelined
/// values of a few hundred bytes) fit without moving through classes, and a
/// pooled block costs nothing more for being larger once warm. (Starting at
/// 512 bytes, each such round copied its replies three times as the buffer
/// grew: GET throughput 0.90x BytesMut's; with 16 KiB, level.)
const POOLED_REPLY_START: usize = 16 << 10;
/// The reply buffer of the `BytesMut` mode, one per connection: each round's
/// replies are split off and frozen, and the space comes back once the
/// writer has dropped them (`reserve` reclaims it), as a tuned tokio
/// server does it; only a reply that outgrows it allocates.
const PLAIN_REPLY_ARENA: usize = 64 << 10;

impl NetBuf for Buf<'static> {
    fn capacity(&self) -> usize {
        Buf::capacity(self)
    }
    fn reserve(&mut self, additional: usize) {
        Buf::reserve(self, additional);
    }
    /// Moves the rest to the front: O(rest), which is at most one partial
    /// request (a `Buf` has no front offset to advance).
    fn consume(&mut self, n: usize) {
        let len = self.len();
        self.copy_within(n..len, 0);
        self.truncate(len - n);
    }
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
    /// [`Buf::freeze`] of the whole buffer, replaced by a fresh one from the
    /// same pool: one allocation of about 80 bytes (the owner box of
    /// `Bytes::from_owner`), freed when the writer drops the reply.
    fn split_frozen(&mut self) -> Bytes {
        let fresh = self.pool().with_capacity(POOLED_REPLY_START);
        std::mem::replace(self, fresh).freeze()
    }
}

impl NetBuf for BytesMut {
    fn capacity(&self) -> usize {
        BytesMut::capacity(self)
    }
    fn reserve(&mut self, additional: usize) {
        BytesMut::reserve(self, additional);
    }
    /// `advance`: O(1); a later `reserve` reclaims the space.
    fn consume(&mut self, n: usize) {
        self.advance(n);
    }
    fn truncate_to(&mut self, len: usize) {
        self.truncate(len);
    }
    /// `split().freeze()`: no allocation but the first split's shared
    /// header, while the arena has room or is unshared again.
    fn split_frozen(&mut self) -> Bytes {
        self.split().freeze()
    }
}

/// Where a server's buffers come from.
pub(crate) trait Mode: Send + Sync + 'static {
    /// The network buffer.
    type Net: NetBuf;
    /// The storage buffers.
    type Store: Buffers + Send + Sync + 'static;
    /// `magpool` or `bytesmut`.
    fn name(&self) -> &'static str;
    /// An empty network buffer with room for `capacity` bytes.
    fn net(&self, capacity: usize) -> Self::Net;
    /// A connection's reply buffer.
    fn reply_buffer(&self) -> Self::Net;
    /// The storage buffers.
    fn store(&self) -> &'static Self::Store;
    /// The pools, network then storage, in pooled mode.
    fn pools(&self) -> Option<(&'static Pool, &'static Pool)>;
}

/// Every buffer from magpool: the net pool for requests and replies, the
/// store pool for the log (records go connection → writer thread, fetches
/// are read and dropped on the connection's thread, index files are held
/// by the readers).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pooled {
    /// Requests and replies.
    pub(crate) net: &'static Pool,
    /// Records, batches, fetches, index files.
    pub(crate) store: &'static Pool,
}

/// Buffers per magazine in the store pool, as the segment log uses: every
/// record buffer crosses from a connection's thread to the writer thread.
const STORE_MAGAZINE_CAPACITY: usize = 128;

impl Pooled {
    /// The broker's two pools, leaked (`'static`), the defaults but for the
    /// store pool's magazine capacity.
    pub(crate) fn new() -> Pooled {
        let net = Pool::builder().build().expect("a valid pool configuration").leak();
        let store =
            Pool::builder().magazine_capacity(STORE_MAGAZINE_CAPACITY).build().expect("a valid pool configuration");
        Pooled { net, store: store.leak() }
    }
}

impl Mode for Pooled {
    type Net = Buf<'static>;
    type Store = Pool;
    fn name(&self) -> &'static str {
        "magpool"
    }
    fn net(&self, capacity: usize) -> Buf<'static> {
        self.net.with_capacity(capacity)
    }
    fn reply_buffer(&self) -> Buf<'static> {
        self.net.with_capacity(POOLED_REPLY_START)
    }
    fn store(&self) -> &'static Pool {
        self.store
    }
    fn pools(&self) -> Option<(&'static Pool, &'static Pool)> {
        Some((self.net, self.store))
    }
}

/// The baseline: `BytesMut` on the network, `Vec<u8>` in the log, every
/// buffer from the global allocator.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Plain;

static HEAP: Heap = Heap;

impl Mode for Plain {
    type Net = BytesMut;
    type Store = Heap;
    fn name(&self) -> &'static str {
        "bytesmut"
    }
    fn net(&self, capacity: usize) -> BytesMut {
        BytesMut::with_capacity(capacity)
    }
    fn reply_buffer(&self) -> BytesMut {
        BytesMut::with_capacity(PLAIN_REPLY_ARENA)
    }
    fn store(&self) -> &'static Heap {
        &HEAP
    }
    fn pools(&self) -> Option<(&'static Pool, &'static Pool)> {
        None
    }
}

/// The stats of a mode's pools, network then storage.
pub(crate) fn pool_stats(mode: &impl Mode) -> Option<(Stats, Stats)> {
    mode.pools().map(|(net, store)| (net.stats(), store.stats()))
}
