//! The public API, method by method: the Vec-like `Buf`, class selection,
//! oversized and empty buffers, growth, the global pool, `trim`, every way a
//! configuration can be rejected, and requests too large to serve.

use std::io::Write;

use magpool::{Buf, Builder, Error, Pool, DEFAULT_SIZE_CLASSES, MAGAZINE_GROWTH, MAX_CLASSES, MAX_MAGAZINE_CAPACITY};

const LARGEST: usize = DEFAULT_SIZE_CLASSES[DEFAULT_SIZE_CLASSES.len() - 1];

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn send_sync() {
    assert_send_sync::<Pool>();
    assert_send_sync::<Buf<'static>>();
    assert_send_sync::<Builder>();
    assert_send_sync::<Error>();
}

#[test]
fn smoke() {
    let pool = Pool::new();
    let mut buf = pool.get(100);
    assert_eq!((buf.len(), buf.capacity()), (100, 512));
    assert!(!buf.is_empty() && !buf.is_oversized());
    assert!(buf.iter().all(|&b| b == 0));
    buf[..3].copy_from_slice(b"abc");
    assert_eq!(&buf[..3], b"abc");
    assert!(std::ptr::eq(buf.pool(), &pool));
    drop(buf);
    assert_eq!(pool.stats().in_use, 0);
}

#[test]
fn clear_truncate() {
    let pool = Pool::new();
    let mut buf = pool.get(10);
    buf.truncate(20); // longer than len: no effect
    assert_eq!(buf.len(), 10);
    buf.truncate(4);
    assert_eq!(buf.len(), 4);
    buf.clear();
    assert!(buf.is_empty());
    assert_eq!(buf.capacity(), 512, "clear keeps the capacity");
}

#[test]
fn resize() {
    let pool = Pool::new();
    let mut buf = pool.with_capacity(8);
    buf.resize(5, 7);
    assert_eq!(&buf[..], [7; 5]);
    buf.resize(2, 9); // shrinking truncates and ignores the byte
    assert_eq!(&buf[..], [7; 2]);
    buf.resize(4, 1);
    assert_eq!(&buf[..], [7, 7, 1, 1]);
    buf.resize(600, 3); // past 512: moves to the 1 KiB class
    assert_eq!((buf.len(), buf.capacity()), (600, 1024));
    assert_eq!(&buf[..4], [7, 7, 1, 1]);
    assert!(buf[4..].iter().all(|&b| b == 3));
}

#[test]
fn extend_push() {
    let pool = Pool::new();
    let mut buf = pool.with_capacity(0);
    assert_eq!(buf.capacity(), 0);
    buf.push(1);
    assert_eq!(buf.capacity(), 512, "the first byte takes the smallest class");
    buf.extend_from_slice(&[2, 3]);
    buf.extend([4u8, 5]);
    buf.extend(&[6u8]);
    assert_eq!(&buf[..], [1, 2, 3, 4, 5, 6]);
    assert_eq!(buf, *[1u8, 2, 3, 4, 5, 6].as_slice());
}

#[test]
fn write() {
    let pool = Pool::new();
    let mut buf = pool.with_capacity(16);
    write!(buf, "key={}", 42).unwrap();
    buf.write_all(b";").unwrap();
    assert_eq!(buf.write(b"xy").unwrap(), 2);
    buf.flush().unwrap();
    assert_eq!(&buf[..], b"key=42;xy");
    let long = vec![b'z'; 5000];
    buf.write_all(&long).unwrap();
    assert_eq!((buf.len(), buf.capacity()), (9 + 5000, 16 << 10));
    assert_eq!(&buf[..9], b"key=42;xy");
}

#[test]
fn deref_as_ref() {
    let pool = Pool::new();
    let mut buf = pool.get(4);
    buf.copy_from_slice(&[1, 2, 3, 4]); // DerefMut
    let sum: u32 = buf.iter().map(|&b| u32::from(b)).sum(); // Deref
    assert_eq!(sum, 10);
    buf.as_mut()[0] = 9; // AsMut
    assert_eq!(buf.as_ref(), &[9, 2, 3, 4]); // AsRef
    assert_eq!(buf.as_slice(), &[9, 2, 3, 4]);
    buf.as_mut_slice()[1] = 8;
    let borrowed: &[u8] = std::borrow::Borrow::borrow(&buf);
    assert_eq!(borrowed, &[9, 8, 3, 4]);
    let other = {
        let mut b = pool.get(4);
        b.copy_from_slice(&[9, 8, 3, 4]);
        b
    };
    assert_eq!(buf, other);
}

