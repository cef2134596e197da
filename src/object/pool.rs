//! [`ObjectPool`]: Bonwick's object cache on the generic layer: constructed
//! objects, reset by a [`Recycle`] policy, in one class of per-thread
//! magazines and the epoch depot.
//!
//! # Invariants
//!
//! - The layer has one class (0), of weight 1: its budgets and limits count
//!   objects.
//! - `new_object` and `recycle` run outside every owner access: `get` makes
//!   an object only after the layer's slow path has returned empty-handed,
//!   and `Pooled`'s drop recycles before it releases.
//!
//! Called by users, and by [`Pooled`] (release).

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::buffer::builder::{check_magazine_capacity, check_reclaim_interval};
use crate::cache::{local, reclaim, Caches, ClassSpec, LivePool};
use crate::object::recycle::{Clear, Recycle};
use crate::object::Pooled;
use crate::stats::{ClassStats, Stats};
use crate::{Error, MAGAZINE_GROWTH, MAX_MAGAZINE_CAPACITY};

/// Default objects per magazine.
const DEFAULT_MAGAZINE_CAPACITY: usize = 32;
/// Default most objects the depot keeps.
const DEFAULT_MAX_RETAINED: usize = 4096;
/// Default most objects one thread caches: two magazines grown to the most.
const DEFAULT_THREAD_CACHE_OBJECTS: usize = 2 * DEFAULT_MAGAZINE_CAPACITY * MAGAZINE_GROWTH;

/// A pool of typed objects, reused instead of made and dropped: Bonwick's
/// object cache, on the same per-thread magazines and lock-free depot as the
/// byte pool.
///
/// A [`get`](ObjectPool::get) pops the calling thread's magazine, or makes
/// an object with [`Recycle::new_object`]; dropping the [`Pooled`] handle
/// resets the object with [`Recycle::recycle`] on the releasing thread and
/// keeps it (or drops it, if `recycle` says so). `ObjectPool` is
/// `Send + Sync` when `T: Send` (and its policy is `Send + Sync`).
///
/// Same guarantees as the byte [`Pool`](crate::Pool), counted in objects:
/// no lock and no atomic read-modify-write on a cache hit, cross-thread
/// release, a thread's cache to the depot at its exit, at most
/// [`thread_cache_objects`](ObjectPoolBuilder::thread_cache_objects) per
/// thread and [`max_retained`](ObjectPoolBuilder::max_retained) in the
/// depot, [`reclaim_idle`](ObjectPool::reclaim_idle), and everything freed
/// when the pool drops.
///
/// `T` must not be zero-sized (a pool of those would keep nothing): such a
/// pool fails to compile ("a magazine holds sized items").
///
/// # Examples
///
/// ```
/// use magpool::{Clear, ObjectPool};
///
/// // Record batches: Vecs made with room for 64, kept while under 4096.
/// let batches: ObjectPool<Vec<u64>> = ObjectPool::new(Clear::new(64, 4096));
/// let mut batch = batches.get();
/// batch.extend([1, 2, 3]);
/// drop(batch); // cleared, back to this thread's magazine
/// let again = batches.get();
/// assert!(again.is_empty() && again.capacity() >= 64);
/// assert_eq!(batches.stats().allocations, 1);
/// ```
pub struct ObjectPool<T: Send + 'static, R = Clear> {
    /// The pool's id in the registry of live pools (`local.rs`), inline for
    /// the hot path.
    id: u64,
    shared: Arc<Shared<T, R>>,
}

/// What an [`ObjectPool`] owns; the registry of live pools holds the only
/// `Weak` of it.
struct Shared<T: Send + 'static, R> {
    recycle: R,
    caches: Caches<T>,
    reclaim_interval: Option<Duration>,
}

