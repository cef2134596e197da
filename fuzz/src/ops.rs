//! The `ops` harness: an arbitrary program of operations on one byte pool and
//! one object pool, run by several threads, checked after every step against
//! a plain model.
//!
//! Each virtual thread is a real thread that runs one command at a time while
//! the driver waits for its reply, so a program runs deterministically through
//! the pool's real thread caches, cross-thread releases, thread-exit flushes
//! and depot. After every step the driver checks that the contents of live
//! buffers are intact, that every buffer handed out was zeroed (the bytes it
//! exposes: `get`, and what `read_from` lends a reader), that no two live
//! buffers overlap, and that the pool's counters equal the model's; and the
//! same for the objects of an `ObjectPool<Vec<u8>>`: each handed out empty,
//! its contents intact while held, the counters exact.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::{self, Scope, ScopedJoinHandle};

use arbitrary::Arbitrary;
use magpool::{Buf, Clear, ObjectPool, Pool, Pooled, MAGAZINE_GROWTH};

const THREADS: usize = 2;
const CLASSES: [usize; 4] = [16, 64, 256, 1024];
/// Most buffers per magazine.
const MAGAZINE: usize = 8;
/// Byte budget per magazine: 8 buffers of 16 and 64 B, 2 of 256 B and 1 of
/// 1 KiB, so the depot sees much traffic in the classes most lengths fall
/// in; a thread that swings grows its magazines to 8 buffers of 256 B and 2
/// of 1 KiB (`MAGAZINE_GROWTH`).
const MAGAZINE_BYTES: usize = 512;
const LIMIT: usize = 2048;
/// The most one thread caches: less than two grown magazines of every
/// class, so the bound bites.
const THREAD_BYTES: usize = 3 * 1024;
/// The object pool: new `Vec`s with room for 4, kept up to 64.
const OBJECT_POLICY: Clear = Clear::new(4, 64);
/// Lengths reach past the largest class, so oversized buffers appear too.
const MAX_LEN: usize = 2 * 1024;

/// One step of a program.
#[derive(Arbitrary, Debug)]
pub enum Op {
    /// With `whole`, the length is rounded up to its class size, so that the
    /// zeroing check sees every byte of a reused block.
    Get {
        thread: u8,
        len: u16,
        whole: bool,
    },
    WithCapacity {
        thread: u8,
        capacity: u16,
    },
    /// Overwrites a live buffer's bytes (no pool call).
    Write {
        buf: u8,
        seed: u8,
    },
    /// Appends on a thread; past the capacity this grows into a larger class.
    Append {
        thread: u8,
        buf: u8,
        len: u16,
        seed: u8,
    },
    Truncate {
        buf: u8,
        len: u16,
    },
    Release {
        thread: u8,
        buf: u8,
    },
    /// The thread exits (its cache is flushed to the depot) and a fresh one
    /// takes its place.
    Flush {
        thread: u8,
    },
    Trim {
        thread: u8,
    },
    /// Reads into a live buffer's spare capacity from a reader that looks at
    /// what it is lent before writing (growing by class when full).
    ReadFrom {
        thread: u8,
        buf: u8,
        len: u16,
        seed: u8,
    },
    /// `reclaim_idle` on both pools, from a thread.
    Reclaim {
        thread: u8,
    },
    /// An object from the object pool.
    GetObject {
        thread: u8,
    },
    /// Appends to a live object (it may grow past the policy's bound).
    PushObject {
        obj: u8,
        len: u8,
        seed: u8,
    },
    ReleaseObject {
        thread: u8,
        obj: u8,
    },
}