#[test]
fn debug() {
    let pool = Pool::new();
    let mut buf = pool.with_capacity(100);
    buf.extend_from_slice(&[1; 40]);
    let s = format!("{buf:?}");
    assert!(s.contains("len: 40") && s.contains("capacity: 512") && s.contains("oversized: false"), "{s}");
    assert_eq!(s.matches('1').count(), 32 + 1, "the head shows 32 bytes (and `capacity: 512` a 1): {s}");
    let s = format!("{pool:?}");
    assert!(s.contains("size_classes") && s.contains("16777216") && s.contains("zero_on_release: true"), "{s}");
}

/// Each default class edge: one byte less and the class size itself are
/// served by the class, one byte more by the next class (or oversized).
#[test]
fn class_edges() {
    let pool = Pool::new();
    for (i, &size) in DEFAULT_SIZE_CLASSES.iter().enumerate() {
        let next = DEFAULT_SIZE_CLASSES.get(i + 1).copied().unwrap_or(size + 1);
        for (len, capacity) in [(size - 1, size), (size, size), (size + 1, next)] {
            let buf = pool.get(len);
            assert_eq!((buf.len(), buf.capacity()), (len, capacity), "get({len})");
            assert_eq!(buf.is_oversized(), len > LARGEST, "get({len})");
        }
    }
    assert_eq!(pool.get(1).capacity(), DEFAULT_SIZE_CLASSES[0]);
}

#[test]
fn zero_len() {
    let pool = Pool::new();
    let buf = pool.get(0);
    assert_eq!((buf.len(), buf.capacity()), (0, 0));
    assert!(buf.is_empty() && !buf.is_oversized());
    assert_eq!(&buf[..], b"");
    let stats = pool.stats();
    assert_eq!((stats.allocations, stats.in_use, stats.oversized), (0, 0, 0), "{stats:?}");
    drop(buf);
    let empty = pool.with_capacity(0);
    assert_eq!(empty.capacity(), 0);
    drop(empty);
    let stats = pool.stats();
    assert_eq!((stats.allocations, stats.discarded, stats.retained_bytes), (0, 0, 0), "{stats:?}");
}

#[test]
fn oversized() {
    let pool = Pool::new();
    let len = LARGEST + 1;
    let mut buf = pool.get(len);
    assert_eq!((buf.len(), buf.capacity()), (len, len), "oversized is exact");
    assert!(buf.is_oversized());
    assert!(buf[len - 16..].iter().all(|&b| b == 0));
    buf[len - 1] = 1;
    let stats = pool.stats();
    assert_eq!((stats.oversized, stats.allocations, stats.in_use), (1, 1, 1));
    drop(buf);
    let stats = pool.stats();
    assert_eq!((stats.oversized, stats.puts, stats.discarded, stats.retained_bytes), (1, 1, 1, 0), "{stats:?}");
    assert_eq!(stats.oversized_class.gets, 1);
}

/// Growth past the capacity moves the contents into the next class that
/// fits, from the same pool, and gives the old buffer back to it.
#[test]
fn growth() {
    let pool = Pool::new();
    let mut buf = pool.with_capacity(512);
    buf.extend_from_slice(&[1; 512]);
    assert_eq!(buf.capacity(), 512, "filling exactly to capacity does not move");
    buf.push(2);
    assert_eq!((buf.len(), buf.capacity()), (513, 1024));
    buf.extend_from_slice(&[3; 2000]); // 2513: skips to 4 KiB
    assert_eq!(buf.capacity(), 4096);
    assert_eq!((buf[511], buf[512], buf[513], buf[2512]), (1, 2, 3, 3));
    assert!(std::ptr::eq(buf.pool(), &pool));
    let stats = pool.stats();
    let gets: Vec<u64> = stats.classes.iter().map(|c| c.gets).collect();
    assert_eq!(gets[..3], [1, 1, 1], "one buffer of each class on the way");
    assert_eq!(stats.in_use, 1, "the outgrown buffers went back to the pool");
    assert_eq!(stats.retained_bytes, 512 + 1024);

    // Oversized growth doubles, like Vec, so appending stays amortised O(1).
    let mut big = pool.with_capacity(LARGEST);
    big.resize(LARGEST, 5);
    big.push(6);
    assert_eq!((big.len(), big.capacity()), (LARGEST + 1, 2 * LARGEST));
    assert!(big.is_oversized());
    assert_eq!((big[0], big[LARGEST - 1], big[LARGEST]), (5, 5, 6));
}

