//! [`Pool`]: routes a length to its class, then to the generic layer
//! (`cache/`): the calling thread's cache, the depot, or the global allocator.
//!
//! # Invariants
//!
//! - Class index `n = classes.len()` is the oversized pseudo-class: never
//!   cached (its capacities are `(0, 0)`), its blocks allocated exactly and
//!   freed on release. A zero-length request is class `n` too, with an empty
//!   block that is never counted.
//! - With `zero_on_release`, no byte a buffer exposes was written by an
//!   earlier user: fresh blocks come from `alloc_zeroed`, a cached block is
//!   zero past its dirty mark (`block.rs`), `get(len)` zeroes `[0, len)` up
//!   to the mark, and a `Buf` writes every byte it exposes beyond that
//!   (`buf.rs`). Release itself writes nothing: it is O(1) at any size.
//!
//! Called by [`Buf`] (release, growth) and by users.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::buffer::block::Block;
use crate::buffer::builder::{Builder, Config};
use crate::buffer::size_class::SizeClasses;
use crate::cache::{local, reclaim, Caches, ClassSpec, LivePool};
use crate::stats::{ClassStats, Stats};
use crate::{Buf, Error};

/// Byte written over released blocks in debug builds when zeroing is off, so
/// that use-after-release and aliasing bugs show up in tests.
pub(crate) const POISON: u8 = 0xA5;

/// A pool of byte buffers in size classes, with lock-free per-thread caches.
///
/// `Pool` is `Send + Sync`; share it by reference (or `Arc`, or a `static`).
/// Buffers borrow the pool, so it cannot be dropped while one is out; dropping
/// it frees every buffer it holds, in every thread's cache, at once.
///
/// # Examples
///
/// ```
/// use std::io::Write;
///
/// let pool = magpool::Pool::new();
/// let mut buf = pool.with_capacity(100);
/// write!(buf, "record {}", 42)?;
/// assert_eq!(&buf[..], b"record 42");
/// assert_eq!(buf.capacity(), 512); // the smallest class that holds 100
/// drop(buf); // back to this thread's cache: no lock, no allocator call
/// assert_eq!(pool.stats().in_use, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Pool {
    /// This pool's entry in the registry of live pools (`local.rs`).
    id: u64,
    /// Copies of what a get needs, inline: the hot path reads them with no
    /// pointer to follow (and never dereferences `shared`).
    zero_on_release: bool,
    classes: SizeClasses,
    shared: Arc<Shared>,
}

/// What a [`Pool`] owns. `Pool` holds the one lasting strong reference; the
/// registry of live pools holds the only `Weak` one (`local.rs`).
struct Shared {
    classes: SizeClasses,
    max_retained_bytes: usize,
    thread_cache_bytes: usize,
    reclaim_interval: Option<Duration>,
    /// Classes `0..n` and the oversized pseudo-class `n`.
    caches: Caches<Block>,
}

impl Pool {
    /// A pool with the default configuration: classes 512 B, 1 KiB, 4 KiB,
    /// 16 KiB, 64 KiB, 256 KiB, 1 MiB, 4 MiB, 16 MiB; zeroing on; the depot
    /// keeps up to 128 MiB.
    pub fn new() -> Pool {
        match Builder::default().build() {
            Ok(pool) => pool,
            Err(e) => unreachable!("the default configuration is valid: {e}"),
        }
    }

