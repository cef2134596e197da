//! A tour of magpool: buffers from the calling thread's cache, a record
//! encoder that grows its buffer, cross-thread release, and the counters.
//!
//! Run: `cargo run --release --example demo`

use std::io::Write;
use std::sync::mpsc;
use std::time::Instant;

fn main() {
    let pool = magpool::Pool::new();

    // 1. The hot path: after the first get, the same thread reuses its cache.
    let rounds = 1_000_000;
    let start = Instant::now();
    for i in 0..rounds {
        let mut buf = pool.get(4096);
        buf[0] = i as u8;
    }
    let per_op = start.elapsed().as_nanos() as f64 / rounds as f64;
    println!("get(4096) + drop: {per_op:.1} ns per buffer ({rounds} rounds)");

    // 2. An encoder that does not know its final size: start small, append.
    let mut record = pool.with_capacity(512);
    for field in 0..100 {
        write!(record, "field{field}=value{field};").expect("a Buf grows instead of failing");
    }
    println!("encoded a {}-byte record; the buffer grew into the {}-byte class", record.len(), record.capacity());
    drop(record);

    // 3. Cross-thread release: get here, drop there.
    let (tx, rx) = mpsc::sync_channel(64);
    std::thread::scope(|s| {
        s.spawn(|| {
            for buf in rx {
                drop(buf); // goes to this thread's cache, then the depot
            }
        });
        for i in 0..100_000u32 {
            let mut buf = pool.get(1024);
            buf[..4].copy_from_slice(&i.to_le_bytes());
            tx.send(buf).expect("the consumer runs until the channel closes");
        }
        drop(tx);
    });

    // 4. What the pool did.
    let stats = pool.stats();
    println!(
        "gets {}  puts {}  in use {}  allocations {}  discarded {}  retained {} KiB  oversized {}",
        stats.gets,
        stats.puts,
        stats.in_use,
        stats.allocations,
        stats.discarded,
        stats.retained_bytes / 1024,
        stats.oversized
    );
    for class in stats.classes.iter().filter(|c| c.gets > 0) {
        println!(
            "  class {:>8} B: gets {:>8}  allocations {:>4}  refills {:>5}  spills {:>5}",
            class.size, class.gets, class.allocations, class.refills, class.spills
        );
    }
}
