//! magpool beside its peers (issue 7): one criterion group per workload —
//! `hot`, `full_write`, `writer`, `mixed`, `parallel`, `producer_consumer`,
//! `burst` — each holding every implementation of `magpool_bench::Impl` under
//! `BenchmarkId::new(implementation, parameter)`, so a group's chart compares
//! like with like. The workloads themselves live in `magpool-bench`
//! (`workloads.rs`), shared with the bench report; every one runs through
//! `iter_custom` and times only its own timed section (multi-thread ones
//! between barriers that every thread passes).
//!
//! Run: `cargo bench -p magpool-bench` (all), `cargo bench -p magpool-bench --
//! hot/` (one group), `cargo bench -p magpool-bench -- --test` (each once).
//! Throughput is in ops (get + release) per second, all threads together.
//! For the side-by-side report with ratios, RSS and latency percentiles, run
//! `cargo run --release -p magpool-bench -- --quick`.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use magpool_bench::workloads::{run, Workload};
use magpool_bench::{for_each_impl, Impl, Visitor};

/// Adds every workload of one group, for the implementation visited.
struct AddTo<'g, 'c> {
    group: &'g mut BenchmarkGroup<'c, WallTime>,
    workloads: &'g [Workload],
}

impl Visitor for AddTo<'_, '_> {
    fn visit<I: Impl>(&mut self, imp: &I) {
        for &w in self.workloads {
            self.group.throughput(Throughput::Elements(w.ops_per_iter()));
            self.group
                .bench_function(BenchmarkId::new(imp.name(), w.param()), |b| b.iter_custom(|iters| run(imp, w, iters)));
        }
    }
}

/// One group: every implementation on every workload whose group is `name`.
fn group(c: &mut Criterion, name: &str) {
    let workloads: Vec<Workload> = Workload::all().into_iter().filter(|w| w.group() == name).collect();
    let mut group = c.benchmark_group(name);
    // 9 implementations × 18 workloads: keep a full run near ten minutes.
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    for_each_impl(&mut AddTo { group: &mut group, workloads: &workloads });
    group.finish();
}

fn hot(c: &mut Criterion) {
    group(c, "hot");
}

fn full_write(c: &mut Criterion) {
    group(c, "full_write");
}

fn writer(c: &mut Criterion) {
    group(c, "writer");
}

fn mixed(c: &mut Criterion) {
    group(c, "mixed");
}

fn parallel(c: &mut Criterion) {
    group(c, "parallel");
}

fn producer_consumer(c: &mut Criterion) {
    group(c, "producer_consumer");
}

fn burst(c: &mut Criterion) {
    group(c, "burst");
}

criterion_group!(benches, hot, full_write, writer, mixed, parallel, producer_consumer, burst);
criterion_main!(benches);
