//! The freeze group (issue 16) with mimalloc as the global allocator, which
//! `BytesMut` allocates through (and magpool's owner box): criterion group
//! `freeze@mimalloc`, implementations `magpool-mimalloc` and `bytesmut-mimalloc`. The
//! system allocator's are in `benches/peers.rs`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use magpool_bench::child::Global;
use magpool_bench::count::CountingAlloc;

#[global_allocator]
static GLOBAL: CountingAlloc<mimalloc::MiMalloc> = CountingAlloc(mimalloc::MiMalloc);

fn freeze(c: &mut Criterion) {
    common::group(c, "freeze", Global::Mimalloc);
}

criterion_group!(benches, freeze);
criterion_main!(benches);
