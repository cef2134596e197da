//! [`Builder`]: configuration, validated into a [`Config`] by
//! [`build`](Builder::build). Pure: no unsafe, no atomics.
#![forbid(unsafe_code)]

use std::time::Duration;

use crate::buffer::size_class::{SizeClasses, MAX_CLASSES};
use crate::cache::ClassSpec;
use crate::{Error, Pool};

/// The default size classes: 512 B, 1 KiB, 4 KiB, 16 KiB, 64 KiB, 256 KiB,
/// 1 MiB, 4 MiB, 16 MiB.
pub const DEFAULT_SIZE_CLASSES: [usize; 9] =
    [512, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20];

/// Default upper bound on buffers per magazine.
pub const DEFAULT_MAGAZINE_CAPACITY: usize = 32;

/// Default limit on the bytes the depot keeps: 128 MiB.
pub const DEFAULT_MAX_RETAINED_BYTES: usize = 128 << 20;

/// The largest accepted [`Builder::magazine_capacity`].
pub const MAX_MAGAZINE_CAPACITY: usize = 1 << 16;

/// Default byte budget of one magazine: 1 MiB (see [`Builder::magazine_bytes`]).
pub const DEFAULT_MAGAZINE_BYTES: usize = 1 << 20;

/// How many times its byte budget a thread's magazines of a class may grow to
/// while the thread both gets and releases that class (see
/// [`Builder::magazine_bytes`]).
pub const MAGAZINE_GROWTH: usize = 4;

/// Default bound on what one thread caches in one pool, all classes
/// together: 12 MiB (see [`Builder::thread_cache_bytes`]).
pub const DEFAULT_THREAD_CACHE_BYTES: usize = 12 << 20;

/// A class is cached in threads only when its buffers are at most this
/// fraction of [`Builder::thread_cache_bytes`] (one eighth: two magazines of
/// one buffer each take at most a quarter of the bound); larger ones are
/// traded with the depot one buffer at a time.
pub const THREAD_CACHED_FRACTION: usize = 8;

/// Configures a [`Pool`].
///
/// ```
/// let pool = magpool::Pool::builder()
///     .size_classes([256, 4096, 65536])
///     .magazine_capacity(16)
///     .max_retained_bytes(8 << 20)
///     .build()?;
/// assert_eq!(pool.size_classes(), &[256, 4096, 65536]);
/// # Ok::<(), magpool::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    classes: Vec<usize>,
    magazine_capacity: usize,
    magazine_bytes: usize,
    zero_on_release: bool,
    max_retained_bytes: usize,
    /// `None`: the default, which is never an error (classes it cannot hold
    /// are simply not cached in threads).
    thread_cache_bytes: Option<usize>,
    reclaim_interval: Option<Duration>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            classes: DEFAULT_SIZE_CLASSES.to_vec(),
            magazine_capacity: DEFAULT_MAGAZINE_CAPACITY,
            magazine_bytes: DEFAULT_MAGAZINE_BYTES,
            zero_on_release: true,
            max_retained_bytes: DEFAULT_MAX_RETAINED_BYTES,
            thread_cache_bytes: None,
            reclaim_interval: None,
        }
    }
}

impl Builder {
    /// A builder with the defaults (same as [`Pool::builder`]).
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The buffer sizes the pool serves, in bytes, strictly increasing, at most
    /// 64 of them. Requests above the largest are oversized: allocated exactly
    /// and freed on drop. Default: [`DEFAULT_SIZE_CLASSES`].
    pub fn size_classes(mut self, classes: impl IntoIterator<Item = usize>) -> Builder {
        self.classes = classes.into_iter().collect();
        self
    }

    /// Upper bound on buffers per magazine (default 32). Each class gets
    /// `min(buffers, magazine_bytes / class size)`, at least 1, so large
    /// classes cache few buffers; each thread holds two magazines per class.
    pub fn magazine_capacity(mut self, buffers: usize) -> Builder {
        self.magazine_capacity = buffers;
        self
    }

