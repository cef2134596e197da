//! `max_retained_bytes` holds under a producer → consumer stream: buffers got
//! on one thread and dropped on another pile up in the consumer's cache only
//! up to its two magazines, spill to the depot only up to the limit, and flow
//! back to the producer from there.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::Duration;

use magpool::{Buf, Pool, Stats};

const SIZE: usize = 4096;
/// Buffers per magazine in the 4 KiB class (`Builder::magazine_capacity`:
/// 32 by default, and 32 × 4 KiB is within the 1 MiB magazine budget).
const MAGAZINE: usize = 32;
/// Bound of the channel between the threads.
const CHANNEL: usize = 64;
/// What one thread may cache of one class: two magazines.
const PER_THREAD: usize = 2 * MAGAZINE * SIZE;

/// What the stream leaves behind.
struct Run {
    /// Stats with both threads done but alive, their caches intact.
    at_rest: Stats,
    /// Stats after both threads exited.
    after_exit: Stats,
    /// The most the depot held in any sample taken during the run.
    max_depot: u64,
}

/// Streams `n` buffers of 4 KiB from a producer thread to a consumer thread
/// through a bounded channel, through a pool whose depot keeps `limit` bytes;
/// samples the depot from this thread all along: never above the limit.
fn stream(limit: usize) -> Run {
    // Under miri each 4 KiB memset is slow: 300 still overflows the channel
    // and both magazines many times over.
    let n: u64 = if cfg!(miri) { 300 } else { 1_000_000 };
    let pool = Pool::builder().max_retained_bytes(limit).build().unwrap();
    let pool = &pool;
    let done = &AtomicBool::new(false);
    let (tx, rx) = mpsc::sync_channel::<Buf<'_>>(CHANNEL);
    let (quiet_tx, quiet_rx) = mpsc::channel::<()>();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let (at_rest, max_depot) = std::thread::scope(|scope| {
        let producer = scope.spawn({
            let (quiet_tx, exit_rx) = (quiet_tx.clone(), exit_rx);
            move || {
                for i in 0..n {
                    let mut buf = pool.get(SIZE);
                    buf[..8].copy_from_slice(&i.to_le_bytes());
                    tx.send(buf).unwrap();
                }
                drop(tx);
                quiet_tx.send(()).unwrap();
                let _ = exit_rx.recv();
            }
        });
        let consumer = scope.spawn(move || {
            let mut next = 0u64;
            for buf in rx {
                assert_eq!(buf[..8], next.to_le_bytes(), "buffers arrive intact, in order");
                next += 1;
            }
            assert_eq!(next, n);
            done.store(true, Relaxed);
            quiet_tx.send(()).unwrap();
        });
        let (mut max_depot, mut samples) = (0, 0u64);
        while !done.load(Relaxed) {
            let depot = pool.stats().depot_bytes;
            assert!(depot <= limit as u64, "depot holds {depot} bytes, limit {limit}");
            max_depot = max_depot.max(depot);
            samples += 1;
            std::thread::sleep(Duration::from_micros(200));
        }
        assert!(samples > 0);
        // The consumer has the last buffer, the producer waits to exit.
        quiet_rx.iter().take(2).for_each(drop);
        let at_rest = pool.stats();
        drop(exit_tx);
        consumer.join().unwrap();
        producer.join().unwrap();
        (at_rest, max_depot)
    });
    let run = Run { at_rest, after_exit: pool.stats(), max_depot };
    check(&run, n, limit);
    run
}

/// What holds whatever the limit.
fn check(run: &Run, n: u64, limit: usize) {
    let s = &run.at_rest;
    assert_eq!((s.gets, s.puts, s.in_use), (n, n, 0), "{s:?}");
    assert!(s.depot_bytes <= limit as u64, "{s:?}");
    assert!(s.retained_bytes <= (limit + 2 * PER_THREAD) as u64, "at most limit + two threads' caches: {s:?}");
    // Nothing piles up, on the consumer's side or anywhere: the buffers alive
    // are at most those the depot, the two caches and the channel hold (and
    // one in each thread's hands), whatever the length of the stream.
    let alive = s.allocations - s.discarded;
    let bound = ((limit + 2 * PER_THREAD) / SIZE + CHANNEL + 2) as u64;
    assert!(alive <= bound, "{alive} buffers alive, bound {bound}: {s:?}");
    // Once both threads have exited, their caches have gone to the depot,
    // within the limit: all the pool retains is there.
    let s = &run.after_exit;
    assert_eq!(s.retained_bytes, s.depot_bytes, "{s:?}");
    assert!(s.depot_bytes <= limit as u64, "{s:?}");
}

/// A depot limit of two magazines, less than the stream keeps in flight: the
/// depot fills to the limit and no further, and the consumer frees what does
/// not fit rather than keeping it.
#[test]
fn tight_limit() {
    let limit = 2 * MAGAZINE * SIZE;
    let run = stream(limit);
    let s = &run.at_rest;
    if !cfg!(miri) {
        assert_eq!(run.max_depot, limit as u64, "the depot reached its limit");
        assert!(s.discarded > 0, "the limit freed buffers: {s:?}");
    }
}

/// A roomy limit: after the first magazines, the stream runs on the same
/// buffers, handed back from consumer to producer through the depot. It
/// needs no more than the channel and two caches hold, and frees nothing.
#[test]
fn roomy_limit() {
    let run = stream(1 << 20);
    let s = &run.at_rest;
    assert_eq!(s.discarded, 0, "{s:?}");
    // When the producer allocates, its cache and the depot are empty: every
    // other buffer is in the channel, in the consumer's two magazines or in
    // the consumer's hands. (The bound is exact: runs reach it.)
    let most = (CHANNEL + 2 * MAGAZINE + 2) as u64;
    assert!(s.allocations <= most, "{} allocations for a stream, at most {most}: {s:?}", s.allocations);
}