    /// A [`Builder`] with the defaults, to configure a pool.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Keeps this pool for the life of the process, so that its buffers are
    /// `Buf<'static>`: they can move into spawned tasks and threads, and
    /// [`freeze`](Buf::freeze) into `bytes::Bytes`. Costs one small
    /// allocation, once; the pool is never dropped (its memory stays bounded
    /// as configured, and [`reclaim_idle`](Pool::reclaim_idle) still gives
    /// back what goes unused).
    ///
    /// ```
    /// let pool = magpool::Pool::builder().size_classes([4096, 65536]).build()?.leak();
    /// let buf = pool.get(100);
    /// std::thread::spawn(move || assert_eq!(buf.len(), 100)).join().unwrap();
    /// # Ok::<(), magpool::Error>(())
    /// ```
    pub fn leak(self) -> &'static Pool {
        local::leak(self)
    }

    /// This pool's id in the registry of live pools: observers such as the
    /// metrics collector hold it instead of a reference, so the pool can drop.
    #[cfg(feature = "metrics")]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn from_config(config: Config) -> Pool {
        let shared = Arc::new_cyclic(|weak: &Weak<Shared>| {
            let id = local::add_pool(weak.clone());
            let specs = config.specs.iter().copied().chain([ClassSpec::UNPOOLED]);
            Shared {
                caches: Caches::new(id, specs, config.thread_cache_bytes, config.max_retained_bytes),
                max_retained_bytes: config.max_retained_bytes,
                thread_cache_bytes: config.thread_cache_bytes,
                reclaim_interval: config.reclaim_interval,
                classes: config.classes.clone(),
            }
        });
        let id = shared.caches.id();
        if let Some(every) = config.reclaim_interval {
            reclaim::every(id, every);
        }
        Pool { id, zero_on_release: config.zero_on_release, classes: config.classes, shared }
    }

    /// A buffer of `len` bytes: zeroes with the default
    /// [`zero_on_release`](Builder::zero_on_release), its capacity the smallest
    /// class that holds `len`. Above the largest class the buffer is oversized:
    /// allocated exactly, freed on drop. `get(0)` allocates nothing.
    ///
    /// Cost: when the calling thread's cache has a buffer of the class, a table
    /// lookup and a pop, with no lock, no atomic read-modify-write and no
    /// allocator call; otherwise a magazine exchange with the depot
    /// (lock-free), or one allocation.
    ///
    /// # Panics
    ///
    /// Where `vec![0; len]` would: `len > isize::MAX` panics with "capacity
    /// overflow"; an allocator failure calls [`std::alloc::handle_alloc_error`].
    /// Use [`try_get`](Pool::try_get) to get an `Err` instead.
    #[inline]
    pub fn get(&self, len: usize) -> Buf<'_> {
        self.hand_out(len, len)
    }

    /// A buffer of `len` bytes (zeroed as far as exposed) in a block for
    /// `size`: the one hot path of `get` (`len == size`) and `with_capacity`
    /// (`len == 0`, which zeroes nothing).
    #[inline(always)]
    fn hand_out(&self, size: usize, len: usize) -> Buf<'_> {
        let class = self.classes.class_of(size);
        match self.shared.caches.pop(self.id, class) {
            Some(block) => self.expose(block, class, len),
            // A tail call: the hit path saves no registers for the miss.
            None => self.hand_out_slow(size, class, len),
        }
    }

    #[cold]
    #[inline(never)]
    fn hand_out_slow(&self, size: usize, class: usize, len: usize) -> Buf<'_> {
        match self.take_slow(size, class) {
            Ok(block) => self.expose(block, class, len),
            Err(e) => fail(e),
        }
    }

    /// A buffer of `len` bytes in `block`: zeroes what `len` exposes of
    /// what earlier users wrote.
    #[inline(always)]
    fn expose(&self, mut block: Block, class: usize, len: usize) -> Buf<'_> {
        if self.zero_on_release {
            block.zero_prefix(len);
        }
        Buf::new(self, block, class, len)
    }

    /// Like [`get`](Pool::get), but returns an error instead of panicking.
    ///
    /// # Errors
    ///
    /// [`Error::CapacityOverflow`] when `len > isize::MAX` (less alignment),
    /// [`Error::AllocationFailed`] when the allocator cannot provide the
    /// memory. The pool is unchanged either way.
    #[inline]
    pub fn try_get(&self, len: usize) -> Result<Buf<'_>, Error> {
        let (block, class) = self.take(len)?;
        Ok(self.expose(block, class, len))
    }

    /// An empty buffer with room for at least `capacity` bytes: the smallest
    /// class that holds it. Filling it past its capacity moves it to a larger
    /// class, like `Vec` growth. Zeroes nothing: the buffer exposes no byte
    /// until its user writes it (see [`Buf`]'s "What a buffer shows"), so a
    /// get and release costs the same at any size.
    ///
    /// # Panics
    ///
    /// As [`get`](Pool::get).
    #[inline]
    pub fn with_capacity(&self, capacity: usize) -> Buf<'_> {
        self.hand_out(capacity, 0)
    }

    /// Like [`with_capacity`](Pool::with_capacity), but returns an error
    /// instead of panicking.
    ///
    /// # Errors
    ///
    /// As [`try_get`](Pool::try_get).
    pub fn try_with_capacity(&self, capacity: usize) -> Result<Buf<'_>, Error> {
        let (block, class) = self.take(capacity)?;
        Ok(Buf::new(self, block, class, 0))
    }

    /// The size classes, smallest first.
    pub fn size_classes(&self) -> &[usize] {
        self.classes.sizes()
    }

    /// Whether released buffers are zeroed before reuse
    /// ([`Builder::zero_on_release`]).
    pub fn zero_on_release(&self) -> bool {
        self.zero_on_release
    }

    /// The most bytes the depot keeps.
    pub fn max_retained_bytes(&self) -> usize {
        self.shared.max_retained_bytes
    }

    /// The most one thread caches ([`Builder::thread_cache_bytes`]).
    pub fn thread_cache_bytes(&self) -> usize {
        self.shared.thread_cache_bytes
    }

    /// The background reclaimer's interval for this pool, if it has one
    /// ([`Builder::reclaim_interval`]).
    pub fn reclaim_interval(&self) -> Option<Duration> {
        self.shared.reclaim_interval
    }

    /// Counters summed over every thread, now. Exact when no get or release is
    /// running; otherwise each counter is a recent value and `in_use` is never
    /// negative.
    ///
    /// Cost: reads every thread's counters (O(threads × classes)); nothing on
    /// the get/release path is shared or slowed by it.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Frees what the depot and the calling thread's cache hold to the
    /// global allocator (other threads' caches are left alone, and the
    /// allocator may keep the memory: see [`reclaim_idle`](Pool::reclaim_idle)
    /// for both). Buffers in use are unaffected.
    pub fn trim(&self) {
        self.shared.caches.trim();
    }

    /// Gives back to the allocator what nobody needed since the last call,
    /// and returns how many bytes of buffers it freed:
    ///
    /// - per class, as many of the depot's magazines as it never went below
    ///   since the last call (the depot's working set, after Bonwick & Adams;
    ///   a load that keeps using them loses none);
    /// - the caches of threads that made no get or release in this pool
    ///   since the last call, taken without their help (on Linux, with
    ///   `membarrier`; elsewhere idle threads keep their caches).
    ///
    /// Called at a steady interval (by hand, or with
    /// [`Builder::reclaim_interval`]), memory taken in a burst falls back to
    /// what the load uses within two intervals. The memory goes back to the
    /// operating system too: on glibc, which keeps freed memory in its
    /// heaps, magpool then asks it to return free pages (`malloc_trim`).
    ///
    /// Cost: a walk of the depot and of every thread's counters, one system
    /// call when some thread is idle, and the frees; nothing on any other
    /// thread's get/release path, which gains no atomic read-modify-write,
    /// fence or lock for it.
    ///
    /// ```
    /// let pool = magpool::Pool::new();
    /// drop((0..100).map(|_| pool.get(64 << 10)).collect::<Vec<_>>()); // a burst
    /// pool.reclaim_idle(); // starts the interval
    /// let freed = pool.reclaim_idle(); // nothing was used since: freed
    /// assert!(freed > 0);
    /// ```
    pub fn reclaim_idle(&self) -> usize {
        self.shared.reclaim_idle()
    }

    // === the get and release paths ===

    /// Finds a block for `size` bytes: the hot path. Zeroes nothing (the
    /// caller zeroes what it exposes).
    #[inline(always)]
    pub(crate) fn take(&self, size: usize) -> Result<(Block, usize), Error> {
        let class = self.classes.class_of(size);
        let block = match self.shared.caches.pop(self.id, class) {
            Some(block) => block,
            None => self.take_slow(size, class)?,
        };
        Ok((block, class))
    }

    #[cold]
    #[inline(never)]
    fn take_slow(&self, size: usize, class: usize) -> Result<Block, Error> {
        if size == 0 {
            return Ok(Block::empty());
        }
        let block_size = if class < self.classes.len() { self.classes.size(class) } else { size };
        self.shared.caches.pop_slow(class, || Block::new_zeroed(block_size))
    }

    /// Takes back a block of `class`, dirty up to its mark: the hot path of
    /// every `Buf` drop. Writes nothing into the block (with zeroing on).
    #[inline]
    pub(crate) fn release(&self, mut block: Block, class: usize) {
        if cfg!(debug_assertions) && !self.zero_on_release {
            block.poison(POISON);
        }
        // The oversized class has a placeholder magazine: always full.
        if let Err(block) = self.shared.caches.push(self.id, class, block) {
            self.release_slow(block, class);
        }
    }

    #[cold]
    #[inline(never)]
    fn release_slow(&self, block: Block, class: usize) {
        if block.size() == 0 {
            return; // an empty buffer: never counted
        }
        self.shared.caches.push_slow(class, block);
    }
}

