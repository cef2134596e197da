//! The hot path: one thread, get(len) → write 64 bytes → drop, at 512 B, 4 KiB,
//! 64 KiB and 1 MiB, with `vec![0; len]` beside it in the same group.
//!
//! Run: `cargo bench --bench hot`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SIZES: [usize; 4] = [512, 4 << 10, 64 << 10, 1 << 20];

fn touch(buf: &mut [u8]) {
    buf[..64].fill(0x5a);
    black_box(buf);
}

fn hot(c: &mut Criterion) {
    let mut group = c.benchmark_group("hot");
    let pool = magpool::Pool::new();
    for len in SIZES {
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("magpool", len), &len, |b, &len| {
            b.iter(|| touch(&mut pool.get(black_box(len))))
        });
        group.bench_with_input(BenchmarkId::new("vec", len), &len, |b, &len| {
            b.iter(|| touch(&mut vec![0u8; black_box(len)]))
        });
    }
    group.finish();
}

fn writer(c: &mut Criterion) {
    let mut group = c.benchmark_group("writer");
    let pool = magpool::Pool::new();
    let record = [0x5au8; 64];
    for len in SIZES {
        group.bench_with_input(BenchmarkId::new("magpool", len), &len, |b, &len| {
            b.iter(|| {
                let mut buf = pool.with_capacity(black_box(len));
                buf.extend_from_slice(&record);
                black_box(&buf);
            })
        });
        group.bench_with_input(BenchmarkId::new("vec", len), &len, |b, &len| {
            b.iter(|| {
                let mut buf = Vec::with_capacity(black_box(len));
                buf.extend_from_slice(&record);
                black_box(&buf);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, hot, writer);
criterion_main!(benches);
