//! magpool beside its peers: one small trait, [`Impl`], that every buffer
//! source implements, the workloads written once against it, the workloads
//! with implementations of their own (freeze, object batch, burst→idle), a
//! counting allocator, and the report's measuring side ([`child`]). The
//! criterion benches (`benches/peers.rs`, `cargo bench -p magpool-bench`) and
//! the bench report (`cargo run --release -p magpool-bench`) both use it.
//!
//! # Implementations
//!
//! | name | what a get is | what a release is |
//! |---|---|---|
//! | `magpool` | `Pool::get` | drop (zeroes what was exposed) |
//! | `vec` | `vec![0; len]` / `Vec::with_capacity` (global allocator) | free |
//! | `mimalloc`, `jemalloc` | `alloc_zeroed` / `alloc` through that allocator's `GlobalAlloc`, called directly | `dealloc` |
//! | `lockfree-object-pool` | `LinearObjectPool::pull` per class, then zero `len` bytes | back to its page |
//! | `object-pool` | `Pool::pull` per class, then zero `len` bytes | back into its `Mutex<Vec>` |
//! | `sharded-slab` | `Pool::create` per class, then zero `len` bytes | `Pool::clear(key)` |
//! | `arrayqueue` | `ArrayQueue::pop` per class (else allocate), then zero `len` bytes | `push` (else free) |
//! | `mutex` | `Mutex<Vec<Vec<u8>>>::pop` per class (else allocate), then zero `len` bytes | `push` (else free) |
//! | `tls-vec` | a thread-local `Vec<Vec<u8>>` per class: `pop` (else allocate), then zero `len` bytes | `push` (else free) |
//!
//! `tls-vec` is not a peer but the floor: the bare thread-local pop+push that
//! issue 7 measures magpool's own overhead against. `magpool-uncached`
//! (`thread_cache_bytes(0)`) runs only the thread-exit workload.
//!
//! Each workload names its implementations ([`Workload::impls`]); the freeze
//! ([`freeze`]) and object-batch ([`objects`]) workloads have their own, and
//! [`with_bench`] sets up any of them by name.
//!
//! Every pool uses magpool's default size classes and hands out exactly what
//! `magpool` does: `get(len)` is `len` zero bytes, `with_capacity(n)` is empty
//! with room for at least `n`. A pool zeroes the `len` bytes it exposes (on
//! get, after clearing the `Vec` it kept), the cheapest honest way; magpool
//! zeroes, also on get, every byte the block's previous user exposed (its
//! high-water mark), so that no old byte stays even past `len`.
//!
//! # Global allocators
//!
//! For the byte buffers, mimalloc and jemalloc are called through their
//! `GlobalAlloc` impls from [`peers::RawBuf`], not installed as the process's
//! global allocator, so those implementations run in one binary. `BytesMut`
//! (freeze) can only use the global allocator: its jemalloc and mimalloc
//! measurements run in two more binaries of this package, whose global
//! allocator that is (see [`child`]).

use std::time::Duration;

pub mod child;
pub mod count;
pub mod freeze;
pub mod idle;
pub mod objects;
pub mod peers;
pub mod rng;
pub mod thread_exit;
pub mod workloads;

use workloads::{ImplBench, Latency, Workload};

/// A source of byte buffers: an allocator or a pool. Each workload is written
/// once against this trait.
///
/// Buffers are `Send`, so they may be released on another thread than the one
/// that got them (the producer→consumer workload does).
pub trait Impl: Sync {
    /// An owned buffer whose `as_mut` is its `len` exposed bytes; dropping it
    /// is the release.
    type Buf<'a>: Send + AsMut<[u8]>
    where
        Self: 'a;

    /// Short name, as in tables and `BenchmarkId`s.
    fn name(&self) -> &'static str;

    /// Whether this is a peer pool or magpool (`true`), or a baseline: an
    /// allocator, or `tls-vec`.
    fn is_pool(&self) -> bool;

    /// A buffer of `len` zero bytes.
    fn get(&self, len: usize) -> Self::Buf<'_>;

