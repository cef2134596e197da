//! Issue 18's object-batch workload: a pooled `Vec<u64>` batch, the typed
//! object pool's home ground (record batches, request scratch space).
//!
//! One op: a batch got (empty, with room for at least [`BATCH`]), [`BATCH`]
//! `u64`s pushed, the batch read (summed) and released, keeping its
//! capacity. On one thread (`1t`), or with a producer thread that gets and
//! fills and a consumer thread that reads and releases, through a bounded
//! channel of 64 (`1to1`: every release cross-thread).
//!
//! | implementation | get | release |
//! |---|---|---|
//! | `magpool` | `ObjectPool::<Vec<u64>>::new(Clear::new(64, 4096)).get()` | drop the `Pooled`: `Vec::clear`, back to the thread's magazine |
//! | `vec` | `Vec::with_capacity(64)` (system allocator) | free |
//! | `lockfree-object-pool` | `LinearObjectPool::pull` | drop: `Vec::clear` (its reset), back to its page |
//! | `object-pool` | `Pool::pull` | `Vec::clear`, then drop: back into its `Mutex<Vec>` |
//! | `sharded-slab` | `Pool::create_with` (a slot's `Vec`, reserved to 64 when new) | `Pool::clear(key)` (its `Clear` for `Vec`) |
//!
//! Each pool is unbounded but magpool (which keeps at most 4096 batches in
//! its depot and 256 per thread by default); none drops a batch here.

use std::hint::black_box;
use std::thread;
use std::time::Duration;

use lockfree_object_pool::{LinearObjectPool, LinearReusable};
use magpool::{Clear, ObjectPool, Pooled};

use crate::workloads::{single, start_clock, stop_clock};
use crate::Bench;

/// Elements pushed into each batch, and the capacity a new one is made with.
pub const BATCH: usize = 64;
/// Threads of the two shapes: one, and a producer with a consumer.
pub const THREADS: [usize; 2] = [1, 2];
/// The implementations, in table order.
pub const IMPLS: [&str; 5] = ["magpool", "vec", "lockfree-object-pool", "object-pool", "sharded-slab"];
/// Capacity of the producer→consumer channel.
const CHANNEL: usize = 64;

/// A source of batches.
pub trait Batches: Sync {
    /// A filled batch, as it travels from the producer to the consumer.
    type Batch<'a>: Send
    where
        Self: 'a;

    /// Gets a batch and pushes [`BATCH`] elements into it.
    fn fill(&self) -> Self::Batch<'_>;

    /// Reads `batch` (its sum) and releases it.
    fn consume(&self, batch: Self::Batch<'_>) -> u64;
}

/// The elements every batch gets: 0, 1, …, 63.
const ELEMENTS: [u64; BATCH] = {
    let mut e = [0; BATCH];
    let mut i = 0;
    while i < BATCH {
        e[i] = i as u64;
        i += 1;
    }
    e
};

/// Pushes the batch's elements, in one `extend_from_slice` (a copy of 512
/// bytes: the pool's own cost stays visible beside it).
#[inline(always)]
fn push_batch(v: &mut Vec<u64>) {
    v.extend_from_slice(black_box(&ELEMENTS));
}

#[inline(always)]
fn sum(v: &[u64]) -> u64 {
    v.iter().sum()
}

// === the implementations ===

/// `Debug` for a wrapper of a peer pool that has none.
macro_rules! opaque_debug {
    ($($t:ident),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)).finish_non_exhaustive()
            }
        }
    )*};
}

opaque_debug!(LockfreeBatches, ObjectPoolBatches);

/// `magpool::ObjectPool<Vec<u64>>` with `Clear::new(64, 4096)`.
#[derive(Debug)]
pub struct MagpoolBatches(ObjectPool<Vec<u64>>);

impl Batches for MagpoolBatches {
    type Batch<'a> = Pooled<'a, Vec<u64>>;

    #[inline]
    fn fill(&self) -> Pooled<'_, Vec<u64>> {
        let mut b = self.0.get();
        push_batch(&mut b);
        b
    }

    #[inline]
    fn consume(&self, batch: Pooled<'_, Vec<u64>>) -> u64 {
        sum(&batch)
    }
}

/// A fresh `Vec::with_capacity` per batch, freed after use.
#[derive(Debug)]
pub struct VecBatches;

impl Batches for VecBatches {
    type Batch<'a> = Vec<u64>;

    #[inline]
    fn fill(&self) -> Vec<u64> {
        let mut v = Vec::with_capacity(BATCH);
        push_batch(&mut v);
        v
    }

    #[inline]
    fn consume(&self, batch: Vec<u64>) -> u64 {
        sum(&batch)
    }
}

/// `lockfree_object_pool::LinearObjectPool<Vec<u64>>`, reset by `Vec::clear`.
pub struct LockfreeBatches(LinearObjectPool<Vec<u64>>);

impl Batches for LockfreeBatches {
    type Batch<'a> = LinearReusable<'a, Vec<u64>>;

    #[inline]
    fn fill(&self) -> LinearReusable<'_, Vec<u64>> {
        let mut b = self.0.pull();
        push_batch(&mut b);
        b
    }

    #[inline]
    fn consume(&self, batch: LinearReusable<'_, Vec<u64>>) -> u64 {
        sum(&batch)
    }
}

/// `object_pool::Pool<Vec<u64>>`; it resets nothing, so the consumer clears.
pub struct ObjectPoolBatches(object_pool::Pool<Vec<u64>>);

impl Batches for ObjectPoolBatches {
    type Batch<'a> = object_pool::Reusable<'a, Vec<u64>>;