enum Cmd<'p> {
    Get(usize, bool),
    Append(Buf<'p>, Vec<u8>),
    ReadFrom(Buf<'p>, Vec<u8>),
    Release(Buf<'p>),
    Trim,
    Reclaim,
    GetObject,
    ReleaseObject(Pooled<'p, Vec<u8>>),
}

/// What a worker sends back.
enum Reply<'p> {
    Buf(Buf<'p>),
    /// A buffer after `read_from`, and whether the reader saw only zeroes.
    Read(Buf<'p>, bool),
    Object(Pooled<'p, Vec<u8>>),
    Done,
}

impl<'p> Reply<'p> {
    fn buf(self) -> Buf<'p> {
        match self {
            Reply::Buf(buf) | Reply::Read(buf, _) => buf,
            _ => panic!("expected a buffer"),
        }
    }
}

/// A reader that records whether the buffer it is lent held anything but
/// zeroes, then writes `data` into it a few bytes at a time.
struct Snoop<'a> {
    data: &'a [u8],
    clean: bool,
}

impl std::io::Read for Snoop<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.clean &= buf.iter().all(|&b| b == 0);
        let n = buf.len().min(self.data.len()).min(97);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

struct Worker<'scope, 'p> {
    tx: Sender<Cmd<'p>>,
    rx: Receiver<Reply<'p>>,
    handle: ScopedJoinHandle<'scope, ()>,
}

/// The two pools a program runs on.
struct Pools {
    bytes: Pool,
    objects: ObjectPool<Vec<u8>>,
}

fn spawn<'scope, 'p: 'scope>(scope: &'scope Scope<'scope, '_>, pools: &'p Pools) -> Worker<'scope, 'p> {
    let (tx, cmds) = channel::<Cmd<'p>>();
    let (replies, rx) = channel();
    let pool = &pools.bytes;
    let handle = scope.spawn(move || {
        for cmd in cmds {
            let reply = match cmd {
                Cmd::Get(len, false) => Reply::Buf(pool.get(len)),
                Cmd::Get(capacity, true) => Reply::Buf(pool.with_capacity(capacity)),
                Cmd::Append(mut buf, bytes) => {
                    buf.extend_from_slice(&bytes);
                    Reply::Buf(buf)
                }
                Cmd::ReadFrom(mut buf, bytes) => {
                    let mut reader = Snoop { data: &bytes, clean: true };
                    while buf.read_from(&mut reader).unwrap() > 0 {}
                    Reply::Read(buf, reader.clean)
                }
                Cmd::Release(buf) => {
                    drop(buf);
                    Reply::Done
                }
                Cmd::Trim => {
                    pool.trim();
                    Reply::Done
                }
                Cmd::Reclaim => {
                    pool.reclaim_idle();
                    pools.objects.reclaim_idle();
                    Reply::Done
                }
                Cmd::GetObject => Reply::Object(pools.objects.get()),
                Cmd::ReleaseObject(object) => {
                    drop(object);
                    Reply::Done
                }
            };
            replies.send(reply).unwrap();
        }
    });
    Worker { tx, rx, handle }
}

impl<'p> Worker<'_, 'p> {
    fn run(&self, cmd: Cmd<'p>) -> Reply<'p> {
        self.tx.send(cmd).unwrap();
        self.rx.recv().unwrap()
    }

    /// Ends the thread and waits until it has fully exited (TLS destructors,
    /// and with them the cache flush, included).
    fn exit(self) {
        drop(self.tx);
        self.handle.join().unwrap();
    }
}

/// A live buffer and the bytes it must hold.
struct Live<'p> {
    buf: Buf<'p>,
    data: Vec<u8>,
}

/// A live object and the bytes it must hold.
struct LiveObject<'p> {
    object: Pooled<'p, Vec<u8>>,
    data: Vec<u8>,
}

/// What the counters must say.
#[derive(Default)]
struct Model {
    gets: u64,
    puts: u64,
    oversized: u64,
    /// The object pool's gets and puts, and the objects its policy refused.
    object_gets: u64,
    object_puts: u64,
    refused: u64,
}

impl Model {
    /// A block for `size` bytes was taken (`size > 0`).
    fn take(&mut self, size: usize) {
        self.gets += 1;
        self.oversized += u64::from(size > CLASSES[3]);
    }
}

/// Right after a thread releases a pooled block of `capacity` bytes, takes a
/// whole-class buffer of that class on the same thread: magazines are LIFO,
/// so it is the block just released, and every byte of it must be zero.
fn probe<'p>(worker: &Worker<'_, 'p>, capacity: usize, model: &mut Model) {
    if capacity == 0 || capacity > CLASSES[3] {
        return; // nothing pooled: empty or oversized
    }
    let buf = worker.run(Cmd::Get(capacity, false)).buf();
    model.take(capacity);
    assert!(buf.iter().all(|&b| b == 0), "a released block came back with old bytes in it");
    model.puts += 1;
    worker.run(Cmd::Release(buf));
}

/// The capacity a full buffer of capacity `cap` grows to, and the size of
/// the block taken for it, when it needs room for `needed` bytes: the class
/// that holds them, or past the largest class, double (`Buf::grow`).
fn grown_capacity(cap: usize, needed: usize) -> (usize, usize) {
    match CLASSES.iter().copied().find(|&c| c >= needed) {
        Some(class) => (class, class),
        None => {
            let size = needed.max(cap * 2);
            (size, size)
        }
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8) | 1).collect()
}

