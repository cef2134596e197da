//! The `ops` harness: an arbitrary program of operations on one pool, run by several
//! threads, checked after every step against a plain model.
//!
//! Each virtual thread is a real thread that runs one command at a time while
//! the driver waits for its reply, so a program runs deterministically through
//! the pool's real thread caches, cross-thread releases, thread-exit flushes
//! and depot. After every step the driver checks that the contents of live
//! buffers are intact, that every buffer handed out was zeroed, that no two
//! live buffers overlap, and that the pool's counters equal the model's.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::{self, Scope, ScopedJoinHandle};

use arbitrary::Arbitrary;
use magpool::{Buf, Pool, MAGAZINE_GROWTH};

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
}

enum Cmd<'p> {
    Get(usize, bool),
    Append(Buf<'p>, Vec<u8>),
    Release(Buf<'p>),
    Trim,
}

struct Worker<'scope, 'p> {
    tx: Sender<Cmd<'p>>,
    rx: Receiver<Option<Buf<'p>>>,
    handle: ScopedJoinHandle<'scope, ()>,
}

fn spawn<'scope, 'p: 'scope>(scope: &'scope Scope<'scope, '_>, pool: &'p Pool) -> Worker<'scope, 'p> {
    let (tx, cmds) = channel::<Cmd<'p>>();
    let (replies, rx) = channel();
    let handle = scope.spawn(move || {
        for cmd in cmds {
            let reply = match cmd {
                Cmd::Get(len, false) => Some(pool.get(len)),
                Cmd::Get(capacity, true) => Some(pool.with_capacity(capacity)),
                Cmd::Append(mut buf, bytes) => {
                    buf.extend_from_slice(&bytes);
                    Some(buf)
                }
                Cmd::Release(buf) => {
                    drop(buf);
                    None
                }
                Cmd::Trim => {
                    pool.trim();
                    None
                }
            };
            replies.send(reply).unwrap();
        }
    });
    Worker { tx, rx, handle }
}

impl<'p> Worker<'_, 'p> {
    fn run(&self, cmd: Cmd<'p>) -> Option<Buf<'p>> {
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

/// What the counters must say.
#[derive(Default)]
struct Model {
    gets: u64,
    puts: u64,
    oversized: u64,
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
    let buf = worker.run(Cmd::Get(capacity, false)).unwrap();
    model.take(capacity);
    assert!(buf.iter().all(|&b| b == 0), "a released block came back with old bytes in it");
    model.puts += 1;
    worker.run(Cmd::Release(buf));
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8) | 1).collect()
}

fn check(pool: &Pool, live: &[Live<'_>], model: &Model) {
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
    // The depot's limit plus two magazines per class in each live thread, at
    // their grown size.
    let grown = |size: usize| (MAGAZINE_BYTES * MAGAZINE_GROWTH / size).clamp(1, MAGAZINE);
    let caches: usize = CLASSES.iter().map(|&size| THREADS * 2 * grown(size) * size).sum();
    assert!(s.retained_bytes <= (LIMIT + caches) as u64, "retained {} bytes", s.retained_bytes);
}

/// Runs a program, checking the pool against the model after every step.
pub fn run(ops: &[Op]) {
    let pool = Pool::builder()
        .size_classes(CLASSES)
        .magazine_capacity(MAGAZINE)
        .magazine_bytes(MAGAZINE_BYTES)
        .max_retained_bytes(LIMIT)
        .build()
        .unwrap();
    let mut live: Vec<Live<'_>> = Vec::new();
    let mut model = Model::default();
    thread::scope(|scope| {
        let mut workers: Vec<Worker<'_, '_>> = (0..THREADS).map(|_| spawn(scope, &pool)).collect();
        for op in ops {
            step(op, &pool, scope, &mut workers, &mut live, &mut model);
            check(&pool, &live, &model);
        }
        for l in live.drain(..) {
            model.puts += u64::from(l.buf.capacity() > 0);
            workers[0].run(Cmd::Release(l.buf));
        }
        workers.into_iter().for_each(Worker::exit);
        check(&pool, &live, &model);
    });
}

fn step<'scope, 'p: 'scope>(
    op: &Op,
    pool: &'p Pool,
    scope: &'scope Scope<'scope, '_>,
    workers: &mut [Worker<'scope, 'p>],
    live: &mut Vec<Live<'p>>,
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
            let buf = workers[pick(thread, THREADS)].run(Cmd::Get(len, with_capacity)).unwrap();
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
            let buf = worker.run(Cmd::Append(buf, bytes.clone())).unwrap();
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
        Op::Flush { thread } => {
            let t = pick(thread, THREADS);
            let fresh = spawn(scope, pool);
            std::mem::replace(&mut workers[t], fresh).exit();
        }
        Op::Trim { thread } => {
            workers[pick(thread, THREADS)].run(Cmd::Trim);
        }
        _ => {} // an op on a buffer when none is live
    }
}
