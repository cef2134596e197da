//! [`Pool`]: routes a length to its class, then to the calling thread's cache,
//! the depot, or the global allocator.
//!
//! # Invariants
//!
//! - Class index `n = classes.len()` is the oversized pseudo-class: never
//!   cached (`caps[n] == (0, 0)`), its blocks allocated exactly and freed on release.
//!   A zero-length request is class `n` too, with an empty block that is never
//!   counted.
//! - With `zero_on_release`, every block handed out is all zeroes: fresh
//!   blocks come from `alloc_zeroed`, and a cached block, zero past its dirty
//!   mark (`block.rs`), is wiped up to the mark by [`take`](Pool::take) before
//!   anyone sees it. Release itself writes nothing: it is O(1) at any size.
//! - A slot's cache is used only by the thread whose serial is in its `owner`.
//!   A thread claims a slot (`0 → serial`, Acquire) before its first use, and
//!   its exit hook flushes the slot and releases it (`serial → 0`, Release)
//!   after its last, so each owner's accesses happen after the previous
//!   owner's. A thread finds its slot through its own thread-local record
//!   (`local.rs`); a thread without one claims a free slot from the pool's
//!   list (`slots.rs`), or adds one.
//! - The thread's slot hint (`local::current`) holds the `Hot` address of a
//!   slot's cache only while the thread owns the slot (`local.rs`), so a hint
//!   hit needs no other check.
//!
//! Called by [`Buf`] (release, growth) and by users.

use std::fmt;
use std::ptr;
use std::sync::{Arc, Weak};

use crate::block::Block;
use crate::builder::{Builder, Config};
use crate::depot::Depot;
use crate::local::{self, LivePool};
use crate::size_class::SizeClasses;
use crate::slots::Slots;
use crate::stats::{ClassCounters, ClassStats, Reading, Stats};
use crate::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::thread_cache::{Hot, ThreadCache};
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
    shared: Arc<Shared>,
    /// This pool's entry in the registry of live pools (`local.rs`).
    id: u64,
}

/// What a [`Pool`] owns. `Pool` holds the one lasting strong reference; the
/// registry of live pools holds the only `Weak` one (`local.rs`).
struct Shared {
    classes: SizeClasses,
    zero_on_release: bool,
    max_retained_bytes: usize,
    depot: Depot<Block>,
    /// Base and maximum magazine capacity per class, `n + 1` entries
    /// (`(0, 0)` for oversized).
    caps: Box<[(usize, usize)]>,
    /// Every thread's slot; a slot's address never changes while the pool
    /// lives.
    slots: Slots<Slot>,
    /// Counters for work done without a cache (thread teardown, depot trim).
    remote: Box<[ClassCounters]>,
}

/// One thread's state in one pool.
struct Slot {
    cache: ThreadCache<Block>,
    /// Serial of the thread that owns `cache`, 0 while none does (see the
    /// module invariants for how ownership passes).
    owner: AtomicU64,
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