impl Shared {
    /// The body of [`Pool::stats`], reachable without a `Pool` through the
    /// registry of live pools (`LivePool::stats`).
    fn stats(&self) -> Stats {
        let n = self.classes.len();
        let class = |c: usize, size: usize| {
            ClassStats::from_reading(size, self.caches.reading(c), self.caches.depot_magazines(c))
        };
        let classes = (0..n).map(|c| class(c, self.classes.size(c))).collect();
        let oversized = ClassStats::from_reading(0, self.caches.reading(n), (0, 0));
        Stats::from_classes(classes, oversized, self.caches.depot_weight(), self.caches.reclaims())
    }

    /// The body of [`Pool::reclaim_idle`].
    fn reclaim_idle(&self) -> usize {
        let freed = self.caches.reclaim_idle();
        let bytes = (0..self.classes.len()).map(|c| freed[c] as usize * self.classes.size(c)).sum();
        if bytes > 0 {
            Block::return_free_memory();
        }
        bytes
    }
}

impl LivePool for Shared {
    fn flush_at_exit(&self, slot: local::SlotAddr, serial: u64) {
        self.caches.flush_at_exit(slot, serial);
    }

    fn stats(&self) -> Stats {
        Shared::stats(self)
    }

    fn reclaim_idle(&self) -> usize {
        Shared::reclaim_idle(self)
    }
}

