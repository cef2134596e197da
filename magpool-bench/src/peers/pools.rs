//! magpool and the peer pools. Every peer pool keeps one pool per default size
//! class, stores `Vec<u8>`s of exactly the class capacity, and on get clears
//! the `Vec` and zeroes the `len` bytes it exposes (`resize(len, 0)`): one
//! memset of `len` bytes. magpool spends a memset of the previous user's
//! high-water mark on get instead, which also clears the bytes past `len`.

use std::cell::RefCell;
use std::ptr::NonNull;
use std::slice;
use std::sync::Mutex;

use crossbeam_queue::ArrayQueue;
use lockfree_object_pool::{LinearObjectPool, LinearReusable};
use magpool::DEFAULT_SIZE_CLASSES;

use super::{class_of, retained_per_class, OVERSIZED};
use crate::Impl;

/// The class of `len`, which must not be oversized: the workloads stay within
/// the default classes, and the peers do not pool past them.
#[inline]
fn pooled_class(len: usize) -> usize {
    let class = class_of(len);
    assert!(class < OVERSIZED, "peer pools serve at most the largest class, not {len} bytes");
    class
}

/// Zeroes `len` bytes of `v` (cleared first), within its class capacity.
#[inline]
fn expose_zeroed(v: &mut Vec<u8>, len: usize) {
    v.clear();
    v.resize(len, 0);
}

/// A fresh, empty `Vec` of the class's capacity.
fn class_vec(class: usize) -> Vec<u8> {
    Vec::with_capacity(DEFAULT_SIZE_CLASSES[class])
}

// === impl Magpool ===

/// A `magpool::Pool`: the default configuration, or one variant of it that
/// a workload measures (named apart in the tables).
#[derive(Debug)]
pub struct Magpool {
    pool: magpool::Pool,
    name: &'static str,
}

impl Magpool {
    /// `Pool::new()`.
    pub fn new() -> Self {
        Magpool { pool: magpool::Pool::new(), name: "magpool" }
    }

    /// The defaults but for `Builder::magazine_bytes(bytes)`, to measure the
    /// budget's trade-off (`magpool-bench --magazine-bytes`).
    pub fn with_magazine_bytes(bytes: usize) -> Result<Self, magpool::Error> {
        Ok(Magpool { pool: magpool::Pool::builder().magazine_bytes(bytes).build()?, name: "magpool" })
    }

    /// `magpool-uncached`: the defaults but for `thread_cache_bytes(0)`, a
    /// pool whose threads cache nothing (every get and release trades with
    /// the depot), so a thread's exit has nothing to flush.
    pub fn uncached() -> Self {
        let pool = magpool::Pool::builder().thread_cache_bytes(0).build().expect("0 is a valid thread cache bound");
        Magpool { pool, name: "magpool-uncached" }
    }

    /// The pool.
    pub fn pool(&self) -> &magpool::Pool {
        &self.pool
    }
}

impl Default for Magpool {
    fn default() -> Self {
        Self::new()
    }
}

impl Impl for Magpool {
    type Buf<'a> = magpool::Buf<'a>;

    fn name(&self) -> &'static str {
        self.name
    }

    fn is_pool(&self) -> bool {
        true
    }

    #[inline]
    fn get(&self, len: usize) -> magpool::Buf<'_> {
        self.pool.get(len)
    }

    #[inline]
    fn with_capacity(&self, capacity: usize) -> magpool::Buf<'_> {
        self.pool.with_capacity(capacity)
    }

    #[inline]
    fn extend(buf: &mut magpool::Buf<'_>, bytes: &[u8]) {
        buf.extend_from_slice(bytes);
    }

    fn retained_bytes(&self) -> Option<u64> {
        Some(self.pool.stats().retained_bytes)
    }

    fn reclaim_idle(&self) {
        self.pool.reclaim_idle();
    }
}

// === impl QueuePool ===

/// Where a [`QueuePool`] keeps free `Vec`s, per class.
pub trait Stash: Sync {
    /// The name of the pool in tables.
    const NAME: &'static str;
    /// A stash with room for [`retained_per_class`] buffers per class.
    fn new() -> Self;
    /// A free `Vec` of `class`, if any.
    fn take(&self, class: usize) -> Option<Vec<u8>>;
    /// Keeps `v` (empty, of `class`), or frees it when full.
    fn put(&self, class: usize, v: Vec<u8>);
}

