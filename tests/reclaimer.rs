//! The background reclaimer is one process-wide thread: it starts with the
//! first pool that asks for it, serves every such pool, holds none of them
//! alive, and ends when the last one drops. (A test binary of its own, so
//! that no other test's pool keeps a reclaimer running.)
#![cfg(not(miri))] // /proc, and threads miri cannot name

use std::time::{Duration, Instant};

use magpool::{Clear, ObjectPool, Pool};

mod common;

use common::eventually;

/// Threads named `magpool-reclaim` in this process.
fn reclaimer_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("Linux /proc")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == "magpool-reclaim")
        .count()
}

/// The reclaimer is process-wide: the tests here take turns.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// It ends when the last pool that asked for it drops, and never held that
/// pool alive.
#[test]
fn the_reclaimer_ends_with_its_last_pool() {
    let _turn = one_at_a_time();
    let alive = std::sync::Arc::new(());
    let objects = ObjectPool::builder((
        {
            let alive = alive.clone();
            move || alive.clone()
        },
        |_: &mut std::sync::Arc<()>| true,
    ))
    .reclaim_interval(Duration::from_millis(5))
    .build()
    .unwrap();
    let bytes = Pool::builder().reclaim_interval(Duration::from_millis(7)).build().unwrap();
    drop((0..10).map(|_| objects.get()).collect::<Vec<_>>());
    drop(bytes.get(100));
    assert!(eventually(Duration::from_secs(5), || reclaimer_threads() == 1), "one reclaimer for both pools");
    assert!(eventually(Duration::from_secs(5), || objects.stats().reclaims >= 2 && bytes.stats().reclaims >= 2));
    drop(objects);
    assert!(
        eventually(Duration::from_secs(5), || std::sync::Arc::strong_count(&alive) == 1),
        "the reclaimer kept the pool's objects"
    );
    assert_eq!(reclaimer_threads(), 1, "still serving the other pool");
    drop(bytes);
    assert!(eventually(Duration::from_secs(5), || reclaimer_threads() == 0), "the reclaimer outlived its last pool");
    // Another pool with an interval starts a new one.
    let again: ObjectPool<Vec<u8>> =
        ObjectPool::builder(Clear::default()).reclaim_interval(Duration::from_millis(5)).build().unwrap();
    assert!(eventually(Duration::from_secs(5), || reclaimer_threads() == 1));
    drop(again);
    assert!(eventually(Duration::from_secs(5), || reclaimer_threads() == 0));
}

/// The pool is dropped while the background reclaimer is in the middle of
/// reclaiming it, and then a thread that used it exits: the pool's state
/// stays in the registry of live pools until the reclaimer lets go, so the
/// exiting thread's hook still finds it, flushes and releases its slot, and
/// the reclaimer never reads the dead thread's state (a review found it
/// could: a crash once the thread's stack, and its thread-locals, were
/// unmapped).
#[test]
fn a_pool_dropped_during_a_reclaim_while_a_thread_exits() {
    let _turn = one_at_a_time();
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
    use std::sync::Arc;
    static STAGE: AtomicU32 = AtomicU32::new(0);
    struct Pause(#[allow(dead_code)] u64); // objects are not zero-sized
    impl Drop for Pause {
        fn drop(&mut self) {
            // In the reclaimer, during its depot reclaim: wait for the test.
            if std::thread::current().name() == Some("magpool-reclaim")
                && STAGE.compare_exchange(0, 1, SeqCst, SeqCst).is_ok()
            {
                let began = Instant::now();
                while STAGE.load(SeqCst) != 2 && began.elapsed() < Duration::from_secs(20) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    type Policy = (fn() -> Pause, fn(&mut Pause) -> bool);
    let policy: Policy = (|| Pause(0), |_| true);
    let pool = Arc::new(ObjectPool::builder(policy).reclaim_interval(Duration::from_millis(50)).build().unwrap());
    static EXIT: AtomicBool = AtomicBool::new(false);
    let worker = {
        let pool = pool.clone();
        std::thread::Builder::new()
            // Above glibc's cache of thread stacks: unmapped at the join, as
            // the thread's thread-locals are.
            .stack_size(256 << 20)
            .spawn(move || {
                drop((0..2000).map(|_| pool.get()).collect::<Vec<_>>());
                drop(pool);
                while !EXIT.load(SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
            .unwrap()
    };
    assert!(eventually(Duration::from_secs(20), || STAGE.load(SeqCst) == 1), "the reclaimer never freed an object");
    drop(pool); // the last handle: the reclaimer still holds the state
    EXIT.store(true, SeqCst);
    worker.join().unwrap();
    STAGE.store(2, SeqCst); // the reclaimer goes on, to the idle threads
    assert!(eventually(Duration::from_secs(10), || reclaimer_threads() == 0), "the reclaimer did not end");
}
