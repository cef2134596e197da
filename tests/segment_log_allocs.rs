//! The segment_log example's claim, checked: the same workload makes far
//! fewer calls into the global allocator per record with magpool buffers
//! than with `Vec<u8>`. Counted, not timed, with the example's own counting
//! allocator and workload (included by path). Alone in its test binary, so
//! no other test's allocations can mix in.
#![cfg(unix)]

// Each module is the example's own file; the example uses parts of them
// that this test does not.
#[allow(dead_code)]
#[path = "../examples/segment_log/bufs.rs"]
mod bufs;
#[allow(dead_code)]
#[path = "../examples/segment_log/codec.rs"]
mod codec;
#[allow(dead_code)]
#[path = "../examples/segment_log/counting.rs"]
mod counting;
#[allow(dead_code)]
#[path = "../examples/segment_log/index.rs"]
mod index;
#[allow(dead_code)]
#[path = "../examples/segment_log/reader.rs"]
mod reader;
#[allow(dead_code)]
#[path = "../examples/segment_log/records.rs"]
mod records;
#[allow(dead_code)]
#[path = "../examples/segment_log/segment.rs"]
mod segment;
#[allow(dead_code)]
#[path = "../examples/segment_log/workload.rs"]
mod workload;

use indicatif::ProgressBar;

use bufs::{Buffers, Heap};
use records::SizeMix;
use segment::{Fsync, LogConfig};
use workload::RunConfig;

/// Runs the example's workload (its default shape, fewer records, no
/// fsync) with `bufs`; returns allocator calls per record.
fn calls_per_record<S: Buffers>(bufs: &S, records: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RunConfig {
        records,
        producers: 2,
        mix: SizeMix::parse(records::DEFAULT_MIX).unwrap(),
        seed: 7,
        dir: dir.path().join("log"),
        log: LogConfig { segment_bytes: 4 << 20, index_interval: 4096, fsync: Fsync::Never },
        batch_bytes: 256 << 10,
        channel: 256,
        record_hint: 1024,
    };
    let before = counting::calls();
    let run = workload::run(bufs, &cfg, &ProgressBar::hidden()).unwrap();
    let calls = counting::calls() - before;
    assert_eq!(run.records, records);
    calls as f64 / records as f64
}

#[test]
fn magpool_makes_far_fewer_allocator_calls_per_record() {
    let records = 50_000;
    let pool = bufs::example_pool();
    let pooled = calls_per_record(&pool, records);
    let vec = calls_per_record(&Heap, records);
    println!("allocator calls per record: magpool {pooled:.3}, Vec<u8> {vec:.3}, ratio {:.1}x", vec / pooled);
    assert!(vec >= 2.0, "each Vec record is at least one allocation and one free: {vec:.3}");
    assert!(vec >= 10.0 * pooled, "magpool {pooled:.3} vs Vec {vec:.3} calls per record: want at least 10x fewer");
}