    /// Byte budget of one magazine (default 1 MiB): a class of `size` bytes
    /// gets `magazine_bytes / size` buffers per magazine, at least 1 and at
    /// most [`magazine_capacity`](Self::magazine_capacity).
    ///
    /// A thread whose refills and spills of a class alternate (it gets and
    /// releases that class in swings wider than its two magazines) doubles
    /// its magazines of that class at each such turn, up to
    /// [`MAGAZINE_GROWTH`] times this budget (and still at most
    /// `magazine_capacity` buffers), until its swings fit and it stays out of
    /// the depot. A thread that only gets or only releases a class, as in
    /// producer→consumer flow, keeps the budget: there larger magazines would
    /// only make buffers wait longer between release and reuse and come back
    /// colder. (Eight exchanges in a row in one direction halve a grown
    /// capacity again, for a thread that swung once and now flows one way.)
    /// A thread therefore caches at most two magazines per class, of at most
    /// `MAGAZINE_GROWTH` times the budget each, or one buffer each for
    /// classes above that.
    ///
    /// A larger budget gives the one-way threads larger magazines too: fewer
    /// depot exchanges, but colder buffers and more memory held (at 4 MiB,
    /// producer→consumer was 15–40% slower, with twice the peak RSS).
    /// Measure your own workload (`magpool-bench --magazine-bytes N`).
    ///
    /// ```
    /// let pool = magpool::Pool::builder().magazine_bytes(4 << 20).build()?;
    /// let held: Vec<_> = (0..8).map(|_| pool.get(1 << 20)).collect();
    /// drop(held); // two magazines of four 1 MiB buffers: all stay in this thread
    /// assert_eq!(pool.stats().classes[6].spills, 0);
    /// # Ok::<(), magpool::Error>(())
    /// ```
    pub fn magazine_bytes(mut self, bytes: usize) -> Builder {
        self.magazine_bytes = bytes;
        self
    }

    /// Whether a buffer's next user is kept from seeing what its last user
    /// wrote (default `true`): then no safe method shows a byte an earlier
    /// user wrote. The pool zeroes on exposure, only what is exposed:
    /// [`Pool::get`]`(len)` zeroes `[0, len)` (as far as any user ever wrote),
    /// [`Pool::with_capacity`] and growth zero nothing, and every method that
    /// lengthens a buffer writes the new bytes first (see [`Buf`](crate::Buf)'s
    /// "What a buffer shows"). A release writes nothing: O(1) at any size.
    ///
    /// Memory at rest is not scrubbed: a released buffer's bytes stay in
    /// memory until they are overwritten or freed, in a cache or in the
    /// spare capacity of the buffer's next user; a buffer that held a secret
    /// should be overwritten before it is dropped.
    ///
    /// With `false`, a buffer from [`Pool::get`] holds whatever its last user
    /// left there (always initialised memory), and nothing is ever zeroed.
    pub fn zero_on_release(mut self, on: bool) -> Builder {
        self.zero_on_release = on;
        self
    }

    /// The most bytes of free buffers the depot keeps (default 128 MiB). A
    /// thread spilling past it frees buffers to the global allocator instead
    /// (counted as discarded). Thread caches hold at most
    /// [`thread_cache_bytes`](Self::thread_cache_bytes) each on top of this.
    pub fn max_retained_bytes(mut self, bytes: usize) -> Builder {
        self.max_retained_bytes = bytes;
        self
    }

    /// The most one thread caches in this pool, all classes together
    /// (default [`DEFAULT_THREAD_CACHE_BYTES`], 12 MiB). The bound is on the
    /// capacity of the thread's magazines, so it holds at every instant,
    /// with no check on the get/release path; magazine growth happens inside
    /// it. Classes above an eighth of it
    /// ([`THREAD_CACHED_FRACTION`]) are not cached in threads at all: each
    /// get and release of such a buffer trades with the depot directly (tens
    /// of nanoseconds, beside the megabytes of memset such a buffer costs).
    /// `0` means no thread caching: every class is served by the depot.
    ///
    /// So the whole process holds at most
    /// `threads × thread_cache_bytes + max_retained_bytes` of free buffers,
    /// plus metadata (magazine slot arrays, about 8 bytes per cached buffer,
    /// and a few hundred bytes per class and thread).
    ///
    /// 12 MiB holds every default class up to 1 MiB at its base magazine
    /// size (7.4 MiB when a thread uses them all) and leaves room for the two
    /// largest, 256 KiB and 1 MiB, to double once: a thread that swings
    /// through every class, as a broker's worker does, rarely reaches the
    /// depot (with 8 MiB, the `mixed` workload's 1 MiB buffers went to the
    /// depot on one release in eleven, and its release p99.9 tripled). 64
    /// threads that each touch every class hold at most 768 MiB: what a
    /// broker's or proxy's worker pool can afford, and what
    /// [`reclaim_interval`](Self::reclaim_interval) gives back once they go
    /// idle. A service with hundreds of threads that each use the pool
    /// lightly can set it lower.
    ///
    /// ```
    /// let pool = magpool::Pool::builder().thread_cache_bytes(1 << 20).build()?;
    /// let held: Vec<_> = (0..64).map(|_| pool.get(64 << 10)).collect();
    /// drop(held); // at most 1 MiB of them stays with this thread
    /// assert!(pool.stats().thread_cached_bytes <= 1 << 20);
    /// # Ok::<(), magpool::Error>(())
    /// ```
    pub fn thread_cache_bytes(mut self, bytes: usize) -> Builder {
        self.thread_cache_bytes = Some(bytes);
        self
    }