/// Panics (or aborts, for allocator failure) the way `Vec` would.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn fail(e: Error) -> ! {
    match e {
        Error::AllocationFailed { size } => {
            match std::alloc::Layout::from_size_align(size, crate::buffer::block::align_for(size)) {
                Ok(layout) => std::alloc::handle_alloc_error(layout),
                Err(_) => panic!("magpool: {e}"),
            }
        }
        _ => panic!("capacity overflow: {e}"),
    }
}

impl Drop for Pool {
    /// Stops the background reclaim, then frees everything with the pool's
    /// state: every thread's cache (through the slots' drop) and the depot.
    /// Whoever found the pool through the registry of live pools just
    /// before (a thread's exit hook, the reclaimer, the metrics collector)
    /// keeps that state alive until it is done, and the last of them frees
    /// it; the registry forgets the pool only then (`Caches`' drop), so a
    /// thread that exits meanwhile still flushes and releases its slot.
    fn drop(&mut self) {
        if self.shared.reclaim_interval.is_some() {
            reclaim::stop(self.id);
        }
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size_classes", &self.size_classes())
            .field("zero_on_release", &self.zero_on_release)
            .field("max_retained_bytes", &self.shared.max_retained_bytes)
            .field("thread_cache_bytes", &self.shared.thread_cache_bytes)
            .field("reclaim_interval", &self.shared.reclaim_interval)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A thread that exits gives its slot back, and the next thread takes it:
    /// thread churn does not grow the slot list.
    #[test]
    fn exited_threads_slots_are_reused() {
        let pool = Pool::new();
        let threads = if cfg!(miri) { 4 } else { 100 };
        for _ in 0..threads {
            // An explicit `join` returns only after the thread's thread-local
            // destructors (and so its exit hook) have run.
            std::thread::scope(|s| s.spawn(|| drop(pool.get(100))).join().unwrap());
        }
        assert_eq!(pool.shared.caches.slot_count(), 1);
        // Two threads at once need two slots.
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel();
            let pool = &pool;
            s.spawn(move || {
                drop(pool.get(100));
                rx.recv().unwrap();
            });
            drop(pool.get(100)); // this thread's slot
            tx.send(()).unwrap();
        });
        assert_eq!(pool.shared.caches.slot_count(), 2);
    }
}
