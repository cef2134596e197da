//! Other code's epoch garbage may drop buffers, and it runs whenever any pin
//! of crossbeam's default collector happens to collect. A `Buf` dropped that
//! way must come back like any other release, and must never re-enter the
//! thread cache while a depot exchange holds its magazines.
//!
//! Until the depot moved to its own collector (`src/sync.rs`, `epoch`), its
//! pins were on the default collector: one of them, inside an exchange,
//! could run the user's deferred drop, which released into the magazines the
//! exchange was rearranging. The exchange then overwrote the magazine the
//! nested release had just filled. Against that code, this test fails in a
//! debug build on the thread cache's own invariant (`spare.is_empty()`); the
//! audit that found the bug saw, in its version of the test, the freed
//! buffers still counted (`retained_bytes == 64` after a trim), and miri
//! reported the aliasing `&mut`.

use magpool::Pool;

#[test]
fn deferred_drops_release_normally() {
    // One 64-byte class, one buffer per magazine: every other release or get
    // exchanges with the depot, so the depot pins constantly. Leaked: a
    // deferred function must be `'static`, and so must the `Buf` it owns.
    let pool = Pool::builder().size_classes([64]).magazine_capacity(1).max_retained_bytes(4 * 64).build().unwrap();
    let pool: &'static Pool = pool.leak();
    let rounds = if cfg!(miri) { 1_500 } else { 100_000 };
    for _ in 0..rounds {
        let (a, b, c) = (pool.get(64), pool.get(64), pool.get(64));
        // The user's deferred function: runs at some later pin of the default
        // collector, by whichever code pins.
        crossbeam_epoch::pin().defer(move || drop(a));
        drop(b);
        drop(c);
    }
    // Run every deferred drop still pending, then give everything back.
    for _ in 0..64 {
        crossbeam_epoch::pin().flush();
    }
    pool.trim();
    let s = pool.stats();
    assert_eq!(s.gets, 3 * rounds);
    assert_eq!((s.puts, s.in_use), (s.gets, 0), "every buffer came back once: {s:?}");
    assert_eq!(s.retained_bytes, 0, "trimmed, nothing is retained: {s:?}");
    assert_eq!(s.allocations, s.discarded, "every allocated buffer was freed, once: {s:?}");
}
