//! The `bytes`/`tokio` stack on pooled buffers: encoders writing through
//! `BufMut`, `freeze` into `Bytes` released on other threads, `read_from`
//! against awkward readers, `leak`, and a tokio round trip through
//! `read_buf` and `write_all_buf`.
#![cfg(feature = "bytes")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier, Mutex};

use bytes::{BufMut, Bytes};
use magpool::{Buf, Pool};

// === a counting allocator, armed per thread ===

struct Counting;

static CALLS: AtomicU64 = AtomicU64::new(0);

std::thread_local! {
    static ARMED: AtomicBool = const { AtomicBool::new(false) };
}

fn note() {
    if ARMED.try_with(|a| a.load(Relaxed)).unwrap_or(false) {
        CALLS.fetch_add(1, Relaxed);
    }
}

// SAFETY: forwards every call to `System`, only counting them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded from the caller.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocator calls this thread makes while running `f`.
fn calls_in<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = CALLS.load(Relaxed);
    ARMED.with(|a| a.store(true, Relaxed));
    let r = f();
    ARMED.with(|a| a.store(false, Relaxed));
    (CALLS.load(Relaxed) - before, r)
}

// === a prost-style encoder ===

/// A message encoded the way protobuf does it: varint tags and lengths,
/// written through `&mut impl BufMut` as prost's generated code does.
struct Record<'a> {
    id: u64,
    key: &'a [u8],
    value: &'a [u8],
}

fn put_varint(buf: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

impl Record<'_> {
    fn encode(&self, buf: &mut impl BufMut) {
        put_varint(buf, 1 << 3); // field 1, varint
        put_varint(buf, self.id);
        for (field, bytes) in [(2u64, self.key), (3, self.value)] {
            put_varint(buf, field << 3 | 2); // length-delimited
            put_varint(buf, bytes.len() as u64);
            buf.put_slice(bytes);
        }
    }

    fn encoded_len(&self) -> usize {
        let mut v = Vec::new();
        self.encode(&mut v);
        v.len()
    }
}

// === tests ===

#[test]
fn bufmut_grows_through_every_class_and_into_oversized() {
    let pool = Pool::builder().size_classes([64, 256, 1024, 4096]).build().unwrap();
    let mut buf = pool.with_capacity(1);
    let mut expected = Vec::new();
    let mut capacities = vec![buf.capacity()];
    let mut i = 0u32;
    while expected.len() < 10_000 {
        match i % 4 {
            0 => buf.put_u32(i),
            1 => buf.put_slice(&[i as u8; 13]),
            2 => buf.put_bytes(0xEE, 7),
            _ => buf.put_u64_le(u64::from(i) << 20),
        }
        match i % 4 {
            0 => expected.put_u32(i),
            1 => expected.put_slice(&[i as u8; 13]),
            2 => expected.put_bytes(0xEE, 7),
            _ => expected.put_u64_le(u64::from(i) << 20),
        }
        if capacities.last() != Some(&buf.capacity()) {
            capacities.push(buf.capacity());
        }
        i += 1;
    }
    assert_eq!(&buf[..], &expected[..], "content intact across every move");
    assert_eq!(&capacities[..5], &[64, 256, 1024, 4096, capacities[4]]);
    assert!(buf.is_oversized() && capacities[4] > 4096, "{capacities:?}");
}

#[test]
fn bufmut_makes_no_allocator_call_once_warm() {
    let pool = Pool::new();
    let record = Record { id: 7, key: b"partition-3/offset", value: &[0x5A; 900] };
    let len = record.encoded_len();
    let round = |pool: &Pool| {
        let mut buf = pool.with_capacity(64);
        for _ in 0..5 {
            record.encode(&mut buf); // 64 B → 512 B → 1 KiB → 4 KiB
        }
        assert_eq!(buf.len(), 5 * len);
    };
    round(&pool); // warm: one buffer of each class on this thread
    let (calls, ()) = calls_in(|| (0..1000).for_each(|_| round(&pool)));
    assert_eq!(calls, 0, "a warm encode-and-release makes no allocator call");
}

#[test]
fn prost_style_encoder_writes_into_pooled_memory() {
    let pool = Pool::new();
    let record = Record { id: 300, key: b"k", value: b"value" };
    let mut buf = pool.with_capacity(0);
    record.encode(&mut buf);
    assert_eq!(&buf[..], &[0x08, 0xAC, 0x02, 0x12, 0x01, b'k', 0x1A, 0x05, b'v', b'a', b'l', b'u', b'e']);
}

/// A pool for `Buf<'static>`, one per test: its stats are the test's own.
fn leaked() -> &'static Pool {
    Pool::builder().size_classes([512, 4096]).build().unwrap().leak()
}

#[test]
fn freeze_comes_home_once_from_other_threads() {
    let pool = leaked();
    // Warm: one 4 KiB block in this thread's cache, released and got again.
    drop(pool.get(4096));
    let mut buf = pool.with_capacity(4096);
    buf.put_slice(&[0xAB; 4096]); // the whole block, for the next user to not see
    let addr = buf.as_ptr() as usize;
    let bytes = buf.freeze();
    assert_eq!(bytes.as_ptr() as usize, addr, "no copy: the Bytes is the pooled block");
    let slice = bytes.slice(100..200);
    let barrier = Arc::new(Barrier::new(2));
    let (b, c) = (bytes.clone(), slice.clone());
    let t1 = std::thread::spawn(move || {
        assert_eq!(&b[..4], &[0xAB; 4]);
        drop(b);
    });
    let t2 = {
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            barrier.wait();
            drop(c); // the last reference: the block comes home on this thread
        })
    };
    t1.join().unwrap();
    drop((bytes, slice));
    barrier.wait();
    t2.join().unwrap();
    let s = pool.stats();
    assert_eq!((s.gets, s.puts, s.in_use), (2, 2, 0), "released exactly once: {s:?}");
    // It went home into the cache of the thread that dropped it last, which
    // gave it to the depot when it exited (joined): the next 4 KiB user, on
    // a fresh thread, gets it with no new allocation, and sees zeroes.
    let allocations = s.allocations;
    std::thread::spawn(move || {
        let b = pool.get(4096);
        assert_eq!(b.as_ptr() as usize, addr, "the frozen block itself");
        assert!(b.iter().all(|&x| x == 0), "the next user sees only zeroes");
    })
    .join()
    .unwrap();
    assert_eq!(pool.stats().allocations, allocations);
}

