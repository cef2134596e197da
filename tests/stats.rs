//! `Pool::stats` after known single-thread workloads: every counter has the
//! value the magazine design predicts, and the documented identities hold.

mod common;

use magpool::{Buf, ClassStats, Pool, Stats, DEFAULT_SIZE_CLASSES};

use common::XorShift;

/// `(allocations, gets, puts, in_use, discarded, retained_bytes)` of a class.
fn counts(c: &ClassStats) -> (u64, u64, u64, u64, u64, u64) {
    (c.allocations, c.gets, c.puts, c.in_use, c.discarded, c.retained_bytes)
}

/// The same six counters for the whole pool.
fn totals(s: &Stats) -> (u64, u64, u64, u64, u64, u64) {
    (s.allocations, s.gets, s.puts, s.in_use, s.discarded, s.retained_bytes)
}

/// `(refills, spills, depot full magazines, depot empty magazines, trimmed)`.
fn traffic(c: &ClassStats) -> (u64, u64, u64, u64, u64) {
    (c.refills, c.spills, c.depot_full_magazines, c.depot_empty_magazines, c.trimmed)
}

/// The identities `Stats` documents, checked on a quiescent pool.
fn check_identities(s: &Stats) {
    for c in s.classes.iter().chain([&s.oversized_class]) {
        assert_eq!(c.in_use, c.gets - c.puts, "{c:?}");
        let held = c.allocations - c.discarded - c.in_use;
        assert_eq!(c.retained_bytes, held * c.size as u64, "{c:?}");
        assert!(c.trimmed <= c.discarded, "{c:?}");
    }
    let all = || s.classes.iter().chain([&s.oversized_class]);
    assert_eq!(s.allocations, all().map(|c| c.allocations).sum::<u64>());
    assert_eq!(s.gets, all().map(|c| c.gets).sum::<u64>());
    assert_eq!(s.puts, all().map(|c| c.puts).sum::<u64>());
    assert_eq!(s.in_use, s.gets - s.puts);
    assert_eq!(s.discarded, all().map(|c| c.discarded).sum::<u64>());
    assert_eq!(s.retained_bytes, s.classes.iter().map(|c| c.retained_bytes).sum::<u64>());
    assert_eq!(s.oversized, s.oversized_class.gets);
    assert_eq!(s.oversized_class.retained_bytes, 0, "oversized buffers are never kept");
    assert!(s.depot_bytes <= s.retained_bytes);
}

/// Two classes, two buffers per magazine, a depot that holds one full
/// magazine of the small class: every counter, step by step.
#[test]
fn counters() {
    let pool =
        Pool::builder().size_classes([1024, 8192]).magazine_capacity(2).max_retained_bytes(2048).build().unwrap();
    let small: Vec<Buf<'_>> = (0..5).map(|_| pool.get(1000)).collect();
    let (medium, big, empty) = (pool.get(5000), pool.get(10_000), pool.get(0));
    let s = pool.stats();
    assert_eq!(totals(&s), (7, 7, 0, 7, 0, 0), "the empty buffer is not counted");
    assert_eq!(counts(&s.classes[0]), (5, 5, 0, 5, 0, 0));
    assert_eq!(counts(&s.classes[1]), (1, 1, 0, 1, 0, 0));
    assert_eq!(counts(&s.oversized_class), (1, 1, 0, 1, 0, 0));
    assert_eq!((s.oversized, s.depot_bytes), (1, 0));
    check_identities(&s);

    // Five small releases fill two magazines and spill one, two buffers of
    // 1 KiB, to the depot: exactly its limit.
    drop((small, medium, big, empty));
    let s = pool.stats();
    assert_eq!(totals(&s), (7, 7, 7, 0, 1, 5 * 1024 + 8192), "the oversized buffer is freed");
    assert_eq!(counts(&s.classes[0]), (5, 5, 5, 0, 0, 5 * 1024));
    assert_eq!(traffic(&s.classes[0]), (0, 1, 1, 0, 0));
    assert_eq!(counts(&s.classes[1]), (1, 1, 1, 0, 0, 8192));
    assert_eq!(counts(&s.oversized_class), (1, 1, 1, 0, 1, 0));
    assert_eq!(s.depot_bytes, 2048);
    check_identities(&s);

    // Four gets: three from the thread's magazines, the fourth refills from
    // the depot; the thread keeps the magazine it emptied as its spare.
    let small: Vec<Buf<'_>> = (0..4).map(|_| pool.get(1000)).collect();
    let s = pool.stats();
    assert_eq!(counts(&s.classes[0]), (5, 9, 5, 4, 0, 1024), "no new allocation");
    assert_eq!(traffic(&s.classes[0]), (1, 1, 0, 0, 0));
    assert_eq!(s.depot_bytes, 0);
    check_identities(&s);

    // Four releases: the swap, then another spill, which fills the spare.
    drop(small);
    let s = pool.stats();
    assert_eq!(counts(&s.classes[0]), (5, 9, 9, 0, 0, 5 * 1024));
    assert_eq!(traffic(&s.classes[0]), (1, 2, 1, 0, 0));
    assert_eq!(s.depot_bytes, 2048);
    check_identities(&s);

    // Trim frees the three small and one medium buffer in the cache and the
    // two in the depot.
    pool.trim();
    let s = pool.stats();
    assert_eq!(totals(&s), (7, 11, 11, 0, 7, 0));
    assert_eq!(counts(&s.classes[0]), (5, 9, 9, 0, 5, 0));
    assert_eq!(traffic(&s.classes[0]), (1, 2, 0, 0, 5));
    assert_eq!(counts(&s.classes[1]), (1, 1, 1, 0, 1, 0));
    assert_eq!(s.classes[1].trimmed, 1);
    assert_eq!(s.oversized_class.trimmed, 0);
    assert_eq!(s.depot_bytes, 0);
    check_identities(&s);

    drop(pool.get(1));
    assert_eq!(counts(&pool.stats().classes[0]), (6, 10, 10, 0, 5, 1024), "after trim, a get allocates");
}

