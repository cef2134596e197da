//! A thread-local slab allocator for byte buffers and typed objects:
//! lock-free per-thread caches, an epoch-protected shared depot, and the
//! global allocator behind them, after Bonwick & Adams' magazines (USENIX 2001).
//!
//! Two pools share one machinery: [`Pool`] hands out byte buffers ([`Buf`])
//! in size classes, and [`ObjectPool`] hands out constructed objects
//! ([`Pooled`]), reset on release by a [`Recycle`] policy.
//!
//! # Quick start
//!
//! ```
//! use std::io::Write;
//!
//! // A buffer of 100 zero bytes from the global pool (capacity: 512 bytes).
//! let mut buf = magpool::get(100);
//! buf[..5].copy_from_slice(b"hello");
//! drop(buf); // back to this thread's cache: no lock, no allocator call
//!
//! // A pool of your own, and a buffer filled like a Vec.
//! let pool = magpool::Pool::builder().max_retained_bytes(64 << 20).build()?;
//! let mut record = pool.with_capacity(64);
//! write!(record, "key=value")?;
//! assert_eq!(&record[..], b"key=value");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Objects: a pool of `Vec<u64>` batches, cleared on release, kept while
//! under 4096 elements.
//!
//! ```
//! use magpool::{Clear, ObjectPool};
//!
//! let batches: ObjectPool<Vec<u64>> = ObjectPool::new(Clear::new(64, 4096));
//! let mut batch = batches.get();
//! batch.extend(0..10);
//! drop(batch); // cleared, back to this thread's cache
//! assert!(batches.get().is_empty());
//! ```
//!
//! In a `bytes`/`tokio` service: read into a `Buf` with `read_buf` (it is a
//! `bytes::BufMut`), encode replies through `BufMut`, and
//! [`freeze`](Buf::freeze) them into `bytes::Bytes` with no copy; buffers of
//! a `'static` pool ([`Pool::leak`], [`global`]) go home on whatever thread
//! drops them.
//!
//! # How it works
//!
//! ```text
//!   thread A                 thread B                 thread C
//!  ┌─────────────────┐      ┌─────────────────┐      ┌─────────────────┐
//!  │ class 4 KiB:    │      │ class 4 KiB:    │      │       ...       │
//!  │ loaded [■■■□]   │      │ loaded [■□□□]   │      │                 │
//!  │ previous [■■■■] │      │ previous [□□□□] │      │                 │
//!  └───────┬─────────┘      └───────┬─────────┘      └────────┬────────┘
//!   get/release: pop/push on the calling thread's own magazines
//!          │ refill (full) / spill (full), a whole magazine at a time
//!  ┌───────▼────────────────────────▼──────────────────────────▼────────┐
//!  │ depot, per class: lock-free stacks of full and empty magazines     │
//!  │ (crossbeam-epoch), at most max_retained_bytes in full ones         │
//!  └───────┬───────────────────────────────────────────────────▲────────┘
//!          │ nothing cached anywhere: allocate    over the limit: free
//!  ┌───────▼───────────────────────────────────────────────────┴────────┐
//!  │ global allocator                                                   │
//!  └────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! A get pops the calling thread's *loaded* magazine for the class; a release
//! pushes onto it. When it runs empty or full, the thread swaps in its
//! *previous* magazine, and only when both are exhausted does it trade a whole
//! magazine with the depot. Buffers released on another thread go to that
//! thread's cache and reach the depot a magazine at a time. See
//! [`implementation`] for the design notes.
//!
//! # Guarantees
//!
//! - **Lock-free hot path.** A get or release served by the thread's cache
//!   takes no lock, makes no atomic read-modify-write on shared memory, and
//!   calls no allocator. Depot exchanges are lock-free.
//! - **Zero on exposure.** With [`zero_on_release`](Builder::zero_on_release)
//!   (the default), no safe method ever shows a byte that an earlier user of
//!   the buffer wrote: [`Pool::get`]`(len)` zeroes the first `len` bytes (only
//!   as far as any user ever wrote them), every method that lengthens a
//!   buffer writes the new bytes first, and the spare capacity past the
//!   length is write-only. [`Pool::with_capacity`] and growth zero nothing,
//!   and a release writes nothing: O(1) at any size. Memory at rest is not
//!   scrubbed: a released buffer's bytes stay in memory, in a cache or in
//!   the spare capacity of its next user, until overwritten or freed.
//!   Without zeroing, `get` shows stale bytes, always initialised.
//! - **Bounded memory.** The depot keeps at most
//!   [`max_retained_bytes`](Builder::max_retained_bytes), and one thread's
//!   cache in one pool at most [`thread_cache_bytes`](Builder::thread_cache_bytes)
//!   (12 MiB by default), all classes together, whatever it does: the whole
//!   process holds at most `threads × thread_cache_bytes + max_retained_bytes`
//!   of free buffers, plus metadata. Within that, each class's magazines
//!   follow a byte budget ([`magazine_bytes`](Builder::magazine_bytes)), and a
//!   thread that both gets and releases a class in wide swings grows its
//!   magazines of that class up to [`MAGAZINE_GROWTH`] times the budget.
//! - **Memory comes back.** [`Pool::reclaim_idle`] (or a background
//!   reclaimer, with [`reclaim_interval`](Builder::reclaim_interval)) frees
//!   what the depot did not need since the last call and what threads idle
//!   since then cache, without their help, and asks glibc to return the
//!   pages.
//! - **Thread exit.** What an exiting thread caches goes to the depot. Gets and
//!   releases during thread-local teardown still work, in any destructor
//!   order, even as a pool's first use on the thread.
//! - **Pool drop.** Dropping a [`Pool`] frees everything it holds, in every
//!   thread's cache, at once. A [`Buf`] cannot outlive its pool.
//! - **Panics.** A `Buf` is returned to its pool when a panic unwinds past it.
//! - **No re-entry.** No item is made, reset or dropped, and no allocator is
//!   called, while a thread's cache is borrowed: a `Drop` or
//!   [`Recycle`] that uses the same pool again works. magpool allocates its
//!   blocks and its own bookkeeping from the global allocator, so it cannot
//!   itself be the `#[global_allocator]`; any other re-entry is a bug, and
//!   debug builds panic on it instead of aliasing.
//!
//! # Safety and correctness
//!
//! The crate has two layers, and the source tree shows them: `src/cache/` is
//! the generic layer (magazines, thread caches, the depot and its stacks,
//! slots, the thread registry), which moves opaque items and knows nothing of
//! bytes; `src/buffer/` is the byte pool built on it (size classes, blocks,
//! [`Buf`]), and `src/object/` the object pool ([`ObjectPool`], [`Recycle`]). Unsafe code lives in `buffer/block.rs` (allocation),
//! `buffer/buf.rs` (the byte view), `cache/stack.rs` (the epoch-protected
//! stacks), `cache/thread_cache.rs` (owner-only magazines), `cache/slots.rs`
//! and `cache/caches.rs` (slot ownership); each block names the invariant it
//! relies on.
//!
//! - **loom.** Twelve models (`loom-tests/`): the cache–depot hand-off, the
//!   depot's stacks and limit, the slot list, stats, the idle-thread
//!   reclaim, the depot's working-set reclaim, and the object pool's
//!   hand-off and re-entrant drop, each shown to catch a bug injected into
//!   this code.
//! - **Fuzzing.** Three cargo-fuzz targets (`fuzz/`) check programs of gets,
//!   growth, reads, releases, object gets, thread exits, trims and reclaims
//!   against a model.
//! - **Sanitizers and miri.** The unit and integration tests run under miri,
//!   AddressSanitizer and ThreadSanitizer.
//! - **Allocator ledger.** `tests/` checks, with a counting global
//!   allocator, that every block is freed exactly once and that the hot path
//!   makes no allocator call.
//!
//! `bash .ci/run` runs all of it.
//!
//! # Performance
//!
//! `cargo run --release -p magpool-bench -- --quick` measures magpool beside
//! the system allocator, mimalloc, jemalloc, `BytesMut` and several object
//! pools on eleven workloads, and `cargo bench -p magpool-bench` runs the same workloads under
//! criterion. The README's Performance section shows the report from the
//! development machine, including the workloads where magpool is not ahead.
//!
//! # Feature flags
//!
//! - `bytes` (default): `bytes::BufMut` for [`Buf`], and [`Buf::freeze`] into
//!   `bytes::Bytes` with no copy. Without it, magpool has no `bytes`
//!   dependency.
//! - `metrics` (default): [`Pool::register_metrics`], which exports a pool's
//!   [`Stats`] to a [`prometheus-client`](https://docs.rs/prometheus-client)
//!   0.25 registry, per size class, read at scrape time (nothing changes on
//!   the get/release path). `examples/metrics_server.rs` serves them over
//!   HTTP. Without it, magpool has no Prometheus dependency.
#![deny(unsafe_op_in_unsafe_fn)]
#![doc(test(attr(deny(warnings))))]