/// Configures an [`ObjectPool`].
///
/// ```
/// let pool = magpool::ObjectPool::<String>::builder(magpool::Clear::new(32, 1024))
///     .magazine_capacity(16)
///     .thread_cache_objects(64)
///     .max_retained(1000)
///     .build()?;
/// drop(pool.get());
/// # Ok::<(), magpool::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until `build`"]
pub struct ObjectPoolBuilder<T, R> {
    recycle: R,
    magazine_capacity: usize,
    thread_cache_objects: usize,
    max_retained: usize,
    reclaim_interval: Option<Duration>,
    _objects: PhantomData<fn() -> T>,
}

impl<T, R> ObjectPoolBuilder<T, R>
where
    T: Send + 'static,
    R: Recycle<T> + Send + Sync + 'static,
{
    /// Objects per magazine (default 32). A thread that both gets and
    /// releases in swings wider than its two magazines grows them up to
    /// [`MAGAZINE_GROWTH`] times this.
    pub fn magazine_capacity(mut self, objects: usize) -> Self {
        self.magazine_capacity = objects;
        self
    }

    /// The most objects one thread caches (default 256); 0 means no thread
    /// caching (every get and release trades with the depot).
    pub fn thread_cache_objects(mut self, objects: usize) -> Self {
        self.thread_cache_objects = objects;
        self
    }

    /// The most free objects the depot keeps (default 4096); past it,
    /// released objects are dropped (counted as discarded).
    pub fn max_retained(mut self, objects: usize) -> Self {
        self.max_retained = objects;
        self
    }

    /// Reclaims idle objects in the background every `every`, as
    /// [`Builder::reclaim_interval`](crate::Builder::reclaim_interval).
    pub fn reclaim_interval(mut self, every: Duration) -> Self {
        self.reclaim_interval = Some(every);
        self
    }

    /// Builds the pool.
    ///
    /// # Errors
    ///
    /// A magazine capacity of 0 or above [`MAX_MAGAZINE_CAPACITY`], or a
    /// reclaim interval of zero.
    pub fn build(self) -> Result<ObjectPool<T, R>, Error> {
        check_magazine_capacity(self.magazine_capacity)?;
        check_reclaim_interval(self.reclaim_interval)?;
        let base = self.magazine_capacity;
        let max = base.saturating_mul(MAGAZINE_GROWTH).min(MAX_MAGAZINE_CAPACITY);
        let spec = match self.thread_cache_objects {
            0 => ClassSpec { weight: 1, base: 0, max: 0, pooled: true },
            _ => ClassSpec { weight: 1, base, max, pooled: true },
        };
        let (budget, limit, every) = (self.thread_cache_objects, self.max_retained, self.reclaim_interval);
        let recycle = self.recycle;
        let shared = Arc::new_cyclic(|weak: &Weak<Shared<T, R>>| Shared {
            caches: Caches::new(local::add_pool(weak.clone()), [spec], budget, limit),
            recycle,
            reclaim_interval: every,
        });
        let id = shared.caches.id();
        if let Some(every) = every {
            reclaim::every(id, every);
        }
        Ok(ObjectPool { id, shared })
    }
}