#[test]
fn reserve() {
    let pool = Pool::new();
    let mut buf = pool.get(10);
    buf.reserve(502);
    assert_eq!(buf.capacity(), 512, "room enough: no move");
    buf.reserve(503);
    assert_eq!((buf.len(), buf.capacity()), (10, 1024));
    buf.try_reserve(3000).unwrap();
    assert_eq!(buf.capacity(), 4096);
}

#[test]
fn global() {
    let buf = magpool::get(100);
    assert_eq!((buf.len(), buf.capacity()), (100, 512));
    assert!(std::ptr::eq(buf.pool(), magpool::global()));
    assert!(std::ptr::eq(magpool::global(), magpool::global()));
    assert_eq!(magpool::global().size_classes(), DEFAULT_SIZE_CLASSES);
}

#[test]
fn configuration() {
    let pool = Pool::new();
    assert_eq!(pool.size_classes(), DEFAULT_SIZE_CLASSES);
    assert!(pool.zero_on_release());
    assert_eq!(pool.max_retained_bytes(), magpool::DEFAULT_MAX_RETAINED_BYTES);
    assert_eq!(Pool::default().size_classes(), DEFAULT_SIZE_CLASSES);
    let pool = Builder::new()
        .size_classes([100, 3000])
        .magazine_capacity(2)
        .zero_on_release(false)
        .max_retained_bytes(1234)
        .build()
        .unwrap();
    assert_eq!(pool.size_classes(), [100, 3000]);
    assert!(!pool.zero_on_release());
    assert_eq!(pool.max_retained_bytes(), 1234);
    assert_eq!(pool.get(101).capacity(), 3000);
    assert_eq!(pool.get(3001).capacity(), 3001, "above the largest class: oversized");
    let one = Pool::builder().size_classes([1]).build().unwrap();
    assert_eq!(one.get(1).capacity(), 1);
    let most = Pool::builder().size_classes(1..=MAX_CLASSES).build().unwrap();
    assert_eq!(most.get(MAX_CLASSES).capacity(), MAX_CLASSES);
    assert!(Pool::builder().magazine_capacity(MAX_MAGAZINE_CAPACITY).build().is_ok());
}

/// `magazine_bytes` sets how many buffers of a class a magazine holds (at most
/// `magazine_capacity`), seen here through the spills of one thread releasing
/// eight 1 MiB buffers: the first two magazines stay in the thread, and each
/// one filled after them goes to the depot.
#[test]
fn magazine_bytes_sets_buffers_per_magazine() {
    let spills = |b: Builder| {
        let pool = b.size_classes([1 << 20]).build().unwrap();
        let held: Vec<_> = (0..8).map(|_| pool.get(1 << 20)).collect();
        drop(held);
        pool.stats().classes[0].spills
    };
    assert_eq!(spills(Builder::new()), 6, "1 MiB budget: one buffer per magazine");
    assert_eq!(spills(Builder::new().magazine_bytes(4 << 20)), 0, "4 MiB: four per magazine, two magazines");
    assert_eq!(spills(Builder::new().magazine_bytes(4 << 20).magazine_capacity(2)), 2, "capped at two");
    assert_eq!(spills(Builder::new().magazine_bytes(1)), 6, "a budget below the class: still one");
}

