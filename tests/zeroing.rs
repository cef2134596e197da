//! With `zero_on_release` (the default) no buffer is handed out holding
//! another user's bytes: not after a release on another thread, not through
//! the depot, not after growth; and reading a buffer's full class capacity
//! (through `get(capacity)`) shows zeroes only. Without it, contents may be
//! stale, but every get works.

use std::sync::mpsc;

use magpool::{Buf, Pool, DEFAULT_SIZE_CLASSES};

static ZEROES: [u8; 4096] = [0; 4096];

/// Whether every byte is zero (compared a page at a time: fast in debug builds).
fn all_zero(bytes: &[u8]) -> bool {
    bytes.chunks(ZEROES.len()).all(|c| c == &ZEROES[..c.len()])
}

/// Classes and counts to cycle: under miri, the three smallest classes.
fn classes() -> &'static [usize] {
    if cfg!(miri) {
        &DEFAULT_SIZE_CLASSES[..3]
    } else {
        &DEFAULT_SIZE_CLASSES
    }
}

/// How many buffers of a class to dirty: more than the releasing thread's two
/// magazines hold (the rule `Builder::magazine_capacity` documents), so whole
/// magazines pass through the depot.
fn count(size: usize) -> usize {
    let magazine = ((1 << 20) / size).clamp(1, magpool::DEFAULT_MAGAZINE_CAPACITY);
    if cfg!(miri) {
        3
    } else {
        2 * magazine + 3
    }
}

/// Gets `count(size)` buffers of every class at full capacity and checks each
/// is zero over its whole capacity; returns them, still held, and the first
/// stale one found (reported, not asserted, so that a failure cannot leave the
/// other thread waiting at a barrier).
fn get_and_check<'p>(pool: &'p Pool, who: &str) -> (Vec<Buf<'p>>, Option<String>) {
    let mut held = Vec::new();
    let mut stale = None;
    for &size in classes() {
        for i in 0..count(size) {
            let buf = pool.get(size);
            if buf.len() != size || !all_zero(&buf) {
                stale.get_or_insert(format!("{who}: buffer {i} of class {size}: {buf:?}"));
            }
            held.push(buf);
        }
    }
    (held, stale)
}