mod buffer;
mod cache;
mod error;
#[cfg(feature = "metrics")]
mod metrics;
mod object;
mod stats;
mod sync;

pub mod implementation;

pub use buffer::buf::Buf;
pub use buffer::builder::{
    Builder, DEFAULT_MAGAZINE_BYTES, DEFAULT_MAGAZINE_CAPACITY, DEFAULT_MAX_RETAINED_BYTES, DEFAULT_SIZE_CLASSES,
    DEFAULT_THREAD_CACHE_BYTES, MAGAZINE_GROWTH, MAX_MAGAZINE_CAPACITY, THREAD_CACHED_FRACTION,
};
pub use buffer::pool::Pool;
pub use buffer::size_class::MAX_CLASSES;
pub use error::Error;
pub use object::{Clear, ObjectPool, ObjectPoolBuilder, Pooled, Recycle};
pub use stats::{ClassStats, Stats};

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

use once_cell::sync::OnceCell;

static GLOBAL: OnceCell<Pool> = OnceCell::new();

/// The process-wide default pool, created on first use with
/// [`Pool::new`]'s configuration, or the one [`init_global`] configured.
/// Cost after the first call: one load and a branch.
///
/// ```
/// let pool = magpool::global();
/// assert_eq!(pool.size_classes().len(), 9);
/// ```
#[inline]
pub fn global() -> &'static Pool {
    GLOBAL.get_or_init(Pool::new)
}