/// A thread that gets and releases a class in swings wider than its two
/// magazines grows them, to `MAGAZINE_GROWTH` times the byte budget and no
/// further: with 1 MiB buffers and the 1 MiB budget, from one buffer per
/// magazine to four. Counted as depot exchanges (refills and spills) per
/// swing of holding `width` buffers and then dropping them all.
#[test]
fn swings_grow_magazines_to_the_limit() {
    assert_eq!(MAGAZINE_GROWTH, 4, "the widths below assume it");
    let exchanges_per_swing = |width: usize| -> Vec<u64> {
        let pool = Pool::builder().size_classes([1 << 20]).build().unwrap();
        let mut before = 0;
        (0..8)
            .map(|_| {
                let held: Vec<_> = (0..width).map(|_| pool.with_capacity(1 << 20)).collect();
                drop(held);
                let c = &pool.stats().classes[0];
                let n = c.refills + c.spills;
                n - std::mem::replace(&mut before, n)
            })
            .collect()
    };
    let fits = exchanges_per_swing(8);
    assert!(fits[1] > 0 && fits[4..] == [0; 4], "two magazines of four hold a swing of 8: {fits:?}");
    let wider = exchanges_per_swing(10);
    assert!(wider[4..].iter().all(|&n| n > 0), "no magazine grows past four: {wider:?}");
}

/// Builds with `b` and returns the error's message, checking it is `expected`.
fn rejected(b: Builder, expected: Error) -> String {
    let err = b.build().unwrap_err();
    assert_eq!(err, expected);
    err.to_string()
}

#[test]
fn bad_config() {
    let b = Pool::builder;
    let s = rejected(b().size_classes([]), Error::NoSizeClasses);
    assert!(s.contains("no size classes"), "{s}");

    let s = rejected(b().size_classes([512, 0, 4096]), Error::ZeroSizeClass { index: 1 });
    assert!(s.contains("#1") && s.contains("0 bytes"), "{s}");

    let unsorted = Error::UnsortedSizeClasses { index: 2, previous: 4096, size: 1024 };
    let s = rejected(b().size_classes([512, 4096, 1024]), unsorted);
    assert!(s.contains("#2") && s.contains("4096") && s.contains("1024") && s.contains("order"), "{s}");

    let s = rejected(b().size_classes([512, 777, 777]), Error::DuplicateSizeClass { size: 777 });
    assert!(s.contains("777") && s.contains("twice"), "{s}");

    let count = MAX_CLASSES + 1;
    let s = rejected(b().size_classes(1..=count), Error::TooManySizeClasses { count, max: MAX_CLASSES });
    assert!(s.contains(&count.to_string()) && s.contains(&MAX_CLASSES.to_string()), "{s}");

    for size in [isize::MAX as usize + 1, usize::MAX, isize::MAX as usize] {
        let s = rejected(b().size_classes([512, size]), Error::SizeClassTooLarge { size });
        assert!(s.contains(&size.to_string()) && s.contains("isize::MAX"), "{s}");
    }

    let s = rejected(b().magazine_bytes(0), Error::ZeroMagazineBytes);
    assert!(s.contains("magazine byte budget is 0"), "{s}");

    let s = rejected(b().magazine_capacity(0), Error::ZeroMagazineCapacity);
    assert!(s.contains("magazine capacity is 0"), "{s}");

    let capacity = MAX_MAGAZINE_CAPACITY + 1;
    let too_large = Error::MagazineCapacityTooLarge { capacity, max: MAX_MAGAZINE_CAPACITY };
    let s = rejected(b().magazine_capacity(capacity), too_large);
    assert!(s.contains(&capacity.to_string()) && s.contains(&MAX_MAGAZINE_CAPACITY.to_string()), "{s}");
    let s = rejected(
        b().magazine_capacity(usize::MAX),
        Error::MagazineCapacityTooLarge { capacity: usize::MAX, max: MAX_MAGAZINE_CAPACITY },
    );
    assert!(s.contains(&usize::MAX.to_string()), "{s}");
}

/// A request no allocation can serve is an `Err` from `try_get`, and leaves
/// the pool as it was.
#[test]
fn try_get_overflow() {
    let pool = Pool::new();
    drop(pool.get(100));
    let before = pool.stats();
    for len in [usize::MAX, isize::MAX as usize, isize::MAX as usize - 14] {
        let err = pool.try_get(len).unwrap_err();
        assert_eq!(err, Error::CapacityOverflow { requested: len });
        assert!(err.to_string().contains(&len.to_string()), "{err}");
        assert_eq!(pool.try_with_capacity(len).unwrap_err(), Error::CapacityOverflow { requested: len });
    }
    assert_eq!(pool.stats(), before, "a failed request changes nothing");
    let buf = pool.try_get(100).unwrap();
    assert_eq!(buf.capacity(), 512);
    let stats = pool.stats();
    assert_eq!((stats.gets, stats.allocations), (before.gets + 1, before.allocations), "served from the cache");
}

