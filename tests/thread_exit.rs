//! What an exiting thread caches goes to the depot, where the next threads
//! find it; and gets and releases made while a thread's thread-locals are
//! being destroyed still work.
//!
//! Threads here are joined explicitly: `JoinHandle::join` returns only once
//! the thread has finished, thread-local destructors included, whereas
//! `thread::scope` alone may return as soon as the closures have.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};

use magpool::{Buf, Pool};

/// Magazine capacity of a default class, by the rule `Builder` documents:
/// at most 32 buffers and 1 MiB, at least 1.
fn magazine(size: usize) -> usize {
    ((1 << 20) / size).clamp(1, magpool::DEFAULT_MAGAZINE_CAPACITY)
}

/// Index of the default class of `size` bytes.
fn class(size: usize) -> usize {
    magpool::DEFAULT_SIZE_CLASSES.iter().position(|&s| s == size).unwrap()
}

/// A thread fills its cache and exits: its magazines go to the depot, and a
/// new thread is served from them without allocating.
#[test]
fn flush_to_depot() {
    let pool = Pool::new();
    let n = 2 * magazine(4096); // exactly what the thread's two magazines hold
    let (filled_tx, filled_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel::<()>();
    let pool = &pool;
    std::thread::scope(|scope| {
        let t = scope.spawn(move || {
            drop((0..n).map(|_| pool.get(4096)).collect::<Vec<_>>());
            filled_tx.send(()).unwrap();
            exit_rx.recv().unwrap();
        });
        filled_rx.recv().unwrap();
        let s = pool.stats();
        assert_eq!(s.classes[class(4096)].depot_full_magazines, 0, "all in the thread's cache: {s:?}");
        assert_eq!((s.retained_bytes, s.depot_bytes), (n as u64 * 4096, 0));
        exit_tx.send(()).unwrap();
        t.join().unwrap();
    });
    let s = pool.stats();
    assert_eq!(s.classes[class(4096)].depot_full_magazines, 2, "both magazines flushed: {s:?}");
    assert_eq!((s.retained_bytes, s.depot_bytes), (n as u64 * 4096, n as u64 * 4096));
    let allocations = s.allocations;

    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let bufs: Vec<Buf<'_>> = (0..n).map(|_| pool.get(4096)).collect();
                assert!(bufs.iter().all(|b| b.iter().all(|&x| x == 0)));
            })
            .join()
            .unwrap();
    });
    let s = pool.stats();
    assert_eq!(s.allocations, allocations, "the new thread refilled from the depot");
    assert_eq!(s.classes[class(4096)].refills, 2);
}

/// A second wave of threads allocates (almost) nothing after the first wave
/// exited with the same working set.
#[test]
fn second_wave() {
    let pool = Pool::new();
    let threads = if cfg!(miri) { 2 } else { 4 };
    // Per class a working set that is not a whole number of magazines, so
    // partly filled magazines go through the depot too.
    let sets: Vec<(usize, usize)> = [4096, 65536].iter().map(|&size| (size, 10 * magazine(size) + 7)).collect();
    let sets = if cfg!(miri) { vec![(4096, 40)] } else { sets };
    // Every thread of a wave holds its whole working set at the same time
    // (the barrier), so each wave needs `threads` working sets at once,
    // however the threads happen to be scheduled.
    let all_held = std::sync::Barrier::new(threads);
    let wave = |pool: &Pool| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let held: Vec<Buf<'_>> =
                            sets.iter().flat_map(|&(size, n)| (0..n).map(move |_| pool.get(size))).collect();
                        all_held.wait();
                        held.len()
                    })
                })
                .collect();
            // Joined explicitly, so that every exit flush has run.
            handles.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
        });
        pool.stats()
    };

    let first = wave(&pool);
    for &(size, n) in &sets {
        assert_eq!(first.classes[class(size)].allocations, (threads * n) as u64, "class {size}: {first:?}");
    }
    assert_eq!((first.in_use, first.discarded), (0, 0), "everything went to the depot: {first:?}");
    assert_eq!(first.depot_bytes, first.retained_bytes, "the exited threads' caches were flushed");

    let second = wave(&pool);
    // Magazines belong to threads, and wave 2 refills from the depot a whole
    // magazine at a time, while nothing is released: a thread may finish with
    // part of its last magazine unused in its cache, up to `magazine - 1`
    // buffers that another thread then has to allocate. Nothing else.
    for &(size, _) in &sets {
        let c = class(size);
        let grown = second.classes[c].allocations - first.classes[c].allocations;
        let slack = (threads * (magazine(size) - 1)) as u64;
        assert!(grown <= slack, "class {size}: wave 2 allocated {grown} (slack {slack}): {second:?}");
        assert!(second.classes[c].refills > 0);
    }
    assert_eq!(second.in_use, 0);
}

