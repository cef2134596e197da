//! [`Error`]: every way building a pool or getting a buffer can fail.
#![forbid(unsafe_code)]

use std::fmt;

/// Why a [`Builder`](crate::Builder) was rejected or a
/// [`try_get`](crate::Pool::try_get) could not be served.
///
/// Every variant carries the values that caused it, and its `Display` text
/// names the problem, so an `Err` printed to a log says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The size-class list was empty.
    NoSizeClasses,
    /// A size class of zero bytes was given.
    ZeroSizeClass {
        /// Position of the zero in the list.
        index: usize,
    },
    /// The size classes were not in increasing order.
    UnsortedSizeClasses {
        /// Position of the first class smaller than the one before it.
        index: usize,
        /// The class before it.
        previous: usize,
        /// The out-of-order class.
        size: usize,
    },
    /// The same size class was given twice.
    DuplicateSizeClass {
        /// The repeated size.
        size: usize,
    },
    /// More size classes than a pool supports.
    TooManySizeClasses {
        /// How many were given.
        count: usize,
        /// The most a pool supports.
        max: usize,
    },
    /// A size class larger than any allocation can be (`isize::MAX`, less
    /// alignment).
    SizeClassTooLarge {
        /// The size given.
        size: usize,
    },
    /// A magazine capacity of zero: no thread could cache anything.
    ZeroMagazineCapacity,
    /// A magazine capacity above the supported maximum.
    MagazineCapacityTooLarge {
        /// The capacity given.
        capacity: usize,
        /// The largest supported.
        max: usize,
    },
    /// A magazine byte budget of zero (see
    /// [`Builder::magazine_bytes`](crate::Builder::magazine_bytes)).
    ZeroMagazineBytes,
    /// A thread cache bound that cannot hold one buffer of the smallest
    /// class (see [`Builder::thread_cache_bytes`](crate::Builder::thread_cache_bytes);
    /// 0 is accepted and means no thread caching).
    ThreadCacheTooSmall {
        /// The bound given.
        bytes: usize,
        /// The smallest class.
        smallest: usize,
    },
    /// A reclaim interval of zero (see
    /// [`Builder::reclaim_interval`](crate::Builder::reclaim_interval)).
    ZeroReclaimInterval,
    /// [`init_global`](crate::init_global) was called after the global pool
    /// had been created (by an earlier `init_global`, or by a first use of
    /// [`global`](crate::global) or [`get`](crate::get)).
    GlobalAlreadyInitialized,
    /// A buffer larger than any allocation can be was requested.
    CapacityOverflow {
        /// The size requested.
        requested: usize,
    },
    /// The global allocator could not provide the memory.
    AllocationFailed {
        /// The size requested from the allocator.
        size: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::NoSizeClasses => f.write_str("no size classes were given; a pool needs at least one"),
            Error::ZeroSizeClass { index } => {
                write!(f, "size class #{index} is 0 bytes; every class must be at least 1 byte")
            }
            Error::UnsortedSizeClasses { index, previous, size } => write!(
                f,
                "size classes must be in increasing order, but class #{index} ({size} bytes) \
                 follows {previous} bytes"
            ),
            Error::DuplicateSizeClass { size } => {
                write!(f, "size class {size} bytes is given twice; classes must be distinct")
            }
            Error::TooManySizeClasses { count, max } => {
                write!(f, "{count} size classes were given; a pool supports at most {max}")
            }
            Error::SizeClassTooLarge { size } => {
                write!(f, "size class {size} bytes is larger than any allocation can be (isize::MAX)")
            }
            Error::ZeroMagazineCapacity => f.write_str("magazine capacity is 0; it must be at least 1 buffer"),
            Error::ZeroMagazineBytes => {
                f.write_str("magazine byte budget is 0; it must be at least 1 byte (each class then gets 1 buffer)")
            }
            Error::MagazineCapacityTooLarge { capacity, max } => {
                write!(f, "magazine capacity {capacity} is too large; at most {max} buffers are supported")
            }
            Error::ThreadCacheTooSmall { bytes, smallest } => write!(
                f,
                "thread cache bound {bytes} bytes cannot hold one buffer of the smallest class ({smallest} bytes); \
                 use at least {smallest}, or 0 for no thread caching"
            ),
            Error::ZeroReclaimInterval => {
                f.write_str("reclaim interval is 0; it must be a positive duration (or leave it unset: no reclaimer)")
            }
            Error::GlobalAlreadyInitialized => f.write_str(
                "the global pool already exists (an earlier init_global, or a first use of magpool::global() or \
                 magpool::get()); init_global must run before any of those",
            ),
            Error::CapacityOverflow { requested } => {
                write!(f, "a buffer of {requested} bytes was requested; no allocation can exceed isize::MAX bytes")
            }
            Error::AllocationFailed { size } => {
                write!(f, "the global allocator could not provide {size} bytes")
            }
        }
    }
}

impl std::error::Error for Error {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_values() {
        let e = Error::UnsortedSizeClasses { index: 2, previous: 4096, size: 1024 };
        let s = e.to_string();
        assert!(s.contains("#2") && s.contains("4096") && s.contains("1024"), "{s}");
        assert!(Error::ZeroMagazineCapacity.to_string().contains("magazine capacity is 0"));
        let e: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::NoSizeClasses);
        assert!(e.to_string().contains("no size classes"));
    }
}
