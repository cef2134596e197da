//! The background reclaimer is one process-wide thread: it starts with the
//! first pool that asks for it, serves every such pool, holds none of them
//! alive, and ends when the last one drops. (A test binary of its own, so
//! that no other test's pool keeps a reclaimer running.)
#![cfg(not(miri))] // /proc, and threads miri cannot name

use std::time::{Duration, Instant};

use magpool::{Clear, ObjectPool, Pool};

fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let began = Instant::now();
    while began.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    f()
}

/// It ends when the last pool that asked for it drops, and never held that
/// pool alive.
#[test]
fn the_reclaimer_ends_with_its_last_pool() {
    fn reclaimer_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .expect("Linux /proc")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim() == "magpool-reclaim")
            .count()
    }
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
