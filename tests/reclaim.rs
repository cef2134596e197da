//! Memory goes back after a burst: `reclaim_idle` frees what the depot did
//! not need and what idle threads cache, lowers RSS, and costs a steady load
//! nothing; the background reclaimer does it on its own and takes a parked
//! thread's cache while the thread lives. (Its lifetime is tested alone, in
//! `tests/reclaimer.rs`: it is process-wide.)
#![cfg(not(miri))] // hundreds of MiB, /proc, and a membarrier-based protocol miri cannot run

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use magpool::Pool;

mod common;

use common::{eventually, rss_bytes, rss_meaningful};

/// Whether this system offers the heavy barrier that taking an idle
/// thread's cache needs (Linux `membarrier`; containers may forbid it).
fn membarrier_works() -> bool {
    // SAFETY: the query command takes no pointers.
    cfg!(target_os = "linux") && unsafe { membarrier_query() }
}

#[cfg(target_os = "linux")]
unsafe fn membarrier_query() -> bool {
    extern "C" {
        fn syscall(number: i64, ...) -> i64;
    }
    // SYS_membarrier on x86_64 and aarch64; MEMBARRIER_CMD_QUERY.
    let number = if cfg!(target_arch = "aarch64") { 283 } else { 324 };
    // SAFETY: the query command takes no pointers.
    unsafe { syscall(number, 0i64, 0i64, 0i64) > 0 }
}

#[cfg(not(target_os = "linux"))]
unsafe fn membarrier_query() -> bool {
    false
}

/// A burst of 256 MiB, on a thread that then exits (its cache goes to the
/// depot): the depot holds it all. Three `reclaim_idle` calls bring what the
/// pool retains down to (near) nothing, and RSS down with it, while a steady
/// load on another thread keeps running through them and makes no new
/// allocation.
#[test]
fn a_burst_falls_back_to_the_working_set() {
    let pool: &'static Pool = Pool::builder().max_retained_bytes(512 << 20).build().unwrap().leak();
    let before = rss_bytes();
    std::thread::scope(|s| {
        s.spawn(|| {
            let burst: Vec<_> = (0..4096)
                .map(|_| {
                    let mut b = pool.get(64 << 10);
                    b.fill(7);
                    b
                })
                .collect();
            drop(burst);
        })
        .join()
        .unwrap();
    });
    let peak = pool.stats();
    assert!(peak.retained_bytes >= 250 << 20, "the burst is retained: {peak:?}");
    let burst_rss = rss_bytes();

    let stop = AtomicBool::new(false);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (freed, steady_allocations) = std::thread::scope(|s| {
        let (pool, stop) = (&pool, &stop);
        let steady = s.spawn(move || {
            // Warm: a window of 4 KiB buffers wider than two magazines, so it
            // exchanges with the depot all along.
            let mut window = std::collections::VecDeque::new();
            let step = |window: &mut std::collections::VecDeque<magpool::Buf<'static>>| {
                window.push_back(pool.get(4096));
                if window.len() > 100 {
                    window.pop_front();
                }
            };
            (0..10_000).for_each(|_| step(&mut window));
            let warm = pool.stats().classes[2].allocations;
            ready_tx.send(()).unwrap();
            let mut steps = 0u64;
            while !stop.load(Relaxed) && steps < 50_000_000 {
                step(&mut window);
                steps += 1;
                if steps % 64 == 0 {
                    std::thread::yield_now();
                }
            }
            pool.stats().classes[2].allocations - warm
        });
        ready_rx.recv().unwrap();
        let mut freed = 0;
        for _ in 0..3 {
            freed += pool.reclaim_idle();
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Relaxed);
        (freed, steady.join().unwrap())
    });
    let after = pool.stats();
    assert!(freed >= 250 << 20, "freed {} MiB of the 256 MiB burst", freed >> 20);
    assert_eq!(after.reclaimed_bytes, freed as u64);
    assert_eq!(after.reclaims, 3);
    let small = (8 << 20) + 2 * (100 * 4096); // the steady load's own working set, and slack
    assert!(
        after.retained_bytes <= small,
        "retained {} KiB after three reclaims: {after:?}",
        after.retained_bytes >> 10
    );
    assert_eq!(steady_allocations, 0, "the steady load lost nothing it needed");
    let rss = rss_bytes();
    assert!(
        !rss_meaningful() || rss < burst_rss.saturating_sub(200 << 20),
        "RSS: {} MiB before, {} MiB after the burst, {} MiB after reclaim: freed memory must leave the process",
        before >> 20,
        burst_rss >> 20,
        rss >> 20
    );
}

