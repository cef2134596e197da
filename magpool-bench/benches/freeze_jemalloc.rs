//! The freeze group (issue 16) with jemalloc as the global allocator, which
//! `BytesMut` allocates through (and magpool's owner box): criterion group
//! `freeze@jemalloc`, implementations `magpool-jemalloc` and `bytesmut-jemalloc`. The
//! system allocator's are in `benches/peers.rs`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use magpool_bench::child::Global;
use magpool_bench::count::CountingAlloc;

#[global_allocator]
static GLOBAL: CountingAlloc<tikv_jemallocator::Jemalloc> = CountingAlloc(tikv_jemallocator::Jemalloc);

fn freeze(c: &mut Criterion) {
    common::group(c, "freeze", Global::Jemalloc);
}

criterion_group!(benches, freeze);
criterion_main!(benches);