    /// Reclaims idle memory in the background, every `every` (off by
    /// default): one process-wide thread calls
    /// [`Pool::reclaim_idle`](crate::Pool::reclaim_idle) on every pool that
    /// asked for it, so a burst's memory goes back to the allocator within
    /// two intervals of the burst's end, including what threads that stopped
    /// using the pool still cache. The thread starts with the first such
    /// pool, keeps none of them alive, and ends when the last one drops.
    pub fn reclaim_interval(mut self, every: Duration) -> Builder {
        self.reclaim_interval = Some(every);
        self
    }

    /// Validates the configuration and builds the pool.
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the problem: no classes, a zero, unsorted, duplicate
    /// or too-large class, too many classes, a magazine capacity of zero or
    /// above [`MAX_MAGAZINE_CAPACITY`], a magazine byte budget of zero, a
    /// thread cache bound that cannot hold one buffer of the smallest class
    /// (other than 0), or a reclaim interval of zero.
    pub fn build(self) -> Result<Pool, Error> {
        Ok(Pool::from_config(self.validate()?))
    }

    pub(crate) fn validate(self) -> Result<Config, Error> {
        check_classes(&self.classes)?;
        check_magazine_capacity(self.magazine_capacity)?;
        if self.magazine_bytes == 0 {
            return Err(Error::ZeroMagazineBytes);
        }
        let smallest = self.classes[0];
        let thread_cache_bytes = match self.thread_cache_bytes {
            Some(bytes) if bytes != 0 && bytes < smallest => {
                return Err(Error::ThreadCacheTooSmall { bytes, smallest })
            }
            Some(bytes) => bytes,
            None => DEFAULT_THREAD_CACHE_BYTES,
        };
        check_reclaim_interval(self.reclaim_interval)?;
        let grown = self.magazine_bytes.saturating_mul(MAGAZINE_GROWTH);
        let cap = |budget: usize, size: usize| (budget / size).clamp(1, self.magazine_capacity);
        let cached_up_to = thread_cache_bytes / THREAD_CACHED_FRACTION;
        let spec = |&size: &usize| match size <= cached_up_to {
            true => {
                ClassSpec { weight: size, base: cap(self.magazine_bytes, size), max: cap(grown, size), pooled: true }
            }
            false => ClassSpec { weight: size, base: 0, max: 0, pooled: true },
        };
        Ok(Config {
            classes: SizeClasses::new(&self.classes),
            specs: self.classes.iter().map(spec).collect(),
            zero_on_release: self.zero_on_release,
            max_retained_bytes: self.max_retained_bytes,
            thread_cache_bytes,
            reclaim_interval: self.reclaim_interval,
        })
    }
}

/// A magazine capacity both pools accept: `1..=MAX_MAGAZINE_CAPACITY`.
pub(crate) fn check_magazine_capacity(capacity: usize) -> Result<(), Error> {
    match capacity {
        0 => Err(Error::ZeroMagazineCapacity),
        n if n > MAX_MAGAZINE_CAPACITY => {
            Err(Error::MagazineCapacityTooLarge { capacity: n, max: MAX_MAGAZINE_CAPACITY })
        }
        _ => Ok(()),
    }
}

/// A reclaim interval both pools accept: none, or a nonzero one.
pub(crate) fn check_reclaim_interval(every: Option<Duration>) -> Result<(), Error> {
    match every {
        Some(Duration::ZERO) => Err(Error::ZeroReclaimInterval),
        _ => Ok(()),
    }
}

fn check_classes(classes: &[usize]) -> Result<(), Error> {
    if classes.is_empty() {
        return Err(Error::NoSizeClasses);
    }
    for (index, &size) in classes.iter().enumerate() {
        if size == 0 {
            return Err(Error::ZeroSizeClass { index });
        }
        // What `Layout` accepts for a block of this size (`block::align_for`).
        if size > isize::MAX as usize - (crate::buffer::block::align_for(size) - 1) {
            return Err(Error::SizeClassTooLarge { size });
        }
        if index > 0 {
            let previous = classes[index - 1];
            if size == previous {
                return Err(Error::DuplicateSizeClass { size });
            }
            if size < previous {
                return Err(Error::UnsortedSizeClasses { index, previous, size });
            }
        }
    }
    if classes.len() > MAX_CLASSES {
        return Err(Error::TooManySizeClasses { count: classes.len(), max: MAX_CLASSES });
    }
    Ok(())
}