    #[inline]
    fn fill(&self) -> object_pool::Reusable<'_, Vec<u64>> {
        let mut b = self.0.pull(|| Vec::with_capacity(BATCH));
        push_batch(&mut b);
        b
    }

    #[inline]
    fn consume(&self, mut batch: object_pool::Reusable<'_, Vec<u64>>) -> u64 {
        let s = sum(&batch);
        batch.clear();
        s
    }
}

/// `sharded_slab::Pool<Vec<u64>>`: a batch is its slot's key.
#[derive(Debug)]
pub struct SlabBatches(sharded_slab::Pool<Vec<u64>>);

impl Batches for SlabBatches {
    type Batch<'a> = usize;

    #[inline]
    fn fill(&self) -> usize {
        let key = self.0.create_with(|v| {
            v.reserve(BATCH); // a new slot's Vec is empty: allocate once
            push_batch(v);
        });
        key.expect("sharded-slab: no free slot")
    }

    #[inline]
    fn consume(&self, key: usize) -> u64 {
        let s = self.0.get(key).map_or(0, |v| sum(&v));
        self.0.clear(key);
        s
    }
}

/// Something to do with a [`Batches`], generically.
pub trait BatchVisitor {
    /// Called with the implementation built.
    fn visit<B: Batches>(&mut self, batches: &B);
}

/// Builds implementation `name` and hands it to `v`; `false` for an unknown
/// name.
pub fn visit_batches(name: &str, v: &mut impl BatchVisitor) -> bool {
    match name {
        "magpool" => v.visit(&MagpoolBatches(ObjectPool::new(Clear::new(BATCH, 4096)))),
        "vec" => v.visit(&VecBatches),
        "lockfree-object-pool" => {
            v.visit(&LockfreeBatches(LinearObjectPool::new(|| Vec::with_capacity(BATCH), Vec::clear)))
        }
        "object-pool" => v.visit(&ObjectPoolBatches(object_pool::Pool::new(0, Vec::new))),
        "sharded-slab" => v.visit(&SlabBatches(sharded_slab::Pool::new())),
        _ => return false,
    }
    true
}

// === the workload ===

/// Runs `iters` ops on `b` with `threads` threads (1, or 2: producer and
/// consumer); the timed section's length.
pub fn run<B: Batches>(b: &B, threads: usize, iters: u64) -> Duration {
    if threads == 1 {
        single(iters, || {
            black_box(b.consume(b.fill()));
        })
    } else {
        producer_consumer(b, iters)
    }
}

/// A producer fills, a consumer reads and releases: the clock runs between
/// two barriers, after as many untimed ops as warm both threads up.
fn producer_consumer<B: Batches>(b: &B, iters: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<B::Batch<'_>>(CHANNEL);
    let barrier = std::sync::Barrier::new(3);
    let warm = iters.min(4096) + CHANNEL as u64;
    thread::scope(|s| {
        let barrier = &barrier;
        s.spawn(move || {
            (0..warm).for_each(|_| tx.send(b.fill()).expect("the consumer outlives the producer"));
            barrier.wait();
            (0..iters).for_each(|_| tx.send(b.fill()).expect("the consumer outlives the producer"));
            drop(tx);
            barrier.wait();
        });
        s.spawn(move || {
            let mut total = 0;
            for _ in 0..warm {
                total += b.consume(rx.recv().expect("the producer sends warm batches"));
            }
            barrier.wait();
            for batch in rx.iter() {
                total += b.consume(batch);
            }
            barrier.wait();
            black_box(total);
        });
        barrier.wait();
        let start = start_clock();
        barrier.wait();
        stop_clock(start)
    })
}

/// A [`Batches`] with a thread count: a [`Bench`].
struct BatchBench<'a, B> {
    batches: &'a B,
    threads: usize,
}

impl<B: Batches> Bench for BatchBench<'_, B> {
    fn run(&mut self, iters: u64) -> Duration {
        run(self.batches, self.threads, iters)
    }
}

/// Sets up implementation `imp` with `threads` threads and hands it to `f`;
/// `false` for an unknown name.
pub fn with_bench(imp: &str, threads: usize, f: &mut dyn FnMut(&mut dyn Bench)) -> bool {
    struct V<'f>(usize, &'f mut dyn FnMut(&mut dyn Bench));
    impl BatchVisitor for V<'_> {
        fn visit<B: Batches>(&mut self, batches: &B) {
            (self.1)(&mut BatchBench { batches, threads: self.0 });
        }
    }
    visit_batches(imp, &mut V(threads, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Check;
    impl BatchVisitor for Check {
        fn visit<B: Batches>(&mut self, b: &B) {
            let want = (0..BATCH as u64).sum::<u64>();
            for _ in 0..3 {
                assert_eq!(b.consume(b.fill()), want);
            }
            let held: Vec<_> = (0..10).map(|_| b.fill()).collect();
            let sums: Vec<u64> = thread::scope(|s| s.spawn(|| held.into_iter().map(|x| b.consume(x)).collect()).join())
                .expect("the consumer");
            assert!(sums.iter().all(|&s| s == want), "a batch reused while filled");
            for threads in THREADS {
                run(b, threads, 100);
            }
        }
    }

    #[test]
    fn every_impl_fills_reads_and_runs() {
        for name in IMPLS {
            assert!(visit_batches(name, &mut Check), "{name}");
        }
    }

    #[test]
    fn magpool_keeps_its_batches() {
        let b = MagpoolBatches(ObjectPool::new(Clear::new(BATCH, 4096)));
        run(&b, 1, 1000);
        assert_eq!(b.0.stats().allocations, 1, "one batch, reused");
    }
}