    /// This pool's id in the registry of live pools: observers such as the
    /// metrics collector hold it instead of a reference, so the pool can drop.
    #[cfg(feature = "metrics")]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn from_config(config: Config) -> Pool {
        let n = config.classes.len();
        let caps: Box<[_]> = config.caps.iter().copied().chain([(0, 0)]).collect();
        let item_bytes = config.classes.sizes().iter().copied().chain([0]);
        let shared = Arc::new(Shared {
            depot: Depot::new(item_bytes, config.max_retained_bytes),
            zero_on_release: config.zero_on_release,
            max_retained_bytes: config.max_retained_bytes,
            caps,
            slots: Slots::new(),
            remote: (0..=n).map(|_| ClassCounters::default()).collect(),
            classes: config.classes,
        });
        let weak: Weak<dyn LivePool> = Arc::downgrade(&shared) as Weak<Shared>;
        Pool { id: local::add_pool(weak), shared }
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
        match self.try_get(len) {
            Ok(buf) => buf,
            Err(e) => fail(e),
        }
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
        Ok(Buf::new(self, block, class, len))
    }

    /// An empty buffer with room for at least `capacity` bytes: the smallest
    /// class that holds it. Filling it past its capacity moves it to a larger
    /// class, like `Vec` growth. Same cost as [`get`](Pool::get), and nothing
    /// to zero when it comes back unwritten.
    ///
    /// # Panics
    ///
    /// As [`get`](Pool::get).
    #[inline]
    pub fn with_capacity(&self, capacity: usize) -> Buf<'_> {
        match self.take(capacity) {
            Ok((block, class)) => Buf::new(self, block, class, 0),
            Err(e) => fail(e),
        }
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
        self.shared.classes.sizes()
    }

    /// Whether released buffers are zeroed before reuse
    /// ([`Builder::zero_on_release`]).
    pub fn zero_on_release(&self) -> bool {
        self.shared.zero_on_release
    }

    /// The most bytes the depot keeps.
    pub fn max_retained_bytes(&self) -> usize {
        self.shared.max_retained_bytes
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

    /// Frees what the depot and the calling thread's cache hold (other threads'
    /// caches are theirs to keep). Buffers in use are unaffected.
    pub fn trim(&self) {
        let s = &*self.shared;
        if let Some(slot) = self.local_slot() {
            // SAFETY: `local_slot` returns a slot the calling thread owns.
            unsafe { slot.cache.drain() };
        }
        for class in 0..s.classes.len() {
            let freed = s.depot.drain(class);
            s.remote[class].discarded.bump_shared(freed);
            s.remote[class].trimmed.bump_shared(freed);
        }
    }

    // === the get and release paths ===

    /// Finds a block for `size` bytes, wiped when zeroing is on: the hot path.
    #[inline(always)]
    pub(crate) fn take(&self, size: usize) -> Result<(Block, usize), Error> {
        let s = &*self.shared;
        let class = s.classes.class_of(size);
        let hit = self.hinted_cache().and_then(|cache| {
            // SAFETY: `hinted_cache` returns the cache of a live slot the
            // calling thread owns; `class_of` returns at most `n`, and caches
            // have `n + 1` classes.
            unsafe { cache.pop(class) }
        });
        let mut block = match hit {
            Some(block) => block,
            None => self.take_slow(size, class)?,
        };
        if s.zero_on_release {
            block.wipe();
        }
        Ok((block, class))
    }

    #[cold]
    #[inline(never)]
    fn take_slow(&self, size: usize, class: usize) -> Result<Block, Error> {
        if size == 0 {
            return Ok(Block::empty());
        }
        let s = &*self.shared;
        let block_size = if class < s.classes.len() { s.classes.size(class) } else { size };
        let make = || Block::new_zeroed(block_size);
        match self.local_slot() {
            // The hint may have missed with blocks cached: try the magazine
            // first, as the hot path would have.
            // SAFETY: `local_slot` returns a slot the calling thread owns.
            Some(slot) => match unsafe { slot.cache.pop_local(class) } {
                Some(block) => Ok(block),
                // SAFETY: as above.
                None => unsafe { slot.cache.pop_slow(class, &s.depot, make) },
            },
            None => {
                let block = make()?;
                s.remote[class].allocations.bump_shared(1);
                s.remote[class].gets.bump_shared(1);
                Ok(block)
            }
        }
    }

    /// Takes back a block of `class`, dirty up to its mark: the hot path of
    /// every `Buf` drop. Writes nothing into the block (with zeroing on).
    #[inline]
    pub(crate) fn release(&self, mut block: Block, class: usize) {
        if cfg!(debug_assertions) && !self.shared.zero_on_release {
            block.poison(POISON);
        }
        if let Some(cache) = self.hinted_cache() {
            // SAFETY: as in `take`; `class` is the block's, at most `n`. The
            // oversized class has a placeholder magazine: always full.
            match unsafe { cache.push(class, block) } {
                Ok(()) => return,
                Err(back) => block = back,
            }
        }
        self.release_slow(block, class)
    }

    #[cold]
    #[inline(never)]
    fn release_slow(&self, block: Block, class: usize) {
        if block.size() == 0 {
            return; // an empty buffer: never counted
        }
        let s = &*self.shared;
        match self.local_slot() {
            // As in `take_slow`: the magazine may have room after a hint miss.
            // SAFETY: `local_slot` returns a slot the calling thread owns.
            Some(slot) => match unsafe { slot.cache.push_local(class, block) } {
                Ok(()) => {}
                // SAFETY: as above.
                Err(block) => unsafe { slot.cache.push_slow(class, block, &s.depot) },
            },
            None => {
                drop(block);
                s.remote[class].puts.bump_shared(1);
                s.remote[class].discarded.bump_shared(1);
            }
        }
    }

    /// The cache of the slot the calling thread owns in this pool, if its
    /// hint has it: the hot path's one thread-local load.
    #[inline(always)]
    fn hinted_cache(&self) -> Option<Hot<Block>> {
        let addr = local::current(self.id)?;
        // The slot lives in `self.shared.slots`, which never moves or frees a
        // value before it drops, and `&self` keeps the pool alive.
        // SAFETY: so the slot is alive, and the hint maps pool `self.id` to
        // its `Hot` address only while this thread owns it (`local.rs`).
        Some(unsafe { Hot::from_addr(addr) })
    }

    /// The slot the calling thread owns in this pool, claimed (and registered
    /// for the exit flush) if needed. `None` once the thread is exiting (work
    /// then bypasses caches). Safe at any point of thread teardown: it asks
    /// no other crate for a thread id.
    fn local_slot(&self) -> Option<&Slot> {
        let serial = local::claim_serial()?;
        let s = &*self.shared;
        let slot = match local::registered(self.id) {
            // SAFETY: the thread registered this address for this pool: a
            // slot in `s.slots`, which lives as long as `self`, and which the
            // thread owns until its exit hook releases it.
            Some(addr) => unsafe { &*addr.cast::<Slot>() },
            None => {
                let slot = s.slots.claim(
                    // Load first: a failed compare-exchange would still take
                    // the owned slot's cache line from its owner.
                    |free| {
                        free.owner.load(Relaxed) == 0
                            && free.owner.compare_exchange(0, serial, Acquire, Relaxed).is_ok()
                    },
                    || Slot { cache: ThreadCache::new(s.caps.iter().copied()), owner: AtomicU64::new(serial) },
                );
                if !local::register(self.id, ptr::from_ref(slot).cast()) {
                    slot.owner.store(0, Release);
                    return None;
                }
                slot
            }
        };
        debug_assert_eq!(slot.owner.load(Relaxed), serial);
        local::remember(self.id, slot.cache.hot().addr());
        Some(slot)
    }
}