    /// An empty buffer with room for at least `capacity` bytes.
    fn with_capacity(&self, capacity: usize) -> Self::Buf<'_>;

    /// Appends `bytes` to `buf`. The workloads stay within the capacity asked
    /// for; implementations that cannot grow panic past it.
    fn extend(buf: &mut Self::Buf<'_>, bytes: &[u8]);

    /// Bytes of free buffers this implementation holds for reuse, where it
    /// says (magpool's `Stats::retained_bytes`); `None` for the others.
    fn retained_bytes(&self) -> Option<u64> {
        None
    }

    /// Gives back what nobody used since the last call, where the
    /// implementation can (magpool's `Pool::reclaim_idle`); a no-op for the
    /// others, which have no such call.
    fn reclaim_idle(&self) {}
}

/// Something to do with each implementation, generically: see [`for_each_impl`].
pub trait Visitor {
    /// Called once per implementation.
    fn visit<I: Impl>(&mut self, imp: &I);
}

/// Names of every implementation, in table order.
pub const IMPLS: [&str; 10] = [
    "magpool",
    "vec",
    "mimalloc",
    "jemalloc",
    "lockfree-object-pool",
    "object-pool",
    "sharded-slab",
    "arrayqueue",
    "mutex",
    "tls-vec",
];

/// Builds the implementation called `name` and hands it to `v`; `false` when
/// no implementation has that name.
pub fn visit_impl(name: &str, v: &mut impl Visitor) -> bool {
    use peers::*;
    match name {
        "magpool" => v.visit(&Magpool::new()),
        "magpool-uncached" => v.visit(&Magpool::uncached()),
        "vec" => v.visit(&SystemVec),
        "mimalloc" => v.visit(&Direct::mimalloc()),
        "jemalloc" => v.visit(&Direct::jemalloc()),
        "lockfree-object-pool" => v.visit(&LockfreeObjectPool::new()),
        "object-pool" => v.visit(&ObjectPool::new()),
        "sharded-slab" => v.visit(&ShardedSlab::new()),
        "arrayqueue" => v.visit(&QueuePool::array_queue()),
        "mutex" => v.visit(&QueuePool::mutex()),
        "tls-vec" => v.visit(&QueuePool::thread_local()),
        _ => return false,
    }
    true
}

/// One implementation set up for one workload: what the report's child
/// process times, whatever the kind of implementation.
pub trait Bench {
    /// Runs `iters` iterations; the timed section's length.
    fn run(&mut self, iters: u64) -> Duration;

    /// Get and release latencies of `iters` iterations, each call timed, for
    /// the workloads that record them (mixed and producer→consumer).
    fn latency(&mut self, _iters: u64) -> Option<Latency> {
        None
    }
}

/// Sets up implementation `imp` for `w` and hands it to `f`; `false` when
/// `w` has no implementation of that name, or is burst→idle (memory over
/// time, not a time: [`idle::series`]).
pub fn with_bench(imp: &str, w: Workload, f: &mut dyn FnMut(&mut dyn Bench)) -> bool {
    /// Hands an [`Impl`] set up for `.0` to `.1`.
    struct OnImpl<'f>(Workload, &'f mut dyn FnMut(&mut dyn Bench));
    impl Visitor for OnImpl<'_> {
        fn visit<I: Impl>(&mut self, imp: &I) {
            (self.1)(&mut ImplBench { imp, workload: self.0 });
        }
    }
    if !w.impls().contains(&imp) {
        return false;
    }
    match w {
        Workload::Freeze(len) => freeze::with_bench(imp, len, f),
        Workload::ObjectBatch(threads) => objects::with_bench(imp, threads, f),
        Workload::BurstIdle => false,
        _ => visit_impl(imp, &mut OnImpl(w, f)),
    }
}

/// Builds every implementation in [`IMPLS`] order, one at a time, and hands
/// each to `v`.
pub fn for_each_impl(v: &mut impl Visitor) {
    for name in IMPLS {
        let known = visit_impl(name, v);
        debug_assert!(known, "{name} is in IMPLS");
    }
}
