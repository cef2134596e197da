//! `ObjectPool`: reuse, the recycle policy (refusing, panicking), release on
//! other threads and at thread exit, everything freed when the pool drops,
//! the counters, and a `Drop` or `recycle` that uses the same pool again.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use magpool::{Clear, ObjectPool, Recycle};

/// An object that counts how many of its kind are alive.
#[derive(Debug)]
struct Tracked {
    alive: Arc<AtomicUsize>,
    payload: Vec<u32>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Relaxed);
    }
}

/// Makes `Tracked`s; keeps them while their payload stayed short.
struct Policy {
    alive: Arc<AtomicUsize>,
    made: AtomicUsize,
}

impl Recycle<Tracked> for Policy {
    fn new_object(&self) -> Tracked {
        self.alive.fetch_add(1, Relaxed);
        self.made.fetch_add(1, Relaxed);
        Tracked { alive: self.alive.clone(), payload: Vec::new() }
    }

    fn recycle(&self, object: &mut Tracked) -> bool {
        assert_ne!(object.payload.first(), Some(&666), "a recycle that panics");
        let keep = object.payload.len() <= 4;
        object.payload.clear();
        keep
    }
}

fn policy() -> (Policy, Arc<AtomicUsize>) {
    let alive = Arc::new(AtomicUsize::new(0));
    (Policy { alive: alive.clone(), made: AtomicUsize::new(0) }, alive)
}

#[test]
fn reuse_and_refusal() {
    let (p, alive) = policy();
    let pool = ObjectPool::new(p);
    let mut a = pool.get();
    a.payload.extend([1, 2, 3]);
    drop(a);
    let b = pool.get();
    assert!(b.payload.is_empty(), "recycled before reuse");
    drop(b);
    let s = pool.stats();
    assert_eq!((s.gets, s.puts, s.allocations, s.in_use), (2, 2, 1, 0));
    // Grown past the policy's bound: dropped on release, not kept.
    let mut big = pool.get();
    big.payload.extend(0..100);
    drop(big);
    assert_eq!(alive.load(Relaxed), 0, "the refused object was dropped");
    let s = pool.stats();
    assert_eq!((s.gets, s.puts, s.discarded, s.in_use), (3, 3, 1, 0));
    assert_eq!(s.allocations - s.discarded, 0, "nothing held");
}

#[test]
fn a_panicking_recycle_drops_the_object_and_keeps_the_count() {
    let (p, alive) = policy();
    let pool = ObjectPool::new(p);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut o = pool.get();
        o.payload.push(666);
    }));
    assert!(result.is_err());
    assert_eq!(alive.load(Relaxed), 0, "dropped during the unwind");
    let s = pool.stats();
    assert_eq!((s.gets, s.puts, s.in_use, s.discarded), (1, 1, 0, 1));
    // The pool still works.
    let o = pool.get();
    assert!(o.payload.is_empty());
}

#[test]
fn a_panicking_new_object_counts_nothing() {
    let pool = ObjectPool::new((|| -> Vec<u8> { panic!("cannot make one") }, |_: &mut Vec<u8>| true));
    assert!(std::panic::catch_unwind(|| pool.get()).is_err());
    let s = pool.stats();
    assert_eq!((s.gets, s.allocations, s.in_use), (0, 0, 0));
}

#[test]
fn cross_thread_release_and_thread_exit() {
    let (p, alive) = policy();
    let pool = ObjectPool::builder(p).magazine_capacity(4).build().unwrap();
    let objects: Vec<_> = (0..20).map(|_| pool.get()).collect();
    std::thread::scope(|s| {
        // Released on another thread, which then exits: its cache goes to
        // the depot (join waits for its thread-local destructors).
        s.spawn(move || drop(objects)).join().unwrap();
    });
    let s = pool.stats();
    assert_eq!((s.in_use, s.puts, s.allocations), (0, 20, 20));
    assert!(s.classes[0].spills > 0, "whole magazines reached the depot: {s:?}");
    // This thread reuses them: no new object.
    let again: Vec<_> = (0..20).map(|_| pool.get()).collect();
    assert_eq!(pool.stats().allocations, 20);
    assert_eq!(alive.load(Relaxed), 20);
    drop(again);
}

#[test]
fn dropping_the_pool_drops_every_object() {
    let (p, alive) = policy();
    let pool = ObjectPool::builder(p).magazine_capacity(2).build().unwrap();
    std::thread::scope(|s| {
        let pool = &pool;
        let threads: Vec<_> =
            (0..3).map(|_| s.spawn(move || drop((0..7).map(|_| pool.get()).collect::<Vec<_>>()))).collect();
        // Joined one by one: `scope` alone may return before a thread's
        // thread-local destructors (its exit flush) have run, and a flush in
        // progress keeps the pool's state alive until it ends.
        threads.into_iter().for_each(|t| t.join().unwrap());
    });
    drop((0..5).map(|_| pool.get()).collect::<Vec<_>>());
    assert!(alive.load(Relaxed) > 0);
    drop(pool);
    assert_eq!(alive.load(Relaxed), 0, "every cached object, in every cache, dropped with the pool");
}

