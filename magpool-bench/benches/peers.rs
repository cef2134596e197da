//! magpool beside its peers (issues 7, 16, 18 and 19): one criterion group
//! per workload — `hot`, `full_write`, `writer`, `mixed`, `parallel`,
//! `producer_consumer`, `burst`, `freeze`, `object_batch`, `thread_exit`,
//! `burst_idle` — each holding every implementation of that workload under
//! `BenchmarkId::new(implementation, parameter)`, so a group's chart
//! compares like with like. The workloads themselves live in `magpool-bench`
//! (`workloads.rs` and its siblings), shared with the bench report; every
//! one runs through `iter_custom` and times only its own timed section
//! (multi-thread ones between barriers that every thread passes).
//!
//! This binary's global allocator is the system allocator, so `freeze` here
//! has magpool and `bytesmut` on it; `benches/freeze_jemalloc.rs` and
//! `benches/freeze_mimalloc.rs` run the same group with jemalloc and mimalloc
//! as the global allocator. `thread_exit` times the process's CPU time, as
//! in the report. `burst_idle` is memory over time in the report; here it
//! times the CPU side: a 64 MiB burst released and two `reclaim_idle` calls.
//!
//! Run: `cargo bench -p magpool-bench` (all), `cargo bench -p magpool-bench --
//! hot/` (one group), `cargo bench -p magpool-bench -- --test` (each once).
//! Throughput is in ops (get + release) per second, all threads together.
//! For the side-by-side report with ratios, RSS and latency percentiles, run
//! `cargo run --release -p magpool-bench -- --quick`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use magpool_bench::child::Global;
use magpool_bench::peers::{Magpool, SystemVec};
use magpool_bench::{idle, Impl};

fn hot(c: &mut Criterion) {
    common::group(c, "hot", Global::System);
}

fn full_write(c: &mut Criterion) {
    common::group(c, "full_write", Global::System);
}

fn writer(c: &mut Criterion) {
    common::group(c, "writer", Global::System);
}

fn mixed(c: &mut Criterion) {
    common::group(c, "mixed", Global::System);
}

fn parallel(c: &mut Criterion) {
    common::group(c, "parallel", Global::System);
}

fn producer_consumer(c: &mut Criterion) {
    common::group(c, "producer_consumer", Global::System);
}

fn burst(c: &mut Criterion) {
    common::group(c, "burst", Global::System);
}

fn freeze(c: &mut Criterion) {
    common::group(c, "freeze", Global::System);
}

fn object_batch(c: &mut Criterion) {
    common::group(c, "object_batch", Global::System);
}

fn thread_exit(c: &mut Criterion) {
    common::group(c, "thread_exit", Global::System);
}

/// The CPU side of burst→idle: [`idle::give_back`] of 1024 buffers of 64 KiB.
fn burst_idle(c: &mut Criterion) {
    const BURST: (usize, usize) = (1024, 64 << 10);
    let mut group = c.benchmark_group("burst_idle");
    group.sample_size(10);
    fn add<I: Impl>(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, imp: &I) {
        let id = criterion::BenchmarkId::new(imp.name(), "release+2reclaims/64MiB");
        group.bench_function(id, |b| b.iter_custom(|iters| idle::give_back(imp, BURST, iters)));
    }
    add(&mut group, &Magpool::new());
    add(&mut group, &SystemVec);
    group.finish();
}

criterion_group!(
    benches,
    hot,
    full_write,
    writer,
    mixed,
    parallel,
    producer_consumer,
    burst,
    freeze,
    object_batch,
    thread_exit,
    burst_idle
);
criterion_main!(benches);
