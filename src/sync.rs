//! The one place that knows whether loom is watching.
//!
//! Every atomic, cell and thread-local in the crate comes from here, so a
//! `--cfg loom` build swaps all of them for loom's checked versions at once.
//! So does the depot's epoch collector ([`epoch`]).
//! Paths mirror `std` (`crate::sync::atomic::AtomicUsize`), and the std side
//! adopts loom's API where the two differ (`UnsafeCell::with` / `with_mut`),
//! so that call sites read the same under both builds.
//!
//! # Invariants
//!
//! A loom stand-in may be slower than the real thing, never more
//! synchronised: nothing here adds a lock or a fence that the std build does
//! not have.
//!
//! `clippy.toml` forbids `std::sync::atomic`, `std::cell::UnsafeCell` and
//! `thread_local!` everywhere else.
#![allow(clippy::disallowed_types)] // this is sync.rs: the one home of UnsafeCell

#[cfg(all(loom, not(crossbeam_loom)))]
compile_error!(
    "build loom models with RUSTFLAGS=\"--cfg loom --cfg crossbeam_loom\": \
     crossbeam-epoch only runs under loom with both"
);

pub(crate) use self::imp::*;

/// `crossbeam-epoch` on magpool's own [`Collector`], not the process-wide
/// default one: the depot pins through [`epoch::pin`].
///
/// # Why a collector of our own
///
/// The outermost pin of a thread now and then collects garbage, and a
/// collection runs whatever functions were deferred on that collector, by
/// anyone. On the default collector that includes other libraries' and the
/// user's: one that drops a `Buf` would release it into the very thread
/// cache whose magazines the depot exchange that pinned is borrowing
/// (`&mut`), which is undefined behaviour and, in practice, lost or doubled
/// buffers. On this collector the only deferred functions are the stacks'
/// returns of nodes to their shells (`stack.rs`), which touch no cache.
///
/// # Invariants
///
/// Every guard the crate uses comes from [`epoch::pin`] or is
/// `epoch::unprotected()`; nothing pins crossbeam's default collector.
///
/// [`Collector`]: crossbeam_epoch::Collector
pub(crate) mod epoch {
    pub(crate) use crossbeam_epoch::{unprotected, Atomic, Guard, Owned, Shared};
    use crossbeam_epoch::{Collector, LocalHandle};

    #[cfg(not(loom))]
    fn collector() -> &'static Collector {
        static COLLECTOR: std::sync::OnceLock<Collector> = std::sync::OnceLock::new();
        COLLECTOR.get_or_init(Collector::new)
    }

    #[cfg(loom)]
    fn collector() -> &'static Collector {
        loom::lazy_static! {
            static ref COLLECTOR: Collector = Collector::new();
        }
        &COLLECTOR
    }

    super::thread_local! {
        /// This thread's participant in magpool's collector.
        static HANDLE: LocalHandle = collector().register();
    }

    /// Pins the calling thread on magpool's collector (re-entrantly when it
    /// is pinned already). During thread teardown, after `HANDLE` is gone,
    /// a fresh participant pins instead, as crossbeam's own `pin` does.
    #[inline]
    pub(crate) fn pin() -> Guard {
        HANDLE.try_with(LocalHandle::pin).unwrap_or_else(|_| collector().register().pin())
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::*;
    }
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::thread_local;
}

#[cfg(not(loom))]
mod imp {
    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::*;
    }
    pub(crate) use std::sync::Arc;
    pub(crate) use std::thread_local;

    /// `std::cell::UnsafeCell` with loom's closure-based API.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with an exclusive raw pointer to the contents.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}