/// A bounded `crossbeam_queue::ArrayQueue<Vec<u8>>` per class.
#[derive(Debug)]
pub struct ArrayQueueStash(Box<[ArrayQueue<Vec<u8>>]>);

impl Stash for ArrayQueueStash {
    const NAME: &'static str = "arrayqueue";

    fn new() -> Self {
        ArrayQueueStash((0..OVERSIZED).map(|c| ArrayQueue::new(retained_per_class(c))).collect())
    }

    #[inline]
    fn take(&self, class: usize) -> Option<Vec<u8>> {
        self.0[class].pop()
    }

    #[inline]
    fn put(&self, class: usize, v: Vec<u8>) {
        let _full = self.0[class].push(v); // Err(v): dropped, like a full pool
    }
}

/// A `Mutex<Vec<Vec<u8>>>` per class, bounded like [`ArrayQueueStash`].
#[derive(Debug)]
pub struct MutexStash(Box<[Mutex<Vec<Vec<u8>>>]>);

impl Stash for MutexStash {
    const NAME: &'static str = "mutex";

    fn new() -> Self {
        MutexStash((0..OVERSIZED).map(|c| Mutex::new(Vec::with_capacity(retained_per_class(c)))).collect())
    }

    #[inline]
    fn take(&self, class: usize) -> Option<Vec<u8>> {
        self.0[class].lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    #[inline]
    fn put(&self, class: usize, v: Vec<u8>) {
        let mut free = self.0[class].lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < retained_per_class(class) {
            free.push(v);
        }
    }
}

/// One thread-local `Vec<Vec<u8>>` per class, bounded like
/// [`ArrayQueueStash`]: the bare pop+push floor under any pool (a buffer
/// released on another thread joins that thread's stash). A baseline of ours,
/// not a peer: issue 7 measures magpool's own overhead against it.
#[derive(Debug, Default)]
pub struct TlsStash;

std::thread_local! {
    static TLS_FREE: RefCell<[Vec<Vec<u8>>; OVERSIZED]> = const { RefCell::new([const { Vec::new() }; OVERSIZED]) };
}

impl Stash for TlsStash {
    const NAME: &'static str = "tls-vec";

    fn new() -> Self {
        TlsStash
    }

    #[inline]
    fn take(&self, class: usize) -> Option<Vec<u8>> {
        TLS_FREE.try_with(|f| f.borrow_mut()[class].pop()).ok().flatten()
    }

    #[inline]
    fn put(&self, class: usize, v: Vec<u8>) {
        let _exiting = TLS_FREE.try_with(|f| {
            let free = &mut f.borrow_mut()[class];
            if free.len() < retained_per_class(class) {
                free.push(v);
            }
        });
    }
}

/// A pool over a [`Stash`]: take a free `Vec` of the class or allocate one.
#[derive(Debug)]
pub struct QueuePool<S>(S);

impl QueuePool<ArrayQueueStash> {
    /// Over an `ArrayQueue` per class.
    pub fn array_queue() -> Self {
        QueuePool(ArrayQueueStash::new())
    }
}

impl QueuePool<TlsStash> {
    /// Over a thread-local `Vec<Vec<u8>>` per class.
    pub fn thread_local() -> Self {
        QueuePool(TlsStash)
    }
}

impl QueuePool<MutexStash> {
    /// Over a `Mutex<Vec<Vec<u8>>>` per class.
    pub fn mutex() -> Self {
        QueuePool(MutexStash::new())
    }
}

/// A `Vec` on loan from a [`Stash`]; dropping it clears it and puts it back.
#[derive(Debug)]
pub struct PoolVec<'a, S: Stash> {
    vec: Vec<u8>,
    class: usize,
    stash: &'a S,
}

impl<S: Stash> AsMut<[u8]> for PoolVec<'_, S> {
    #[inline]
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.vec
    }
}

impl<S: Stash> Drop for PoolVec<'_, S> {
    #[inline]
    fn drop(&mut self) {
        let mut v = std::mem::take(&mut self.vec);
        v.clear();
        self.stash.put(self.class, v);
    }
}

impl<S: Stash> QueuePool<S> {
    #[inline]
    fn take(&self, len: usize) -> PoolVec<'_, S> {
        let class = pooled_class(len);
        let vec = self.0.take(class).unwrap_or_else(|| class_vec(class));
        PoolVec { vec, class, stash: &self.0 }
    }
}