/// A thread that holds a full cache and then parks, alive: with a reclaim
/// interval, its cached buffers go back to the allocator within two
/// intervals, without the thread's help; when it wakes, the pool works for
/// it as before.
#[test]
fn an_idle_threads_cache_is_taken_while_it_lives() {
    if !membarrier_works() {
        eprintln!("SKIP an_idle_threads_cache_is_taken_while_it_lives: no membarrier on this system");
        return;
    }
    let interval = Duration::from_millis(50);
    let pool = &Pool::builder().reclaim_interval(interval).build().unwrap();
    let (parked_tx, parked_rx) = mpsc::channel();
    let (wake_tx, wake_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let parked = s.spawn(move || {
            // Fill this thread's magazines of a few classes, then park.
            for size in [4096, 16 << 10, 64 << 10] {
                drop((0..40).map(|_| pool.get(size)).collect::<Vec<_>>());
            }
            parked_tx.send(pool.stats().thread_cached_bytes).unwrap();
            wake_rx.recv().unwrap();
            // Awake again: its cache was taken; gets still work.
            let b = pool.get(4096);
            assert_eq!(b.len(), 4096);
        });
        let cached = parked_rx.recv().unwrap();
        assert!(cached >= 1 << 20, "the parked thread caches {cached} bytes");
        let began = Instant::now();
        let taken = eventually(Duration::from_secs(10), || pool.stats().thread_cached_bytes == 0);
        let took = began.elapsed();
        let s = pool.stats();
        wake_tx.send(()).unwrap();
        parked.join().unwrap();
        assert!(taken, "the parked thread's cache was never taken: {s:?}");
        assert!(s.reclaimed_bytes >= cached, "{s:?}");
        // Two intervals, plus scheduling slack on a loaded machine.
        assert!(took <= 2 * interval + Duration::from_millis(500), "took {took:?}");
    });
    assert_eq!(pool.stats().in_use, 0);
}

/// A thread that reclaims twice with no get or release between takes its
/// own cache on the second call; the items' drops run after every slot is
/// handed back, so a drop that gets from the same pool does not wait for
/// a revocation its own thread holds (a review found that hang).
#[test]
fn a_drop_during_a_reclaim_may_use_the_pool() {
    use std::sync::atomic::AtomicBool;
    use std::sync::OnceLock;
    type Policy = (fn() -> Armed, fn(&mut Armed) -> bool);
    struct Armed(#[allow(dead_code)] u64); // objects are not zero-sized
    static POOL: OnceLock<&'static magpool::ObjectPool<Armed, Policy>> = OnceLock::new();
    static ARMED: AtomicBool = AtomicBool::new(false);
    impl Drop for Armed {
        fn drop(&mut self) {
            if ARMED.swap(false, Relaxed) {
                drop(POOL.get().expect("set").get()); // a get and a release, nested
            }
        }
    }
    if !membarrier_works() {
        eprintln!("SKIP a_drop_during_a_reclaim_may_use_the_pool: no membarrier on this system");
        return;
    }
    let policy: Policy = (|| Armed(0), |_| true);
    let pool = magpool::ObjectPool::builder(policy).build().unwrap().leak();
    assert!(POOL.set(pool).is_ok());
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop((0..4).map(|_| pool.get()).collect::<Vec<_>>());
        pool.reclaim_idle(); // this thread's counters move: nothing taken
        ARMED.store(true, Relaxed);
        let freed = pool.reclaim_idle(); // idle since: its own cache is taken
        done_tx.send(freed).unwrap();
    });
    let freed = done_rx.recv_timeout(Duration::from_secs(20)).expect("the reclaiming thread hung");
    assert!(freed >= 1, "the thread's own cache was taken");
    assert!(!ARMED.load(Relaxed), "an item's drop ran, and its nested get returned");
}