/// Configures the [`global`] pool, before its first use: call it at the
/// start of `main`, before anything calls [`global`] or [`get`].
///
/// # Errors
///
/// The builder's error, if its configuration is invalid; or
/// [`Error::GlobalAlreadyInitialized`] if the global pool already exists
/// (this pool is then dropped, and the existing one is unchanged).
///
/// ```
/// let pool = magpool::init_global(magpool::Pool::builder().size_classes([4096, 1 << 20]))?;
/// assert_eq!(magpool::global().size_classes(), &[4096, 1 << 20]);
/// assert!(std::ptr::eq(pool, magpool::global()));
/// let again = magpool::init_global(magpool::Pool::builder());
/// assert_eq!(again.unwrap_err(), magpool::Error::GlobalAlreadyInitialized);
/// # Ok::<(), magpool::Error>(())
/// ```
pub fn init_global(builder: Builder) -> Result<&'static Pool, Error> {
    let mut pool = Some(builder.build()?);
    let global = GLOBAL.get_or_init(|| pool.take().expect("get_or_init runs its closure once"));
    match pool {
        None => Ok(global),
        Some(_) => Err(Error::GlobalAlreadyInitialized),
    }
}

/// A buffer of `len` zero bytes from the [`global`] pool: `global().get(len)`.
///
/// # Panics
///
/// As [`Pool::get`].
#[inline]
pub fn get(len: usize) -> Buf<'static> {
    global().get(len)
}