fn check(pools: &Pools, live: &[Live<'_>], objects: &[LiveObject<'_>], model: &Model) {
    let pool = &pools.bytes;
    for (k, o) in objects.iter().enumerate() {
        assert!(o.object[..] == o.data[..], "object {k} changed under its owner");
    }
    let s = pools.objects.stats();
    assert_eq!((s.gets, s.puts, s.in_use), (model.object_gets, model.object_puts, objects.len() as u64));
    assert!(s.discarded >= model.refused, "refused objects are counted as discarded: {s:?}");
    assert_eq!(s.allocations - s.discarded - s.in_use, s.retained_bytes / size_of::<Vec<u8>>() as u64);
    for (k, l) in live.iter().enumerate() {
        assert!(l.buf[..] == l.data[..], "buffer {k} changed under its owner");
        assert!(l.buf.len() <= l.buf.capacity());
    }
    let mut spans: Vec<(usize, usize)> =
        live.iter().filter(|l| l.buf.capacity() > 0).map(|l| (l.buf.as_ptr() as usize, l.buf.capacity())).collect();
    spans.sort_unstable();
    for w in spans.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "live buffers overlap: {w:?}");
    }
    let s = pool.stats();
    assert_eq!((s.gets, s.puts, s.oversized), (model.gets, model.puts, model.oversized));
    assert_eq!(s.in_use, live.iter().filter(|l| l.buf.capacity() > 0).count() as u64);
    assert!(s.depot_bytes <= LIMIT as u64, "depot holds {} > {LIMIT}", s.depot_bytes);
    for c in &s.classes {
        let held = c.allocations - c.discarded - c.in_use;
        assert_eq!(c.retained_bytes, held * c.size as u64);
    }
    // The depot's limit plus, in each live thread, two magazines per class
    // at their grown size, and never more than the thread bound.
    let grown = |size: usize| (MAGAZINE_BYTES * MAGAZINE_GROWTH / size).clamp(1, MAGAZINE);
    let caches: usize = CLASSES.iter().map(|&size| 2 * grown(size) * size).sum();
    let per_thread = caches.min(THREAD_BYTES);
    assert!(s.retained_bytes <= (LIMIT + THREADS * per_thread) as u64, "retained {} bytes", s.retained_bytes);
    assert!(s.thread_cached_bytes <= (THREADS * THREAD_BYTES) as u64, "threads cache {}", s.thread_cached_bytes);
}

/// Runs a program, checking the pool against the model after every step.
pub fn run(ops: &[Op]) {
    let bytes = Pool::builder()
        .size_classes(CLASSES)
        .magazine_capacity(MAGAZINE)
        .magazine_bytes(MAGAZINE_BYTES)
        .max_retained_bytes(LIMIT)
        .thread_cache_bytes(THREAD_BYTES)
        .build()
        .unwrap();
    let objects = ObjectPool::builder(OBJECT_POLICY)
        .magazine_capacity(2)
        .thread_cache_objects(6)
        .max_retained(4)
        .build()
        .unwrap();
    let pools = Pools { bytes, objects };
    let mut live: Vec<Live<'_>> = Vec::new();
    let mut objects: Vec<LiveObject<'_>> = Vec::new();
    let mut model = Model::default();
    thread::scope(|scope| {
        let mut workers: Vec<Worker<'_, '_>> = (0..THREADS).map(|_| spawn(scope, &pools)).collect();
        for op in ops {
            step(op, &pools, scope, &mut workers, &mut live, &mut objects, &mut model);
            check(&pools, &live, &objects, &model);
        }
        for l in live.drain(..) {
            model.puts += u64::from(l.buf.capacity() > 0);
            workers[0].run(Cmd::Release(l.buf));
        }
        for o in objects.drain(..) {
            release_object(&workers[1], o, &mut model);
        }
        workers.into_iter().for_each(Worker::exit);
        check(&pools, &live, &objects, &model);
    });
}

/// Releases an object on `worker`'s thread and counts what the pool must.
fn release_object<'p>(worker: &Worker<'_, 'p>, o: LiveObject<'p>, model: &mut Model) {
    model.object_puts += 1;
    model.refused += u64::from(o.object.capacity() > OBJECT_POLICY.max_capacity);
    worker.run(Cmd::ReleaseObject(o.object));
}

