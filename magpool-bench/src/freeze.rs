//! Issue 16's freeze workload: a buffer filled and handed on as
//! `bytes::Bytes`, the way a server sends a reply it may also keep (a
//! retransmit queue, a cache, a fan-out).
//!
//! One op: a buffer with room for `len` bytes, 64 bytes written, frozen into
//! `Bytes`, the `Bytes` cloned, the original and the clone dropped (in that
//! order, so the last drop releases the memory).
//!
//! | implementation | the buffer | freeze | allocator calls per op |
//! |---|---|---|---|
//! | `magpool` | `Pool::with_capacity` on a leaked default pool (`Buf<'static>`) | `Buf::freeze`: `Bytes::from_owner`, no copy | 2: the owner's box and its free (the block is pooled) |
//! | `bytesmut` | `BytesMut::with_capacity` | `BytesMut::freeze`, no copy | 4: the buffer, the shared header the first clone makes, and their frees |
//!
//! Both run on the process's global allocator: the system allocator in the
//! report binary, and jemalloc or mimalloc in `magpool-bench-jemalloc` and
//! `magpool-bench-mimalloc` (implementation names ending `-jemalloc` or
//! `-mimalloc`, see [`child::Global`](crate::child::Global)). For magpool the
//! global allocator serves only the owner's box (and the pool's first
//! blocks); for `BytesMut` it serves everything.
//!
//! magpool has no `Arc`-owned pool handle: a `Buf` that outlives every scope
//! (which `Bytes` needs) comes from a `'static` pool, [`magpool::global`] or
//! [`Pool::leak`], as here.

use std::hint::black_box;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use magpool::Pool;

use crate::workloads::{single, TOUCH};
use crate::Bench;

/// Buffer capacities asked for.
pub const SIZES: [usize; 3] = [512, 4 << 10, 64 << 10];

/// The implementations, in table order: magpool and `BytesMut` on each
/// global allocator.
pub const IMPLS: [&str; 6] =
    ["magpool", "bytesmut", "magpool-jemalloc", "bytesmut-jemalloc", "magpool-mimalloc", "bytesmut-mimalloc"];

/// What each op writes.
const PAYLOAD: [u8; TOUCH] = [0x5a; TOUCH];

/// A source of frozen buffers.
#[derive(Debug, Clone, Copy)]
pub enum Freezer {
    /// A leaked default magpool pool: `Buf<'static>::freeze`.
    Magpool(&'static Pool),
    /// `BytesMut` on the global allocator.
    BytesMut,
}

impl Freezer {
    /// The freezer of implementation `imp` (one of [`IMPLS`]): the same code
    /// whatever the global allocator, which the binary chooses.
    pub fn new(imp: &str) -> Option<Freezer> {
        match imp.split('-').next() {
            Some("magpool") => Some(Freezer::Magpool(Pool::new().leak())),
            Some("bytesmut") => Some(Freezer::BytesMut),
            _ => None,
        }
    }

    /// Runs `iters` ops with buffers of `len`; the timed section's length.
    pub fn run(self, len: usize, iters: u64) -> Duration {
        match self {
            Freezer::Magpool(pool) => single(iters, || {
                let mut buf = pool.with_capacity(black_box(len));
                buf.put_slice(&PAYLOAD);
                hand_on(buf.freeze());
            }),
            Freezer::BytesMut => single(iters, || {
                let mut buf = BytesMut::with_capacity(black_box(len));
                buf.put_slice(&PAYLOAD);
                hand_on(buf.freeze());
            }),
        }
    }
}

/// Clones `bytes`, then drops the original and the clone.
#[inline(always)]
fn hand_on(bytes: bytes::Bytes) {
    let kept = black_box(bytes.clone());
    drop(black_box(bytes));
    drop(kept);
}

/// A [`Freezer`] at one length: a [`Bench`].
#[derive(Debug)]
struct FreezeBench {
    freezer: Freezer,
    len: usize,
}

impl Bench for FreezeBench {
    fn run(&mut self, iters: u64) -> Duration {
        self.freezer.run(self.len, iters)
    }
}

/// Sets up `imp` for buffers of `len` and hands it to `f`; `false` for an
/// unknown name.
pub fn with_bench(imp: &str, len: usize, f: &mut dyn FnMut(&mut dyn Bench)) -> bool {
    match Freezer::new(imp).filter(|_| IMPLS.contains(&imp)) {
        Some(freezer) => {
            f(&mut FreezeBench { freezer, len });
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_freeze_what_was_written() {
        let pool = Pool::new().leak();
        let mut buf = pool.with_capacity(512);
        buf.put_slice(&PAYLOAD);
        let a = buf.freeze();
        let mut b = BytesMut::with_capacity(512);
        b.put_slice(&PAYLOAD);
        assert_eq!(a, b.freeze());
        assert_eq!(pool.stats().in_use, 1);
        drop(a);
        assert_eq!(pool.stats().in_use, 0, "the last drop released the block");
    }

    #[test]
    fn every_impl_runs() {
        for imp in IMPLS {
            let mut ran = false;
            assert!(with_bench(imp, 4096, &mut |b| ran = b.run(3) > Duration::ZERO), "{imp}");
            assert!(ran);
        }
        assert!(!with_bench("vec", 4096, &mut |_| ()));
    }
}
