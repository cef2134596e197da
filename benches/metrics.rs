//! The hot path with metrics registered beside the same path without, in one
//! group: get(4096) → write 64 bytes → drop, and with_capacity(4096) → append
//! 64 bytes → drop.
//!
//! All sides use one pool: `without`, then `registered` (after
//! `register_metrics` and a scrape), then `without_again` (after the registry
//! is dropped). One pool means the same blocks, thread slot and memory layout
//! on every side: with two separate pools, layout alone moved `get_4096` by
//! about 10% (in either direction), which would drown what is measured here.
//! The last side shows the drift of a long run on a shared machine:
//! `registered` should match its neighbours within that noise, since the
//! collector reads the pool's counters at scrape time only.
//!
//! Run: `cargo bench --bench metrics`.

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use magpool::Pool;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

fn hot_path(group: &mut BenchmarkGroup<'_, WallTime>, pool: &Pool, side: &str) {
    let record = [0x5au8; 64];
    group.bench_function(BenchmarkId::new("get_4096", side), |b| {
        b.iter(|| {
            let mut buf = pool.get(black_box(4096));
            buf[..64].copy_from_slice(&record);
            black_box(&buf);
        })
    });
    group.bench_function(BenchmarkId::new("with_capacity_4096", side), |b| {
        b.iter(|| {
            let mut buf = pool.with_capacity(black_box(4096));
            buf.extend_from_slice(&record);
            black_box(&buf);
        })
    });
}

fn scrape(registry: &Registry) -> String {
    let mut text = String::new();
    encode(&mut text, registry).expect("encoding into a String cannot fail");
    text
}

fn metrics(c: &mut Criterion) {
    let pool = Pool::new();
    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(1));
    hot_path(&mut group, &pool, "without");

    let mut registry = Registry::default();
    pool.register_metrics(&mut registry);
    scrape(&registry); // the collector has run once, as under a live Prometheus
    hot_path(&mut group, &pool, "registered");
    assert!(scrape(&registry).contains("magpool_buffer_gets_total{class=\"4096\"}"), "the collector saw the work");

    drop(registry);
    hot_path(&mut group, &pool, "without_again");
    group.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