#[allow(clippy::too_many_arguments)] // the harness's whole state, passed down once
fn step<'scope, 'p: 'scope>(
    op: &Op,
    pools: &'p Pools,
    scope: &'scope Scope<'scope, '_>,
    workers: &mut [Worker<'scope, 'p>],
    live: &mut Vec<Live<'p>>,
    objects: &mut Vec<LiveObject<'p>>,
    model: &mut Model,
) {
    let pick = |k: u8, n: usize| k as usize % n;
    match *op {
        Op::Get { thread, len, .. } | Op::WithCapacity { thread, capacity: len } => {
            let with_capacity = matches!(op, Op::WithCapacity { .. });
            let mut len = len as usize % MAX_LEN;
            if let Op::Get { whole: true, .. } = op {
                len = CLASSES.iter().copied().find(|&c| c >= len).unwrap_or(len);
            }
            let buf = workers[pick(thread, THREADS)].run(Cmd::Get(len, with_capacity)).buf();
            if len > 0 {
                model.take(len);
            }
            let data = vec![0; if with_capacity { 0 } else { len }];
            assert!(buf[..] == data[..], "a buffer was handed out holding old bytes");
            live.push(Live { buf, data });
        }
        Op::Write { buf, seed } if !live.is_empty() => {
            let k = pick(buf, live.len());
            let l = &mut live[k];
            l.data = pattern(l.data.len(), seed);
            l.buf.copy_from_slice(&l.data);
        }
        Op::Append { thread, buf, len, seed } if !live.is_empty() => {
            let k = pick(buf, live.len());
            let Live { buf, mut data } = live.swap_remove(k);
            let (old_cap, bytes) = (buf.capacity(), pattern(len as usize % MAX_LEN, seed));
            let needed = data.len() + bytes.len();
            let worker = &workers[pick(thread, THREADS)];
            let buf = worker.run(Cmd::Append(buf, bytes.clone())).buf();
            if needed > old_cap {
                model.take(needed); // growth: a new block, the old one released
                model.puts += u64::from(old_cap > 0);
                probe(worker, old_cap, model);
            }
            data.extend_from_slice(&bytes);
            live.push(Live { buf, data });
        }
        Op::Truncate { buf, len } if !live.is_empty() => {
            let k = pick(buf, live.len());
            let l = &mut live[k];
            let len = len as usize % (l.data.len() + 1); // mostly a real cut
            l.buf.truncate(len);
            l.data.truncate(len);
        }
        Op::Release { thread, buf } if !live.is_empty() => {
            let l = live.swap_remove(pick(buf, live.len()));
            let capacity = l.buf.capacity();
            model.puts += u64::from(capacity > 0);
            let worker = &workers[pick(thread, THREADS)];
            worker.run(Cmd::Release(l.buf));
            probe(worker, capacity, model);
        }
        Op::ReadFrom { thread, buf, len, seed } if !live.is_empty() => {
            let k = pick(buf, live.len());
            let Live { buf, mut data } = live.swap_remove(k);
            let (old_cap, bytes) = (buf.capacity(), pattern(len as usize % MAX_LEN, seed));
            let worker = &workers[pick(thread, THREADS)];
            let (buf, clean) = match worker.run(Cmd::ReadFrom(buf, bytes.clone())) {
                Reply::Read(buf, clean) => (buf, clean),
                _ => unreachable!("a read replies with its buffer"),
            };
            assert!(clean, "read_from lent a reader a buffer holding an earlier user's bytes");
            // Each full buffer grew by one class (or, oversized, doubled):
            // count every block taken on the way.
            // Mirrors the calls `read_from` made: each grows a full buffer
            // first, then reads at most 97 bytes; the last one reads 0.
            let mut cap = old_cap;
            let mut len_now = data.len();
            let mut left = bytes.len();
            loop {
                if len_now == cap {
                    let grown = grown_capacity(cap, len_now + 1);
                    model.take(grown.1);
                    model.puts += u64::from(cap > 0);
                    cap = grown.0;
                }
                let n = left.min(cap - len_now).min(97);
                if n == 0 {
                    break;
                }
                len_now += n;
                left -= n;
            }
            assert_eq!(buf.capacity(), cap, "read_from grew by class");
            data.extend_from_slice(&bytes);
            live.push(Live { buf, data });
        }
        Op::Flush { thread } => {
            let t = pick(thread, THREADS);
            let fresh = spawn(scope, pools);
            std::mem::replace(&mut workers[t], fresh).exit();
        }
        Op::Trim { thread } => {
            workers[pick(thread, THREADS)].run(Cmd::Trim);
        }
        Op::Reclaim { thread } => {
            workers[pick(thread, THREADS)].run(Cmd::Reclaim);
        }
        Op::GetObject { thread } if objects.len() < 16 => {
            let object = match workers[pick(thread, THREADS)].run(Cmd::GetObject) {
                Reply::Object(object) => object,
                _ => unreachable!("a get replies with its object"),
            };
            model.object_gets += 1;
            assert!(object.is_empty(), "an object was handed out holding its last user's contents");
            objects.push(LiveObject { object, data: Vec::new() });
        }
        Op::PushObject { obj, len, seed } if !objects.is_empty() => {
            let k = pick(obj, objects.len());
            let o = &mut objects[k];
            let bytes = pattern(len as usize, seed);
            o.object.extend_from_slice(&bytes);
            o.data.extend_from_slice(&bytes);
        }
        Op::ReleaseObject { thread, obj } if !objects.is_empty() => {
            let o = objects.swap_remove(pick(obj, objects.len()));
            release_object(&workers[pick(thread, THREADS)], o, model);
        }
        _ => {} // an op on a buffer when none is live
    }
}
