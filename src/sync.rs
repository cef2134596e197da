//! The one place that knows whether loom is watching.
//!
//! Every atomic, cell and thread-local in the crate comes from here, so a
//! `--cfg loom` build swaps all of them for loom's checked versions at once.
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