/// A validated configuration.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) classes: SizeClasses,
    /// Per class: its size as the weight, the base magazine capacity and the
    /// most a thread grows its magazines to (the capacity for
    /// [`MAGAZINE_GROWTH`] times the budget), both in
    /// `1..=magazine_capacity`; or base 0 for a class above
    /// [`THREAD_CACHED_FRACTION`] of the thread bound.
    pub(crate) specs: Vec<ClassSpec>,
    pub(crate) zero_on_release: bool,
    pub(crate) max_retained_bytes: usize,
    pub(crate) thread_cache_bytes: usize,
    pub(crate) reclaim_interval: Option<Duration>,
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn err(b: Builder) -> Error {
        b.validate().unwrap_err()
    }

    #[test]
    fn defaults() {
        let c = Builder::default().validate().unwrap();
        assert_eq!(c.classes.sizes(), &DEFAULT_SIZE_CLASSES);
        let base: Vec<_> = c.specs.iter().map(|s| s.base).collect();
        let max: Vec<_> = c.specs.iter().map(|s| s.max).collect();
        // 4 MiB and 16 MiB are above an eighth of the 12 MiB thread bound.
        assert_eq!(base, [32, 32, 32, 32, 16, 4, 1, 0, 0]);
        assert_eq!(max, [32, 32, 32, 32, 32, 16, 4, 0, 0]);
        assert!(c.specs.iter().all(|s| s.pooled));
        assert!(c.zero_on_release);
        // The base magazines of every thread-cached class fit the bound.
        let base_bytes: usize = c.specs.iter().map(|s| 2 * s.base * s.weight).sum();
        assert!(base_bytes <= DEFAULT_THREAD_CACHE_BYTES, "{base_bytes}");
    }

    #[test]
    fn bad_classes() {
        let b = Builder::default;
        assert_eq!(err(b().size_classes([])), Error::NoSizeClasses);
        assert_eq!(err(b().size_classes([512, 0])), Error::ZeroSizeClass { index: 1 });
        assert_eq!(
            err(b().size_classes([512, 4096, 1024])),
            Error::UnsortedSizeClasses { index: 2, previous: 4096, size: 1024 }
        );
        assert_eq!(err(b().size_classes([512, 512])), Error::DuplicateSizeClass { size: 512 });
        assert_eq!(err(b().size_classes([usize::MAX])), Error::SizeClassTooLarge { size: usize::MAX });
        assert_eq!(
            err(b().size_classes([1, isize::MAX as usize])),
            Error::SizeClassTooLarge { size: isize::MAX as usize }
        );
        // The largest class a 16-aligned layout allows (blocks that big are
        // 16-aligned), and one byte more. The config fuzz target found the
        // limit wrongly taken from the 64-byte alignment of small blocks.
        assert!(b().size_classes([isize::MAX as usize - 15]).validate().is_ok());
        assert_eq!(
            err(b().size_classes([isize::MAX as usize - 14])),
            Error::SizeClassTooLarge { size: isize::MAX as usize - 14 }
        );
        assert_eq!(err(b().size_classes(1..=65)), Error::TooManySizeClasses { count: 65, max: MAX_CLASSES });
        assert!(b().size_classes(1..=64).validate().is_ok());
    }

    #[test]
    fn bad_magazines() {
        let b = Builder::default;
        assert_eq!(err(b().magazine_capacity(0)), Error::ZeroMagazineCapacity);
        assert_eq!(
            err(b().magazine_capacity(MAX_MAGAZINE_CAPACITY + 1)),
            Error::MagazineCapacityTooLarge { capacity: MAX_MAGAZINE_CAPACITY + 1, max: MAX_MAGAZINE_CAPACITY }
        );
        let c = b().magazine_capacity(1).validate().unwrap();
        assert!(c.specs.iter().all(|s| (s.base, s.max) == (1, 1) || (s.base, s.max) == (0, 0)));
    }

    #[test]
    fn bad_thread_cache_and_interval() {
        let b = Builder::default;
        assert_eq!(err(b().thread_cache_bytes(511)), Error::ThreadCacheTooSmall { bytes: 511, smallest: 512 });
        assert_eq!(err(b().reclaim_interval(Duration::ZERO)), Error::ZeroReclaimInterval);
        // 0: no thread caching, every class through the depot.
        let c = b().thread_cache_bytes(0).validate().unwrap();
        assert!(c.specs.iter().all(|s| s.base == 0 && s.pooled));
        // Just the smallest class: one 512-byte buffer fits, but the class is
        // above an eighth of the bound, so it too goes through the depot.
        assert!(b().thread_cache_bytes(512).validate().unwrap().specs.iter().all(|s| s.base == 0));
        assert!(b().reclaim_interval(Duration::from_nanos(1)).validate().is_ok());
    }
}