/// `try_reserve` past any possible size fails and leaves the buffer intact.
#[test]
fn try_reserve_overflow() {
    let pool = Pool::new();
    let mut buf = pool.get(3);
    buf.copy_from_slice(b"abc");
    for additional in [usize::MAX, usize::MAX - 2, isize::MAX as usize] {
        assert!(matches!(buf.try_reserve(additional), Err(Error::CapacityOverflow { .. })), "{additional}");
        assert_eq!((&buf[..], buf.capacity()), (&b"abc"[..], 512));
    }
    buf.push(b'd');
    assert_eq!(&buf[..], b"abcd", "still usable");
}

#[test]
#[should_panic(expected = "capacity overflow")]
fn get_overflow_panics() {
    let _ = Pool::new().get(usize::MAX);
}

#[test]
#[should_panic(expected = "capacity overflow")]
fn with_capacity_overflow_panics() {
    let _ = Pool::new().with_capacity(isize::MAX as usize);
}

#[test]
#[should_panic(expected = "capacity overflow")]
fn reserve_overflow_panics() {
    let pool = Pool::new();
    let mut buf = pool.get(1);
    buf.reserve(usize::MAX);
}

/// `trim` frees the depot and the calling thread's cache: on a single thread,
/// nothing is retained afterwards.
#[test]
fn trim() {
    let pool = Pool::new();
    let n = 100; // more than two 32-buffer magazines: some reach the depot
    let small: Vec<Buf<'_>> = (0..n).map(|_| pool.get(4096)).collect();
    let large: Vec<Buf<'_>> = (0..3).map(|_| pool.with_capacity(1 << 20)).collect();
    drop((small, large));
    let before = pool.stats();
    assert_eq!(before.retained_bytes, n as u64 * 4096 + 3 * (1 << 20));
    assert!(before.depot_bytes > 0, "{before:?}");
    pool.trim();
    let after = pool.stats();
    assert_eq!((after.retained_bytes, after.depot_bytes, after.in_use), (0, 0, 0), "{after:?}");
    assert_eq!(after.discarded, n as u64 + 3);
    assert!(after.classes.iter().all(|c| c.trimmed == c.discarded && c.depot_full_magazines == 0));
    let buf = pool.get(4096);
    assert!(buf.iter().all(|&b| b == 0));
    assert_eq!(pool.stats().allocations, after.allocations + 1, "a get after trim allocates anew");
}

/// `trim` leaves other threads' caches alone: they are theirs to keep.
#[test]
fn trim_keeps_other_threads() {
    let pool = Pool::new();
    let (filled_tx, filled_rx) = std::sync::mpsc::channel();
    let (trimmed_tx, trimmed_rx) = std::sync::mpsc::channel::<()>();
    let pool = &pool;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            drop((0..10).map(|_| pool.get(4096)).collect::<Vec<_>>());
            filled_tx.send(()).unwrap();
            trimmed_rx.recv().unwrap();
        });
        drop(pool.get(1024));
        filled_rx.recv().unwrap();
        pool.trim();
        assert_eq!(pool.stats().retained_bytes, 10 * 4096, "the other thread still caches its 10 buffers");
        trimmed_tx.send(()).unwrap();
    });
}

/// A thread that alternates between more pools than its slot hint holds (4)
/// keeps one cache per pool: after the first get, every buffer comes back
/// from that pool's cache, and each pool counts only its own traffic. The
/// pools are first used out of creation order, so the thread's record of its
/// slots (sorted by pool id) takes entries in the middle too; a lookup that
/// missed would claim a fresh slot, with an empty cache, and allocate again.
#[test]
fn many_pools_on_one_thread() {
    let pools: Vec<Pool> = (0..40).map(|_| Pool::new()).collect();
    for _ in 0..3 {
        for i in (0..40).map(|i| (i * 17) % 40) {
            let mut buf = pools[i].get(4096);
            buf[0] = 1;
        }
    }
    for (i, pool) in pools.iter().enumerate() {
        let s = pool.stats();
        assert_eq!((s.allocations, s.gets, s.puts, s.in_use), (1, 3, 3, 0), "pool {i}: {s:?}");
        assert!(pool.get(4096).iter().all(|&b| b == 0), "pool {i}: wiped on reuse");
    }
}