impl<S: Stash> Impl for QueuePool<S> {
    type Buf<'a>
        = PoolVec<'a, S>
    where
        S: 'a;

    fn name(&self) -> &'static str {
        S::NAME
    }

    fn is_pool(&self) -> bool {
        S::NAME != TlsStash::NAME
    }

    #[inline]
    fn get(&self, len: usize) -> PoolVec<'_, S> {
        let mut b = self.take(len);
        expose_zeroed(&mut b.vec, len);
        b
    }

    #[inline]
    fn with_capacity(&self, capacity: usize) -> PoolVec<'_, S> {
        self.take(capacity)
    }

    #[inline]
    fn extend(buf: &mut PoolVec<'_, S>, bytes: &[u8]) {
        buf.vec.extend_from_slice(bytes);
    }
}

// === impl LockfreeObjectPool ===

/// A `lockfree_object_pool::LinearObjectPool<Vec<u8>>` per class (its fastest
/// pool), resetting with `Vec::clear` on release. Unbounded.
pub struct LockfreeObjectPool(Box<[LinearObjectPool<Vec<u8>>]>);

impl std::fmt::Debug for LockfreeObjectPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockfreeObjectPool").finish_non_exhaustive()
    }
}

impl LockfreeObjectPool {
    /// One `LinearObjectPool` per default class.
    pub fn new() -> Self {
        LockfreeObjectPool((0..OVERSIZED).map(|c| LinearObjectPool::new(move || class_vec(c), Vec::clear)).collect())
    }
}

impl Default for LockfreeObjectPool {
    fn default() -> Self {
        Self::new()
    }
}

/// A `LinearReusable` seen as bytes.
pub struct LfBuf<'a>(LinearReusable<'a, Vec<u8>>);

impl std::fmt::Debug for LfBuf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LfBuf").field("len", &self.0.len()).finish()
    }
}

impl AsMut<[u8]> for LfBuf<'_> {
    #[inline]
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Impl for LockfreeObjectPool {
    type Buf<'a> = LfBuf<'a>;

    fn name(&self) -> &'static str {
        "lockfree-object-pool"
    }

    fn is_pool(&self) -> bool {
        true
    }

    #[inline]
    fn get(&self, len: usize) -> LfBuf<'_> {
        let mut b = self.0[pooled_class(len)].pull();
        expose_zeroed(&mut b, len);
        LfBuf(b)
    }

    #[inline]
    fn with_capacity(&self, capacity: usize) -> LfBuf<'_> {
        LfBuf(self.0[pooled_class(capacity)].pull())
    }

    #[inline]
    fn extend(buf: &mut LfBuf<'_>, bytes: &[u8]) {
        buf.0.extend_from_slice(bytes);
    }
}

// === impl ObjectPool ===

/// An `object_pool::Pool<Vec<u8>>` per class (a `parking_lot::Mutex<Vec<T>>`
/// inside). Unbounded.
pub struct ObjectPool(Box<[object_pool::Pool<Vec<u8>>]>);

impl std::fmt::Debug for ObjectPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectPool").finish_non_exhaustive()
    }
}

impl ObjectPool {
    /// One empty `object_pool::Pool` per default class.
    pub fn new() -> Self {
        ObjectPool((0..OVERSIZED).map(|_| object_pool::Pool::new(0, Vec::new)).collect())
    }
}

impl Default for ObjectPool {
    fn default() -> Self {
        Self::new()
    }
}

/// An `object_pool::Reusable` seen as bytes.
pub struct OpBuf<'a>(object_pool::Reusable<'a, Vec<u8>>);

impl std::fmt::Debug for OpBuf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpBuf").field("len", &self.0.len()).finish()
    }
}

impl AsMut<[u8]> for OpBuf<'_> {
    #[inline]
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl ObjectPool {
    #[inline]
    fn pull(&self, len: usize) -> object_pool::Reusable<'_, Vec<u8>> {
        let class = pooled_class(len);
        let mut b = self.0[class].pull(|| class_vec(class));
        b.clear(); // object-pool resets nothing on release
        b
    }
}

impl Impl for ObjectPool {
    type Buf<'a> = OpBuf<'a>;

