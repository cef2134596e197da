//! A panic that unwinds past a `Buf` returns it to its pool, zeroed like any
//! other release, and leaves the pool fully usable.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use magpool::{Buf, Pool};

#[test]
fn unwind_returns() {
    let pool = Pool::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _a = pool.get(100);
        let _b = pool.get(5000);
        let _c = pool.get((16 << 20) + 1); // oversized: freed on unwind
        panic!("boom");
    }));
    assert!(result.is_err());
    let s = pool.stats();
    assert_eq!((s.gets, s.puts, s.in_use), (3, 3, 0), "{s:?}");
    assert_eq!(s.retained_bytes, 512 + 16384, "both pooled buffers back in the cache");
    assert_eq!(s.oversized_class.discarded, 1);
    drop(pool.get(100));
    assert_eq!(pool.stats().allocations, 3, "the returned buffer is reused");
}

/// A panic inside a closure that is filling the buffer: the bytes written so
/// far are zeroed on the way back, and the next user sees none of them.
#[test]
fn panic_while_writing() {
    let pool = Pool::new();
    let n = if cfg!(miri) { 3 } else { 100 };
    for round in 0..n {
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut buf = pool.get(4096);
            buf.iter_mut().enumerate().for_each(|(i, b)| {
                assert!(i < 1000 + round, "stop writing at {i}");
                *b = 0xEE;
            });
        }));
        assert!(result.is_err());
        let again = pool.get(4096);
        assert!(again.iter().all(|&b| b == 0), "round {round}: stale bytes after a panic");
    }
    let s = pool.stats();
    assert_eq!((s.in_use, s.allocations, s.gets, s.puts), (0, 1, 2 * n as u64, 2 * n as u64), "{s:?}");
}

/// A panic while the buffer is growing through `io::Write`: both the buffer it
/// outgrew and the one it grew into go back.
#[test]
fn panic_during_growth() {
    let pool = Pool::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut buf = pool.with_capacity(16);
        for i in 0..10_000u32 {
            write!(buf, "{i},").unwrap();
            assert!(buf.len() < 3000, "panic in the 4 KiB class");
        }
    }));
    assert!(result.is_err());
    let s = pool.stats();
    assert_eq!(s.in_use, 0, "{s:?}");
    assert_eq!(s.classes.iter().map(|c| c.gets).take(3).collect::<Vec<_>>(), [1, 1, 1], "512 → 1 KiB → 4 KiB");
    assert_eq!(s.retained_bytes, 512 + 1024 + 4096);
    for len in [512, 1024, 4096] {
        assert!(pool.get(len).iter().all(|&b| b == 0), "class {len} zeroed after the panic");
    }
}

/// A thread that panics while holding buffers returns them all; the pool
/// serves the next thread as usual.
#[test]
fn thread_panic() {
    let pool = Pool::new();
    let n = if cfg!(miri) { 4 } else { 100 };
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| {
            let held: Vec<Buf<'_>> = (0..n).map(|i| pool.get(1 + i * 37)).collect();
            assert!(held.is_empty(), "panic with {} buffers held", held.len());
        });
        assert!(handle.join().is_err());
    });
    let s = pool.stats();
    assert_eq!((s.gets, s.puts, s.in_use), (n as u64, n as u64, 0), "{s:?}");
    let again: Vec<Buf<'_>> = (0..n).map(|i| pool.get(1 + i * 37)).collect();
    assert!(again.iter().all(|b| b.iter().all(|&x| x == 0)));
    drop(again);
    assert_eq!(pool.stats().in_use, 0);
}
