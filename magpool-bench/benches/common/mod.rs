//! What the bench binaries share: one criterion group per workload group,
//! with every implementation of it that runs on this binary's global
//! allocator.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use magpool_bench::child::Global;
use magpool_bench::with_bench;
use magpool_bench::workloads::Workload;

/// One group: every implementation (on `global`) on every workload whose
/// group is `name`. A group on another global allocator than the system's is
/// named `name@allocator`, so its summary does not overwrite the first.
pub(crate) fn group(c: &mut Criterion, name: &str, global: Global) {
    let workloads: Vec<Workload> = Workload::all().into_iter().filter(|w| w.group() == name).collect();
    let group_name = match global {
        Global::System => name.to_string(),
        other => format!("{name}@{}", other.binary().trim_start_matches("magpool-bench-")),
    };
    let mut group = c.benchmark_group(group_name);
    // Many implementations × 25 workloads: keep a full run near ten minutes.
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    for &w in &workloads {
        for &imp in w.impls().iter().filter(|&&imp| Global::of(imp) == global) {
            group.throughput(Throughput::Elements(w.ops_per_iter()));
            with_bench(imp, w, &mut |b| {
                group.bench_function(BenchmarkId::new(imp, w.param()), |bencher| bencher.iter_custom(|n| b.run(n)));
            });
        }
    }
    group.finish();
}
