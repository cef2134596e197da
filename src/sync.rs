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
//! not have, except the owner's light barrier, which under loom is the full
//! fence that the heavy barrier makes of it in a real run ([`barrier`]).
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

/// The two halves of an asymmetric barrier (`cache/owner.rs`): a `light`
/// one on the owner's hot path that costs nothing at run time, and a `heavy`
/// one on the reclaimer's side that makes every running thread of the
/// process execute a full barrier.
///
/// Under loom both are `SeqCst` fences: that is what the heavy barrier
/// guarantees the pair amounts to, and how the models check the protocol.
pub(crate) mod barrier {
    /// The owner's half: keeps the compiler from moving memory accesses
    /// across it; the CPU may, until a heavy barrier runs.
    #[inline(always)]
    pub(crate) fn light() {
        #[cfg(not(loom))]
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        #[cfg(loom)]
        loom::sync::atomic::fence(loom::sync::atomic::Ordering::SeqCst);
    }

    /// The reclaimer's half: returns `true` once every thread of the process
    /// has executed a full memory barrier since the call began, `false` when
    /// the system offers no such barrier (then nothing may rely on it).
    pub(crate) fn heavy() -> bool {
        imp::heavy()
    }

    /// Whether [`heavy`] can work here (it is tried once, on first use).
    pub(crate) fn available() -> bool {
        imp::available()
    }

    #[cfg(loom)]
    mod imp {
        pub(super) fn heavy() -> bool {
            if !cfg!(magpool_mutant = "reclaim_no_barrier") {
                loom::sync::atomic::fence(loom::sync::atomic::Ordering::SeqCst);
            }
            true
        }

        pub(super) fn available() -> bool {
            true
        }
    }

    /// Linux's `membarrier(2)`: the private expedited command (kernel 4.14),
    /// which interrupts only the CPUs running this process's threads, or
    /// else the global one (4.3), which waits for a grace period. Not under
    /// miri, which cannot make the call.
    #[cfg(all(not(loom), not(miri), target_os = "linux"))]
    mod imp {
        use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

        const CMD_GLOBAL: libc::c_int = 1;
        const CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
        const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

        /// 0 untried, 1 private expedited, 2 global, 3 none.
        static MODE: AtomicU8 = AtomicU8::new(0);

        fn membarrier(cmd: libc::c_int) -> bool {
            // SAFETY: membarrier takes no pointers and has no effect on memory
            // but ordering; an unsupported command returns -1 (EINVAL, ENOSYS).
            unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) == 0 }
        }

        fn mode() -> u8 {
            match MODE.load(Relaxed) {
                0 => {
                    let mode = if membarrier(CMD_REGISTER_PRIVATE_EXPEDITED) {
                        1
                    } else if membarrier(CMD_GLOBAL) {
                        2
                    } else {
                        3
                    };
                    MODE.store(mode, Relaxed);
                    mode
                }
                mode => mode,
            }
        }

        pub(super) fn heavy() -> bool {
            match mode() {
                1 => membarrier(CMD_PRIVATE_EXPEDITED),
                2 => membarrier(CMD_GLOBAL),
                _ => false,
            }
        }

        pub(super) fn available() -> bool {
            mode() != 3
        }
    }

    /// Elsewhere no heavy barrier is used: idle threads keep their caches.
    #[cfg(all(not(loom), any(miri, not(target_os = "linux"))))]
    mod imp {
        pub(super) fn heavy() -> bool {
            false
        }

        pub(super) fn available() -> bool {
            false
        }
    }
}

/// Lets another thread run (a wait for a reclaimer to hand a slot back).
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
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