#[test]
fn detach_takes_an_object_for_good() {
    let pool: ObjectPool<Vec<u8>> = ObjectPool::new(Clear::new(4, 64));
    let mut v = pool.get();
    v.push(1);
    let kept: Vec<u8> = v.detach();
    assert_eq!(kept, [1]);
    let s = pool.stats();
    assert_eq!((s.gets, s.puts, s.in_use, s.discarded), (1, 1, 0, 1));
}

#[test]
fn ready_policies() {
    let vecs: ObjectPool<Vec<u64>> = ObjectPool::new(Clear::new(32, 1024));
    let strings: ObjectPool<String> = ObjectPool::new(Clear::default());
    let maps: ObjectPool<std::collections::HashMap<u32, u32>> = ObjectPool::new(Clear::new(16, 256));
    let mut v = vecs.get();
    v.extend(0..10);
    drop(v);
    assert!(vecs.get().is_empty() && vecs.get().capacity() >= 32);
    let mut s = strings.get();
    s.push('x');
    drop(s);
    assert!(strings.get().is_empty());
    let mut m = maps.get();
    m.insert(1, 1);
    drop(m);
    assert!(maps.get().is_empty());
    assert_eq!(maps.stats().allocations, 1);
}

/// A `Drop` of a pooled object that gets and releases from the same pool:
/// it runs outside the pool's own state (objects are dropped after every
/// owner access), so the nested calls work and nothing is lost.
#[test]
fn a_drop_that_uses_the_same_pool() {
    static POOL: std::sync::OnceLock<&'static ObjectPool<Nested, NestedPolicy>> = std::sync::OnceLock::new();
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct Nested(u32);
    impl Drop for Nested {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Relaxed);
            if self.0 == 1 {
                // Re-enter: get one and release it, while the pool is
                // dropping this object (refused, or freed by the depot limit).
                let pool = POOL.get().expect("set before use");
                let mut inner = pool.get();
                inner.0 = 2;
            }
        }
    }
    struct NestedPolicy;
    impl Recycle<Nested> for NestedPolicy {
        fn new_object(&self) -> Nested {
            Nested(0)
        }
        fn recycle(&self, object: &mut Nested) -> bool {
            object.0 != 3 // 3: refused, so dropped by the pool
        }
    }
    // The depot keeps nothing: every spill drops a magazine of objects.
    let pool = ObjectPool::builder(NestedPolicy).magazine_capacity(1).max_retained(0).build().unwrap().leak();
    assert!(POOL.set(pool).is_ok(), "set once");
    for _ in 0..200 {
        let batch: Vec<_> = (0..3)
            .map(|i| {
                let mut o = pool.get();
                o.0 = [1, 3, 0][i];
                o
            })
            .collect();
        drop(batch);
    }
    let s = pool.stats();
    assert_eq!(s.in_use, 0, "{s:?}");
    assert_eq!(s.gets, s.puts);
    assert!(s.discarded > 100 && DROPS.load(Relaxed) > 100, "{s:?}");
}

/// A `recycle` that gets and releases from the same pool.
#[test]
fn a_recycle_that_uses_the_same_pool() {
    type Home = Arc<Mutex<Option<&'static ObjectPool<Vec<u8>, Borrowing>>>>;
    struct Borrowing(Home);
    impl Recycle<Vec<u8>> for Borrowing {
        fn new_object(&self) -> Vec<u8> {
            Vec::with_capacity(8)
        }
        fn recycle(&self, object: &mut Vec<u8>) -> bool {
            if object.first() == Some(&7) {
                let pool = self.0.lock().unwrap().expect("set");
                let scratch = pool.get(); // nested get and release
                drop(scratch);
            }
            object.clear();
            true
        }
    }
    let cell = Arc::new(Mutex::new(None));
    let pool = ObjectPool::builder(Borrowing(cell.clone())).magazine_capacity(1).build().unwrap().leak();
    *cell.lock().unwrap() = Some(pool);
    for i in 0..500u32 {
        let held: Vec<_> = (0..3)
            .map(|_| {
                let mut v = pool.get();
                v.push(if i % 2 == 0 { 7 } else { 1 });
                v
            })
            .collect();
        drop(held);
    }
    let s = pool.stats();
    assert_eq!((s.in_use, s.gets, s.puts), (0, s.puts, s.gets));
    assert!(s.gets > 1500, "the nested gets ran too: {s:?}");
}

#[test]
fn object_pools_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ObjectPool<Vec<u8>>>();
    send_sync::<ObjectPool<String, (fn() -> String, fn(&mut String) -> bool)>>();
    send_sync::<magpool::Pooled<'static, Vec<u8>>>();
}