#[test]
fn freeze_survives_the_last_drop_in_thread_teardown() {
    struct DropsLate(Mutex<Option<Bytes>>);
    impl Drop for DropsLate {
        fn drop(&mut self) {
            drop(self.0.lock().unwrap().take()); // the last Bytes, in a TLS destructor
        }
    }
    std::thread_local! {
        static LATE: DropsLate = const { DropsLate(Mutex::new(None)) };
    }
    let pool = leaked();
    std::thread::spawn(move || {
        let mut buf = pool.get(0);
        buf.put_slice(b"held by a thread-local");
        let bytes = buf.freeze();
        LATE.with(|late| *late.0.lock().unwrap() = Some(bytes));
    })
    .join()
    .unwrap();
    let s = pool.stats();
    assert_eq!((s.gets, s.puts, s.in_use), (1, 1, 0), "{s:?}");
}

#[test]
fn freeze_keeps_the_dirty_mark_for_the_next_user() {
    let pool = leaked();
    let mut buf = pool.get(512);
    buf.fill(0xAB);
    drop(buf.freeze());
    let next = pool.get(512);
    assert!(next.iter().all(|&x| x == 0), "the frozen block came home and was zeroed on exposure");
}

/// A reader that hands out its data in small pieces, with an error and an
/// interruption in the middle.
struct Awkward {
    data: Vec<u8>,
    at: usize,
    calls: usize,
}

impl Read for Awkward {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        match self.calls {
            3 => return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted")),
            5 => return Err(io::Error::other("the disk said no")),
            _ => {}
        }
        let n = buf.len().min(7).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn read_from_short_reads_errors_and_the_end() {
    let pool = Pool::builder().size_classes([16, 64]).build().unwrap();
    let data: Vec<u8> = (0..100).collect();
    let mut reader = Awkward { data: data.clone(), at: 0, calls: 0 };
    let mut buf = pool.with_capacity(1);
    let mut errors = Vec::new();
    loop {
        match buf.read_from(&mut reader) {
            Ok(0) => break,
            Ok(n) => assert!(n <= 7),
            Err(e) => {
                // Nothing read before the error is lost.
                assert_eq!(&buf[..], &data[..buf.len()]);
                errors.push(e.kind());
            }
        }
    }
    assert_eq!(errors, [io::ErrorKind::Interrupted, io::ErrorKind::Other]);
    assert_eq!(&buf[..], &data[..]);
    assert!(buf.is_oversized(), "grew past the largest class: {}", buf.capacity());
    // At the end of the stream, and again: Ok(0), nothing changes.
    assert_eq!(buf.read_from(&mut reader).unwrap(), 0);
    assert_eq!(buf.len(), 100);
}

#[test]
fn read_from_refuses_a_reader_that_claims_too_much() {
    struct Liar;
    impl Read for Liar {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            Ok(buf.len() + 1)
        }
    }
    let pool = Pool::new();
    let mut buf = pool.with_capacity(10);
    buf.extend_from_slice(b"kept");
    let err = buf.read_from(&mut Liar).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(&buf[..], b"kept");
}

#[test]
fn leak_gives_static_buffers() {
    let pool: &'static Pool = Pool::new().leak();
    let buf: Buf<'static> = pool.get(10);
    let handle = std::thread::spawn(move || buf.len());
    assert_eq!(handle.join().unwrap(), 10);
    assert_eq!(pool.stats().in_use, 0);
}

/// The service loop of the README: read a request into a pooled `Buf` with
/// `read_buf`, encode the reply through `BufMut`, `freeze` it, write it with
/// `write_all_buf`, and let the reply's block go home on whichever worker
/// thread drops it.
#[test]
fn tokio_read_buf_and_write_all_buf() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    let pool = leaked();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = pool.with_capacity(512);
            while !request.ends_with(b"\n") {
                let n = socket.read_buf(&mut request).await.unwrap();
                assert!(n > 0, "the client hung up mid-request");
            }
            let mut reply = pool.with_capacity(request.len() + 16);
            reply.put_slice(b"echo: ");
            reply.put_slice(&request);
            drop(request);
            let mut reply = reply.freeze();
            let keep = reply.clone();
            socket.write_all_buf(&mut reply).await.unwrap();
            // The last reference goes on another task, maybe another thread.
            tokio::spawn(async move { drop(keep) }).await.unwrap();
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        let line = vec![b'x'; 3000].into_iter().chain([b'\n']).collect::<Vec<u8>>();
        client.write_all(&line).await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        server.await.unwrap();
        assert_eq!(&answer[..6], b"echo: ");
        assert_eq!(&answer[6..], &line[..]);
    });
    drop(runtime);
    let s = pool.stats();
    assert_eq!((s.in_use, s.gets, s.puts), (0, s.puts, s.gets), "every buffer came home: {s:?}");
    assert!(s.gets >= 2);
}