/// A depot that keeps nothing: the thread keeps its two one-buffer
/// magazines and every further release frees a buffer.
#[test]
fn limit_discards() {
    let pool = Pool::builder().size_classes([4096]).magazine_capacity(1).max_retained_bytes(0).build().unwrap();
    drop((0..5).map(|_| pool.get(4096)).collect::<Vec<_>>());
    let s = pool.stats();
    assert_eq!(totals(&s), (5, 5, 5, 0, 3, 2 * 4096));
    assert_eq!(traffic(&s.classes[0]), (0, 0, 0, 0, 0), "nothing reached the depot");
    assert_eq!(s.depot_bytes, 0);
    check_identities(&s);
}

/// Per-class retained bytes are real: on a single thread, exactly
/// `retained_bytes / size` gets of a class are served without allocating.
fn check_retained_is_real(pool: &Pool) {
    let s = pool.stats();
    for (class, c) in s.classes.iter().enumerate() {
        let held = (c.retained_bytes / c.size as u64) as usize;
        let bufs: Vec<Buf<'_>> = (0..held).map(|_| pool.with_capacity(c.size)).collect();
        let after = pool.stats().classes[class].allocations;
        assert_eq!(after, c.allocations, "class {}: {held} buffers were retained", c.size);
        let one_more = pool.with_capacity(c.size);
        assert_eq!(pool.stats().classes[class].allocations, c.allocations + 1, "class {}", c.size);
        drop((bufs, one_more));
    }
}

/// A seeded random single-thread workload over every class, oversized
/// buffers, growth, a small depot limit and the odd trim: the identities hold
/// after every step, and the retained bytes are buffers a get can have.
#[test]
fn identities() {
    let pool = Pool::builder().max_retained_bytes(3 << 20).magazine_capacity(4).build().unwrap();
    let steps = if cfg!(miri) { 60 } else { 20_000 };
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut live: Vec<Buf<'_>> = Vec::new();
    for step in 0..steps {
        match rng.below(100) {
            0..=44 if live.len() < 64 => {
                let class = rng.below(DEFAULT_SIZE_CLASSES.len() + 1);
                let len = match DEFAULT_SIZE_CLASSES.get(class) {
                    Some(&size) => 1 + rng.below(size),
                    None => DEFAULT_SIZE_CLASSES[8] + 1 + rng.below(4096), // oversized
                };
                // Large ones through with_capacity: nothing to zero on reuse.
                live.push(if len > 1 << 16 { pool.with_capacity(len) } else { pool.get(len) });
            }
            0..=89 if !live.is_empty() => drop(live.swap_remove(rng.below(live.len()))),
            90..=97 if !live.is_empty() => {
                let i = rng.below(live.len());
                let grow = live[i].capacity() - live[i].len() + 1;
                live[i].extend_from_slice(&vec![1; grow.min(1 << 17)]);
            }
            98 => pool.trim(),
            _ => {}
        }
        if step % 97 == 0 || step + 1 == steps {
            let s = pool.stats();
            check_identities(&s);
            assert_eq!(s.in_use, live.iter().filter(|b| b.capacity() > 0).count() as u64, "step {step}");
            assert!(s.depot_bytes <= 3 << 20);
        }
    }
    let s = pool.stats();
    let spills: u64 = s.classes.iter().map(|c| c.spills).sum();
    let trimmed: u64 = s.classes.iter().map(|c| c.trimmed).sum();
    if !cfg!(miri) {
        // The full-length run reaches every path (too few steps under miri).
        assert!(s.retained_bytes > 0 && s.oversized > 0 && spills > 0 && trimmed > 0, "a varied workload: {s:?}");
        assert!(s.discarded > s.oversized + trimmed, "the depot limit freed some buffers: {s:?}");
    }
    check_retained_is_real(&pool);
    drop(live);
    let s = pool.stats();
    check_identities(&s);
    assert_eq!(s.in_use, 0);
}