impl<T, R> ObjectPool<T, R>
where
    T: Send + 'static,
    R: Recycle<T> + Send + Sync + 'static,
{
    /// A pool that makes and resets its objects with `recycle`, with the
    /// default configuration (see [`ObjectPoolBuilder`]).
    pub fn new(recycle: R) -> Self {
        match ObjectPool::builder(recycle).build() {
            Ok(pool) => pool,
            Err(e) => unreachable!("the default configuration is valid: {e}"),
        }
    }

    /// A builder with the defaults.
    pub fn builder(recycle: R) -> ObjectPoolBuilder<T, R> {
        ObjectPoolBuilder {
            recycle,
            magazine_capacity: DEFAULT_MAGAZINE_CAPACITY,
            thread_cache_objects: DEFAULT_THREAD_CACHE_OBJECTS,
            max_retained: DEFAULT_MAX_RETAINED,
            reclaim_interval: None,
            _objects: PhantomData,
        }
    }

    /// An object: one the calling thread cached, else one from the depot,
    /// else a new one from [`Recycle::new_object`]. It comes back to the pool
    /// when the handle drops.
    ///
    /// Cost: on a cache hit, a thread-local load and a pop: no lock, no
    /// atomic read-modify-write, no allocation.
    #[inline]
    pub fn get(&self) -> Pooled<'_, T, R> {
        let object = match self.shared.caches.pop(self.id, 0) {
            Some(object) => object,
            None => self.get_slow(),
        };
        Pooled::new(self, object)
    }

    #[cold]
    #[inline(never)]
    fn get_slow(&self) -> T {
        let made =
            self.shared.caches.pop_slow(0, || Ok::<T, std::convert::Infallible>(self.shared.recycle.new_object()));
        match made {
            Ok(object) => object,
            Err(never) => match never {},
        }
    }

    /// Takes back an object that was recycled and is to be kept.
    #[inline]
    pub(crate) fn release(&self, object: T) {
        if let Err(object) = self.shared.caches.push(self.id, 0, object) {
            self.shared.caches.push_slow(0, object);
        }
    }

    /// Counts the release of an object its handle dropped instead of
    /// keeping (refused or panicking `recycle`, or detached).
    pub(crate) fn count_dropped(&self) {
        self.shared.caches.count_dropped(0);
    }

    /// The policy this pool makes and resets objects with.
    pub(crate) fn policy(&self) -> &R {
        &self.shared.recycle
    }

    /// Counters, as [`Pool::stats`](crate::Pool::stats): one class, whose
    /// `size` is `size_of::<T>()` (so `retained_bytes` counts the objects'
    /// own bytes, not what they point to).
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Drops what the depot and the calling thread's cache hold.
    pub fn trim(&self) {
        self.shared.caches.trim();
    }

    /// Drops what nobody needed since the last call, as
    /// [`Pool::reclaim_idle`](crate::Pool::reclaim_idle); returns how many
    /// objects it dropped.
    pub fn reclaim_idle(&self) -> usize {
        LivePool::reclaim_idle(&*self.shared)
    }

    /// Keeps this pool for the life of the process, so that its handles are
    /// `Pooled<'static, T, R>` and can move into spawned tasks and threads.
    pub fn leak(self) -> &'static Self {
        local::leak(self)
    }

    /// This pool's id in the registry of live pools (for the metrics
    /// collector, which must not keep it alive).
    #[cfg(feature = "metrics")]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl<T: Send + 'static, R> Shared<T, R> {
    fn stats(&self) -> Stats {
        let class = ClassStats::from_reading(size_of::<T>(), self.caches.reading(0), self.caches.depot_magazines(0));
        let depot = self.caches.depot_weight().saturating_mul(size_of::<T>());
        Stats::from_classes(vec![class], ClassStats::default(), depot, self.caches.reclaims())
    }
}

impl<T, R> LivePool for Shared<T, R>
where
    T: Send + 'static,
    R: Send + Sync + 'static,
{
    fn flush_at_exit(&self, slot: local::SlotAddr, serial: u64) {
        self.caches.flush_at_exit(slot, serial);
    }

    fn stats(&self) -> Stats {
        Shared::stats(self)
    }

    fn reclaim_idle(&self) -> usize {
        self.caches.reclaim_idle()[0] as usize
    }
}

impl<T: Send + 'static, R> Drop for ObjectPool<T, R> {
    /// As [`Pool`](crate::Pool)'s: every object in every thread's cache and
    /// the depot is dropped with the pool's state.
    fn drop(&mut self) {
        if self.shared.reclaim_interval.is_some() {
            reclaim::stop(self.id);
        }
    }
}

impl<T: Send + 'static, R> fmt::Debug for ObjectPool<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectPool")
            .field("objects", &std::any::type_name::<T>())
            .field("caches", &self.shared.caches)
            .finish_non_exhaustive()
    }
}