/// Where a thread-local destructor reports what happened.
type Report = Arc<Mutex<Vec<String>>>;

/// Held in a thread-local: on drop (during thread teardown) releases its
/// buffer, then gets, fills and releases another.
struct Teardown {
    buf: Option<Buf<'static>>,
    pool: &'static Pool,
    report: Report,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        let result = catch_unwind(AssertUnwindSafe(|| {
            if let Some(buf) = self.buf.take() {
                assert!(buf.iter().all(|&b| b == 7), "held contents intact");
                drop(buf);
            }
            let mut buf = self.pool.get(5000);
            assert_eq!(buf.capacity(), 16 << 10);
            assert!(buf.iter().all(|&b| b == 0), "zeroed in teardown too");
            buf.resize(20_000, 1); // growth during teardown
            assert_eq!(buf.capacity(), 64 << 10);
            drop(buf);
        }));
        let outcome = match result {
            Ok(()) => "ok".to_string(),
            Err(e) => e.downcast_ref::<&str>().map_or("panicked".to_string(), |s| s.to_string()),
        };
        self.report.lock().unwrap().push(outcome);
    }
}

thread_local! {
    static TEARDOWN: RefCell<Option<Teardown>> = const { RefCell::new(None) };
}

/// When the thread-local holding the buffer is created, relative to the
/// thread's first use of the pool.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// Before: destroyed after the pool's per-thread state, so the cache is
    /// gone (the case of crossbeam-epoch's `pin_while_exiting`).
    CacheGone,
    /// After: destroyed first, while the cache still works.
    CacheAlive,
    /// The pool is first touched from the destructor itself.
    FirstUse,
}

/// Runs a thread that leaves a `Teardown` in a thread-local, and returns what
/// its destructor reported.
fn teardown(pool: &'static Pool, order: Order) -> Vec<String> {
    let report = Report::default();
    let r = Arc::clone(&report);
    std::thread::spawn(move || {
        let mut teardown = Teardown { buf: None, pool, report: r };
        match order {
            Order::CacheGone => {
                TEARDOWN.with(|t| *t.borrow_mut() = Some(teardown));
                let mut buf = pool.get(100);
                buf.fill(7);
                drop(pool.get(5000)); // something in the cache for the exit flush
                TEARDOWN.with(|t| t.borrow_mut().as_mut().unwrap().buf = Some(buf));
            }
            Order::CacheAlive => {
                let mut buf = pool.get(100);
                buf.fill(7);
                drop(pool.get(5000));
                teardown.buf = Some(buf);
                TEARDOWN.with(|t| *t.borrow_mut() = Some(teardown));
            }
            Order::FirstUse => TEARDOWN.with(|t| *t.borrow_mut() = Some(teardown)),
        }
    })
    .join()
    .unwrap();
    let report = report.lock().unwrap().clone();
    report
}

/// A fresh pool that lives for the rest of the process, as a thread-local
/// destructor needs. `Pool::leak` keeps it reachable, so leak checkers
/// (LeakSanitizer in CI) see it as intended, not lost.
fn static_pool() -> &'static Pool {
    Pool::new().leak()
}

/// A `Buf` dropped, and another got, inside a thread-local destructor: no
/// panic, whichever order the thread-locals are destroyed in, and every
/// buffer is accounted for afterwards.
#[test]
fn tls_destructor() {
    for order in [Order::CacheGone, Order::CacheAlive, Order::FirstUse] {
        let pool = static_pool();
        assert_eq!(teardown(pool, order), ["ok"], "{order:?}");
        let s = pool.stats();
        assert_eq!(s.in_use, 0, "{order:?}: {s:?}");
        let gets = match order {
            Order::FirstUse => 2, // 5000 bytes, grown to 20000
            _ => 4,               // 100 and 5000, then the same two
        };
        assert_eq!((s.gets, s.puts), (gets, gets), "{order:?}: {s:?}");
        let (held, reused) = (&s.classes[class(512)], &s.classes[class(16 << 10)]);
        match order {
            // The cache was flushed to the depot and the thread's slot let go:
            // the held buffer is freed, the teardown get allocates afresh.
            Order::CacheGone => {
                assert_eq!((held.discarded, reused.allocations, reused.discarded), (1, 2, 1), "{s:?}")
            }
            // The cache still works: the teardown get reuses the buffer the
            // thread cached, and the exit flush keeps everything.
            Order::CacheAlive => assert_eq!((s.discarded, reused.allocations), (0, 1), "{s:?}"),
            Order::FirstUse => {}
        }
    }
}