/// Thread A dirties buffers and sends them to B, which drops them: they land
/// in B's cache and, a magazine at a time, in the depot. Then A (refilling
/// from the depot) and B (from its cache) both get every class at full
/// capacity: all zero.
#[test]
fn cross_thread() {
    let pool = Pool::new();
    let (tx, rx) = mpsc::channel::<Buf<'_>>();
    let (released_tx, released_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let checked = &std::sync::Barrier::new(2);
    let pool = &pool;
    std::thread::scope(|scope| {
        let b = scope.spawn(move || {
            rx.iter().for_each(drop);
            released_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            let (held, stale) = get_and_check(pool, "B");
            checked.wait(); // both threads hold their buffers at once
            checked.wait(); // and the stats have been read
            drop(held);
            stale
        });
        for &size in classes() {
            for i in 0..count(size) {
                let mut buf = pool.with_capacity(size);
                buf.resize(size, 0xA0 | (i % 16) as u8);
                tx.send(buf).unwrap();
            }
        }
        drop(tx);
        released_rx.recv().unwrap();
        let s = pool.stats();
        assert_eq!(s.in_use, 0, "{s:#?}");
        if !cfg!(miri) {
            assert!(s.classes.iter().all(|c| c.spills > 0), "every class went through the depot: {s:#?}");
        }
        go_tx.send(()).unwrap();
        let (held, stale) = get_and_check(pool, "A");
        checked.wait();
        let s = pool.stats();
        checked.wait();
        assert_eq!(stale, None);
        assert_eq!(b.join().unwrap(), None);
        // Every dirtied buffer was handed out again, and checked: none was
        // freed, and this round, holding twice as many, allocated the rest.
        for c in &s.classes[..classes().len()] {
            let n = count(c.size) as u64;
            assert_eq!((c.allocations, c.discarded, c.in_use), (2 * n, 0, 2 * n), "class {}", c.size);
        }
        drop(held);
    });
}

/// Filling with `extend_from_slice` past the capacity moves the contents to
/// the next class; both the outgrown buffer and the grown one come back
/// zeroed over their whole capacity.
#[test]
fn growth() {
    let pool = Pool::new();
    let mut buf = pool.with_capacity(500);
    assert_eq!(buf.capacity(), 512);
    buf.extend_from_slice(&[0xFF; 512]);
    buf.extend_from_slice(&[0xEE; 300]); // past 512: into the 1 KiB class
    assert_eq!((buf.len(), buf.capacity()), (812, 1024));
    buf.resize(1024, 0xDD);
    drop(buf);
    let (small, large) = (pool.get(512), pool.get(1024));
    assert!(all_zero(&small) && all_zero(&large));
    let s = pool.stats();
    assert_eq!((s.classes[0].allocations, s.classes[1].allocations), (1, 1), "the same two blocks came back");
}

/// Only the exposed prefix is zeroed on reuse, so whatever was written
/// must be inside it: bytes written before a `truncate` or `clear` still are.
#[test]
fn shortened() {
    let pool = Pool::new();
    let rounds = if cfg!(miri) { 4 } else { 200 };
    for round in 0..rounds {
        let mut buf = pool.get(4096);
        buf.fill(0x77);
        match round % 4 {
            0 => buf.truncate(1),
            1 => buf.clear(),
            2 => buf.resize(10, 1),
            _ => {
                buf.clear();
                buf.extend_from_slice(&[5; 3]);
            }
        }
        drop(buf);
        let again = pool.get(4096);
        assert!(all_zero(&again), "round {round}");
    }
    assert_eq!(pool.stats().allocations, 1);
}

/// A buffer from `with_capacity` exposes nothing until written: writing a few
/// bytes and dropping leaves the whole class capacity zero.
#[test]
fn partly_written() {
    let pool = Pool::new();
    for &size in classes() {
        let mut buf = pool.with_capacity(size);
        buf.extend_from_slice(&[9; 10]);
        buf.push(9);
        drop(buf);
        let full = pool.get(size);
        assert_eq!(full.len(), size);
        assert!(all_zero(&full), "class {size}");
    }
    let fresh = pool.get(DEFAULT_SIZE_CLASSES[8] + 1); // oversized: fresh from the allocator
    assert!(all_zero(&fresh));
}

/// Without zeroing, a get may show an earlier user's bytes (or, in debug
/// builds, the poison written over them), but never uninitialised memory and
/// never a panic; bytes no one wrote are still zero.
#[test]
fn stale_without_zeroing() {
    let pool = Pool::builder().zero_on_release(false).build().unwrap();
    assert!(!pool.zero_on_release());
    let rounds = if cfg!(miri) { 3 } else { 100 };
    let pool = &pool;
    for round in 0..rounds {
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel::<Buf<'_>>();
            scope.spawn(move || rx.iter().for_each(drop));
            for len in [100, 512, 3000, 4096] {
                let mut buf = pool.get(len);
                buf.fill(0x5A);
                tx.send(buf).unwrap();
                let mut local = pool.with_capacity(len);
                local.resize(len / 2, 0x5A);
            }
        });
        for len in [512, 1024, 4096] {
            let buf = pool.get(len);
            assert_eq!(buf.len(), len);
            let seen: u64 = buf.iter().map(|&b| u64::from(b)).sum();
            assert!(buf.iter().all(|&b| matches!(b, 0 | 0x5A | 0xA5)), "round {round}: only written, poison or zero");
            assert!(seen <= 0xA5 * len as u64);
        }
    }
    assert_eq!(pool.stats().in_use, 0);
}

// === zero on exposure: every path that lengthens a buffer ===

/// A snooping reader: records what it finds in the buffer it is handed
/// before writing `data` into it.
struct Snoop<'a> {
    data: &'a [u8],
    seen: Vec<u8>,
}

impl std::io::Read for Snoop<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.seen.extend_from_slice(buf);
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A way a buffer can come to expose bytes, applied to a buffer from a
/// pool: returns what it exposes and what that must be.
type Path = fn(&Pool) -> (Vec<u8>, Vec<u8>);

