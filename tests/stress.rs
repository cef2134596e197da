//! Four threads get buffers of random sizes over every class (and a few
//! oversized ones), fill each with a pattern of its own, and release them on
//! their own thread or hand them to the next thread to check and drop. No two
//! live buffers ever overlap, and every buffer holds its pattern until it is
//! dropped.

mod common;

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;

use magpool::{Buf, Pool, DEFAULT_SIZE_CLASSES};

use common::XorShift;

const THREADS: usize = 4;

/// Live buffers by start address: `(end, id)`. Overlap is checked on insert.
type Live = Mutex<BTreeMap<usize, (usize, u64)>>;

/// A random length: mostly small classes, some large, now and then oversized
/// (large ones are fewer so that the run spends its time in the pool, not in
/// memset). Under miri, only the three smallest classes.
fn random_len(rng: &mut XorShift) -> usize {
    let class = if cfg!(miri) {
        rng.below(3)
    } else {
        match rng.below(100) {
            0..=59 => rng.below(4),
            60..=84 => 4 + rng.below(2),
            85..=95 => 6 + rng.below(2),
            96..=98 => 8,
            _ => return DEFAULT_SIZE_CLASSES[8] + 1 + rng.below(1 << 20), // oversized
        }
    };
    let low = if class == 0 { 0 } else { DEFAULT_SIZE_CLASSES[class - 1] };
    low + 1 + rng.below(DEFAULT_SIZE_CLASSES[class] - low)
}

/// The byte a buffer is filled with: a mix of its id.
fn fill_byte(id: u64) -> u8 {
    (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 | 1
}

/// Fills `buf` with its pattern: the id at both ends, `fill_byte` between.
fn fill(buf: &mut Buf<'_>, id: u64) {
    buf.fill(fill_byte(id));
    let tag = id.to_le_bytes();
    let len = buf.len();
    let n = len.min(8);
    buf[..n].copy_from_slice(&tag[..n]);
    if len >= 16 {
        buf[len - 8..].copy_from_slice(&tag);
    }
}

/// Whether `buf` still holds the pattern of `id` (a page at a time).
fn intact(buf: &Buf<'_>, id: u64) -> bool {
    let tag = id.to_le_bytes();
    let len = buf.len();
    let n = len.min(8);
    let ends = buf[..n] == tag[..n] && (len < 16 || buf[len - 8..] == tag);
    let page = [fill_byte(id); 4096];
    let middle = if len >= 16 { &buf[8..len - 8] } else { &buf[n..] };
    ends && middle.chunks(page.len()).all(|c| c == &page[..c.len()])
}

/// The address range a buffer owns: its whole capacity.
fn range(buf: &Buf<'_>) -> (usize, usize) {
    let start = buf.as_ptr() as usize;
    (start, start + buf.capacity())
}

/// Records a new buffer, checking it overlaps no live one.
fn insert(live: &Live, buf: &Buf<'_>, id: u64) {
    let (start, end) = range(buf);
    let mut live = live.lock().unwrap();
    if let Some((&s, &(e, other))) = live.range(..=start).next_back() {
        assert!(e <= start, "buffer {id} [{start:#x}, {end:#x}) overlaps buffer {other} [{s:#x}, {e:#x})");
    }
    if let Some((&s, &(e, other))) = live.range(start..).next() {
        assert!(s >= end, "buffer {id} [{start:#x}, {end:#x}) overlaps buffer {other} [{s:#x}, {e:#x})");
    }
    live.insert(start, (end, id));
}

/// Checks a buffer's pattern, then forgets its range and drops it.
fn release(live: &Live, buf: Buf<'_>, id: u64) {
    assert!(intact(&buf, id), "buffer {id} was overwritten while live: {buf:?}");
    let (start, end) = range(&buf);
    assert_eq!(live.lock().unwrap().remove(&start), Some((end, id)), "buffer {id} was live");
    drop(buf);
}

/// One thread's part: gets, fills, keeps a few, releases at random here or
/// hands them to the next thread; checks and drops what the previous thread
/// hands over. Returns how many buffers it got.
fn worker<'p>(
    pool: &'p Pool,
    live: &Live,
    t: usize,
    next: Sender<(Buf<'p>, u64)>,
    inbox: Receiver<(Buf<'p>, u64)>,
) -> u64 {
    let ops = if cfg!(miri) { 40 } else { 3_000 };
    let mut rng = XorShift(0xDEAD_BEEF_u64.wrapping_mul(t as u64 + 1));
    let mut held: Vec<(Buf<'p>, u64)> = Vec::new();
    for op in 0..ops {
        let id = ((t as u64) << 32) | op;
        let len = random_len(&mut rng);
        let mut buf = pool.get(len);
        assert_eq!(buf.len(), len);
        insert(live, &buf, id);
        fill(&mut buf, id);
        held.push((buf, id));
        if held.len() > 8 || rng.below(2) == 0 {
            let (buf, id) = held.swap_remove(rng.below(held.len()));
            match rng.below(3) {
                0 => release(live, buf, id),
                _ => next.send((buf, id)).unwrap(),
            }
        }
        for (buf, id) in inbox.try_iter() {
            release(live, buf, id);
        }
    }
    for (buf, id) in held {
        next.send((buf, id)).unwrap();
    }
    drop(next);
    for (buf, id) in inbox {
        release(live, buf, id);
    }
    ops
}

#[test]
fn stress() {
    // A depot limit well below what the threads churn through, so buffers
    // are also freed and reallocated, not only recycled.
    let pool = Pool::builder().max_retained_bytes(32 << 20).build().unwrap();
    let live = Live::default();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel()).unzip();
    let gets: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(t, inbox)| {
                let next = senders[(t + 1) % THREADS].clone();
                let (pool, live) = (&pool, &live);
                scope.spawn(move || worker(pool, live, t, next, inbox))
            })
            .collect();
        drop(senders);
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(live.lock().unwrap().is_empty());
    let s = pool.stats();
    assert_eq!((s.gets, s.puts, s.in_use), (gets, gets, 0), "{s:?}");
    if !cfg!(miri) {
        assert!(s.oversized > 0, "{s:?}");
        assert!(s.classes.iter().all(|c| c.gets > 0), "every class: {s:?}");
        assert!(s.allocations < gets, "buffers were reused: {s:?}");
    }
}