/// A thread-local that holds a buffer is created before another library's
/// `thread_local::ThreadLocal` is first used, so that crate's per-thread guard
/// is destroyed first. A pool's first use on the thread from the destructor
/// then used to abort the process: the pool asked that crate for the thread's
/// id, and it panics once its guard is gone (its issue #74). The pool now
/// keeps its own slot list. Checked with and without an earlier use of the
/// pool on the thread (the workaround while the abort was known).
#[test]
fn teardown_after_another_thread_local() {
    for touch in [false, true] {
        let pool = static_pool();
        let mut held = pool.get(100);
        held.fill(7);
        let report = Report::default();
        let r = Arc::clone(&report);
        std::thread::spawn(move || {
            let teardown = Teardown { buf: Some(held), pool, report: r };
            TEARDOWN.with(|t| *t.borrow_mut() = Some(teardown)); // destroyed last
            let other = thread_local::ThreadLocal::<u8>::new(); // another library's
            assert_eq!(*other.get_or(|| 1), 1);
            if touch {
                drop(pool.get(1));
            }
        })
        .join()
        .unwrap();
        assert_eq!(*report.lock().unwrap(), ["ok"], "touch: {touch}");
        let s = pool.stats();
        // Gets: the held buffer, the destructor's 5000 bytes grown to 20000,
        // and the earlier use's if any. With an earlier use, the thread's exit
        // hook has run before the destructor, whose work then bypasses the
        // cache (three releases freed). Without, the destructor's first use
        // registers the thread then, and its exit hook runs after it.
        let expect = if touch { (0, 4, 4, 3) } else { (0, 3, 3, 0) };
        assert_eq!((s.in_use, s.gets, s.puts, s.discarded), expect, "touch: {touch}: {s:?}");
    }
}

/// The same with the global pool, whose buffers are `Buf<'static>` already.
#[test]
fn tls_destructor_global() {
    for order in [Order::CacheGone, Order::CacheAlive, Order::FirstUse] {
        assert_eq!(teardown(magpool::global(), order), ["ok"], "{order:?}");
    }
}

/// Many short-lived threads: each exit flushes, and the pool stays exact.
#[test]
fn churn() {
    let pool = Pool::new();
    let threads = if cfg!(miri) { 3 } else { 64 };
    for i in 0..threads {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let bufs: Vec<Buf<'_>> = (0..i % 40).map(|j| pool.get(1 + 100 * j)).collect();
                    assert!(bufs.iter().all(|b| b.iter().all(|&x| x == 0)));
                })
                .join()
                .unwrap();
        });
    }
    let s = pool.stats();
    assert_eq!(s.in_use, 0);
    assert_eq!(s.depot_bytes, s.retained_bytes, "every exited thread's cache reached the depot");
    let most = (0..40).map(|j| 1 + 100 * j).filter(|&len| len <= 512).count() as u64;
    assert!(s.classes[0].allocations <= most + 32, "512 B buffers reused across threads: {s:?}");
}

/// A pool owned by a thread-local, dropped during thread teardown.
struct LocalPool {
    pool: Option<Pool>,
    report: Option<Report>,
}

impl Drop for LocalPool {
    fn drop(&mut self) {
        let result = catch_unwind(AssertUnwindSafe(|| drop(self.pool.take())));
        if let Some(report) = &self.report {
            report.lock().unwrap().push(if result.is_ok() { "ok" } else { "panicked" }.to_string());
        }
    }
}

thread_local! {
    static LOCAL_POOL: RefCell<LocalPool> = const { RefCell::new(LocalPool { pool: None, report: None }) };
}

/// A pool in a thread-local, used by its thread and dropped when the thread
/// exits: before the thread's exit flush runs (the flush then finds the pool
/// gone) or after it (the flush fills the depot the pool then frees).
#[test]
fn thread_local_pool() {
    for pool_first in [true, false] {
        let report = Report::default();
        let r = Arc::clone(&report);
        std::thread::spawn(move || {
            if !pool_first {
                drop(magpool::get(100)); // the exit flush is registered first
            }
            LOCAL_POOL.with(|l| {
                let mut l = l.borrow_mut();
                l.report = Some(r);
                let pool = l.pool.insert(Pool::new());
                let bufs: Vec<Buf<'_>> = (0..100).map(|i| pool.get(1 + 1000 * i)).collect();
                drop(bufs);
                assert!(pool.stats().retained_bytes > 0);
            });
        })
        .join()
        .unwrap();
        assert_eq!(*report.lock().unwrap(), ["ok"], "pool created first: {pool_first}");
    }
}