/// Every [`Path`], named.
fn paths() -> Vec<(&'static str, Path)> {
    use std::io::Write;
    let mut paths: Vec<(&'static str, Path)> = vec![
        ("get", |pool| (pool.get(100).to_vec(), vec![0; 100])),
        ("resize", |pool| {
            let mut b = pool.with_capacity(100);
            b.resize(100, 7);
            (b.to_vec(), vec![7; 100])
        }),
        ("extend after truncate", |pool| {
            let mut b = pool.with_capacity(200);
            b.extend_from_slice(&[1; 150]);
            b.truncate(2);
            b.extend_from_slice(&[2; 3]);
            (b.to_vec(), vec![1, 1, 2, 2, 2])
        }),
        ("clear and resize", |pool| {
            let mut b = pool.get(200);
            b.fill(9);
            b.clear();
            b.resize(120, 0);
            (b.to_vec(), vec![0; 120])
        }),
        ("growth", |pool| {
            let mut b = pool.with_capacity(10);
            b.extend_from_slice(&[3; 60]);
            b.extend_from_slice(&[4; 100]); // moves to 256 B, a dirtied block
            let mut want = vec![3; 60];
            want.extend([4; 100]);
            (b.to_vec(), want)
        }),
        ("io::Write", |pool| {
            let mut b = pool.with_capacity(64);
            write!(b, "{}", "w".repeat(300)).unwrap();
            (b.to_vec(), vec![b'w'; 300])
        }),
        ("read_from", |pool| {
            let mut b = pool.with_capacity(64);
            let mut r = Snoop { data: &[1; 700], seen: Vec::new() };
            while b.read_from(&mut r).unwrap() > 0 {}
            // What the reader saw of the buffer counts as exposed too.
            let mut shown = b.to_vec();
            shown.extend(r.seen.iter().map(|&x| if x == 1 { 0 } else { x }));
            let mut want = vec![1; 700];
            want.extend(std::iter::repeat_n(0, r.seen.len()));
            (shown, want)
        }),
    ];
    paths.extend(BUFMUT);
    paths
}

/// The `BufMut` path, with the `bytes` feature.
#[cfg(not(feature = "bytes"))]
const BUFMUT: Option<(&str, Path)> = None;
#[cfg(feature = "bytes")]
const BUFMUT: Option<(&str, Path)> = Some(("BufMut", |pool| {
    use bytes::BufMut;
    let mut b = pool.with_capacity(16);
    b.put_bytes(5, 100);
    b.put_u16(0x0606);
    let chunk = b.chunk_mut();
    chunk.write_byte(0, 8);
    // SAFETY: the one byte was just written.
    unsafe { b.advance_mut(1) };
    let mut want = vec![5; 100];
    want.extend([6, 6, 8]);
    (b.to_vec(), want)
}));

/// Fills the whole capacity of a buffer of every class with 0xAB and drops
/// it: the next user of each block must not see those bytes.
fn dirty_every_block(pool: &Pool) {
    let held: Vec<_> = pool
        .size_classes()
        .iter()
        .map(|&size| {
            let mut b = pool.get(size);
            b.fill(0xAB);
            b
        })
        .collect();
    drop(held);
}

fn exposure_pool() -> Pool {
    Pool::builder().size_classes([64, 256, 1024]).magazine_capacity(1).build().unwrap()
}

#[test]
fn exposure_on_the_releasing_thread() {
    for (name, path) in paths() {
        let pool = exposure_pool();
        dirty_every_block(&pool);
        let (shown, want) = path(&pool);
        assert_eq!(shown, want, "{name}: an earlier user's bytes showed");
    }
}

#[test]
fn exposure_on_another_thread() {
    for (name, path) in paths() {
        let pool = exposure_pool();
        // Dirtied on a thread that then exits: its blocks reach the depot,
        // and this thread refills from there.
        std::thread::scope(|s| s.spawn(|| dirty_every_block(&pool)).join().unwrap());
        let (shown, want) = path(&pool);
        assert_eq!(shown, want, "{name}: an earlier user's bytes showed");
        assert!(pool.stats().classes.iter().any(|c| c.refills > 0), "{name}: the blocks came through the depot");
    }
}

/// `with_capacity` zeroes nothing: an earlier user's bytes are still in its
/// spare capacity (read here through `unsafe`, as no safe method can).
#[test]
fn with_capacity_zeroes_nothing() {
    let pool = exposure_pool();
    dirty_every_block(&pool);
    let mut b = pool.with_capacity(256);
    let spare = b.spare_capacity_mut();
    // SAFETY: every byte of a pooled block is initialised (block.rs); the
    // test reads what `MaybeUninit` keeps safe code from reading.
    let old: Vec<u8> = spare.iter().map(|x| unsafe { x.assume_init() }).collect();
    assert_eq!(old, vec![0xAB; 256], "with_capacity zeroed what it did not expose");
}
