//! Issue 19's thread-exit workload: what a thread's whole life costs when it
//! uses a pool briefly, the way a short-lived worker or a connection thread
//! does. One op: a thread spawned; in it, [`HELD`] buffers of each of
//! [`SIZES`] got, written (64 bytes each) and released; the thread exits
//! (a pool flushes its cache, an allocator tears down its thread state); the
//! spawner joins it.
//!
//! | implementation | what the thread's exit does |
//! |---|---|
//! | `magpool` | its thread cache goes to the depot (default pool) |
//! | `magpool-uncached` | nothing to flush: `thread_cache_bytes(0)`, every get and release trades with the depot |
//! | `vec` | glibc's thread arena goes back on the free list |
//! | `jemalloc`, `mimalloc` | their thread caches are flushed (called directly, so the thread's other allocations stay on glibc) |

use std::hint::black_box;
use std::thread;
use std::time::Duration;
#[cfg(not(target_os = "linux"))]
use std::time::Instant;

use crate::workloads::{touch, TOUCH};
use crate::{count, Impl};

/// The lengths (one per class) a new thread gets.
pub const SIZES: [usize; 3] = [512, 4 << 10, 64 << 10];
/// Buffers of each length a thread holds at once before releasing them.
pub const HELD: usize = 4;
/// The implementations: magpool beside a pool whose threads cache nothing,
/// and the allocators, whose own thread state is set up and torn down too.
pub const IMPLS: [&str; 5] = ["magpool", "magpool-uncached", "vec", "jemalloc", "mimalloc"];

/// One thread's life: spawned, [`HELD`] buffers got, written and
/// released in each class of [`SIZES`], exited and joined. What a
/// thread's exit costs (its cache's flush, the allocator's own thread state)
/// is inside the op.
///
/// Timed in the process's CPU time (all threads, on Linux), not wall time:
/// a spawn and a join each wait for the scheduler, which on a loaded machine
/// takes milliseconds that belong to nobody's implementation.
pub fn run<I: Impl>(imp: &I, iters: u64) -> Duration {
    count::begin();
    let start = cpu_time();
    for _ in 0..iters {
        thread::scope(|s| {
            s.spawn(|| {
                for len in SIZES {
                    let held: [I::Buf<'_>; HELD] = std::array::from_fn(|_| {
                        let mut b = imp.get(black_box(len));
                        touch(&mut b, TOUCH);
                        b
                    });
                    drop(black_box(held));
                }
            });
        });
    }
    let t = cpu_time().saturating_sub(start);
    count::end();
    t
}

/// CPU time used by this process so far, every thread's (live or exited).
#[cfg(target_os = "linux")]
fn cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable `timespec`, and Linux supports
    // CLOCK_PROCESS_CPUTIME_ID (since 2.6.12).
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID): {}", std::io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall time since the first call, where the process's CPU time is not read.
#[cfg(not(target_os = "linux"))]
fn cpu_time() -> Duration {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed()
}