impl Shared {
    /// The body of [`Pool::stats`], reachable without a `Pool` through the
    /// registry of live pools (`LivePool::stats`).
    fn stats(&self) -> Stats {
        let s = self;
        let n = s.classes.len();
        // Per class, every put side before any get side (see `Reading::sum`).
        let readings: Vec<Reading> = (0..=n)
            .map(|class| {
                Reading::sum(|| s.slots.iter().map(|slot| slot.cache.counters(class)).chain([&s.remote[class]]))
            })
            .collect();
        let classes =
            (0..n).map(|c| ClassStats::from_reading(s.classes.size(c), readings[c], s.depot.magazines(c))).collect();
        let oversized = ClassStats::from_reading(0, readings[n], (0, 0));
        Stats::from_classes(classes, oversized, s.depot.retained_bytes())
    }
}

impl LivePool for Shared {
    fn flush_at_exit(&self, slot: local::SlotAddr, serial: u64) {
        // SAFETY: the hook passes the address this thread registered for this
        // pool, a slot in `self.slots`, alive as long as `self` (which the
        // hook holds an `Arc` to).
        let slot = unsafe { &*slot.cast::<Slot>() };
        if slot.owner.load(Relaxed) == serial {
            // SAFETY: thread `serial`, the caller, owns the slot.
            unsafe { slot.cache.flush(&self.depot) };
            slot.owner.store(0, Release);
        }
    }

    fn stats(&self) -> Stats {
        Shared::stats(self)
    }
}

/// Panics (or aborts, for allocator failure) the way `Vec` would.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn fail(e: Error) -> ! {
    match e {
        Error::AllocationFailed { size } => {
            match std::alloc::Layout::from_size_align(size, crate::block::align_for(size)) {
                Ok(layout) => std::alloc::handle_alloc_error(layout),
                Err(_) => panic!("magpool: {e}"),
            }
        }
        _ => panic!("capacity overflow: {e}"),
    }
}

impl Drop for Pool {
    /// Leaves the registry, so that no thread-exit hook reaches the pool, then
    /// frees everything: every thread's cache (through the slots' drop)
    /// and the depot. A hook that found the pool just before keeps it alive
    /// until its flush ends, and the last of them frees it.
    fn drop(&mut self) {
        local::remove_pool(self.id);
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
            .field("zero_on_release", &self.shared.zero_on_release)
            .field("max_retained_bytes", &self.shared.max_retained_bytes)
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
        assert_eq!(pool.shared.slots.iter().count(), 1);
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
        assert_eq!(pool.shared.slots.iter().count(), 2);
    }
}