    fn name(&self) -> &'static str {
        "object-pool"
    }

    fn is_pool(&self) -> bool {
        true
    }

    #[inline]
    fn get(&self, len: usize) -> OpBuf<'_> {
        let mut b = self.pull(len);
        b.resize(len, 0);
        OpBuf(b)
    }

    #[inline]
    fn with_capacity(&self, capacity: usize) -> OpBuf<'_> {
        OpBuf(self.pull(capacity))
    }

    #[inline]
    fn extend(buf: &mut OpBuf<'_>, bytes: &[u8]) {
        buf.0.extend_from_slice(bytes);
    }
}

// === impl ShardedSlab ===

/// A `sharded_slab::Pool<Vec<u8>>` per class: `create` takes a slot (reusing
/// its cleared `Vec`), `clear(key)` gives it back, from any thread. Unbounded.
pub struct ShardedSlab(Box<[sharded_slab::Pool<Vec<u8>>]>);

impl std::fmt::Debug for ShardedSlab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedSlab").finish_non_exhaustive()
    }
}

impl ShardedSlab {
    /// One `sharded_slab::Pool` per default class.
    pub fn new() -> Self {
        ShardedSlab((0..OVERSIZED).map(|_| sharded_slab::Pool::new()).collect())
    }

    #[inline]
    fn create(&self, len: usize, exposed: usize) -> SlabBuf<'_> {
        let class = pooled_class(len);
        let pool = &self.0[class];
        let mut slot = pool.create().expect("sharded-slab: no free slot");
        if slot.capacity() < DEFAULT_SIZE_CLASSES[class] {
            slot.reserve_exact(DEFAULT_SIZE_CLASSES[class]); // a fresh slot: allocate once
        }
        expose_zeroed(&mut slot, exposed);
        let (ptr, cap, key) = (NonNull::new(slot.as_mut_ptr()).expect("a Vec's pointer"), slot.capacity(), slot.key());
        drop(slot); // publishes the slot; its Vec keeps its allocation until `clear(key)`
        SlabBuf { pool, key, ptr, len: exposed, cap }
    }
}

impl Default for ShardedSlab {
    fn default() -> Self {
        Self::new()
    }
}

/// A slot of a `sharded_slab::Pool<Vec<u8>>`, written through the pointer of
/// its `Vec`'s allocation; dropping it clears the slot.
///
/// # Invariants
///
/// Until `pool.clear(key)`, no one else reaches the slot (its key is ours
/// alone) and its `Vec` keeps the allocation at `ptr`, of `cap` bytes, whose
/// first `len` bytes are initialised.
#[derive(Debug)]
pub struct SlabBuf<'a> {
    pool: &'a sharded_slab::Pool<Vec<u8>>,
    key: usize,
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
}

/// The handle owns its slot's bytes exclusively, like a `Vec<u8>` would.
// SAFETY: the key is held by this handle only (invariant), so moving it
// moves the only way to reach the bytes; `clear` is safe from any thread.
unsafe impl Send for SlabBuf<'_> {}

impl AsMut<[u8]> for SlabBuf<'_> {
    #[inline]
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: `len` initialised bytes at `ptr`, reachable only through us
        // until the slot is cleared (invariant).
        unsafe { slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for SlabBuf<'_> {
    #[inline]
    fn drop(&mut self) {
        self.pool.clear(self.key);
    }
}

impl Impl for ShardedSlab {
    type Buf<'a> = SlabBuf<'a>;

    fn name(&self) -> &'static str {
        "sharded-slab"
    }

    fn is_pool(&self) -> bool {
        true
    }

    #[inline]
    fn get(&self, len: usize) -> SlabBuf<'_> {
        self.create(len, len)
    }

    #[inline]
    fn with_capacity(&self, capacity: usize) -> SlabBuf<'_> {
        self.create(capacity, 0)
    }

    #[inline]
    fn extend(buf: &mut SlabBuf<'_>, bytes: &[u8]) {
        let end = buf.len + bytes.len();
        assert!(end <= buf.cap, "sharded-slab buffers do not grow");
        // SAFETY: `end <= cap`: inside the slot's allocation, ours alone
        // (invariant); `bytes` cannot overlap it.
        unsafe { buf.ptr.as_ptr().add(buf.len).copy_from_nonoverlapping(bytes.as_ptr(), bytes.len()) };
        buf.len = end;
    }
}
