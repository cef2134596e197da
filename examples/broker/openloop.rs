//! An open-loop generator, beside `redis-benchmark` (not instead of it):
//! requests at a fixed rate whatever the server does, so latency is not
//! throttled by the client waiting for replies. `redis-benchmark` is
//! closed-loop: at saturation its latencies are its queue depth over the
//! server's throughput.
//!
//! Each connection has a sender thread, which writes its share of the
//! requests at their scheduled times (spread evenly, the connections offset
//! from each other), and a reader thread, which takes the replies in order.
//! A request's latency runs from its *scheduled* send time to its reply, so
//! a server that stalls is charged for the requests that could not be sent
//! meanwhile (Gil Tene's coordinated-omission correction). Requests are
//! half `SET`, half `GET` of keys set in a warm-up pass, with value sizes
//! drawn from the segment log's mix, 1 MiB values included.
//!
//! # Invariants
//!
//! - Bounded: a fixed number of requests per connection, every socket with
//!   a 30 s timeout; a reply that is an error, or missing, fails the run.
//!
//! Used by `bench.rs`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::loadgen::Measured;
use crate::records::{RecordSpec, SizeMix, SplitMix64};

/// The generator's load.
#[derive(Debug, Clone)]
pub(crate) struct OpenLoop {
    /// Requests per second, all connections together.
    pub(crate) rate: u64,
    /// Requests in all.
    pub(crate) requests: u64,
    /// Connections.
    pub(crate) connections: u32,
    /// Keys (`ol:0` ...).
    pub(crate) keyspace: u64,
    /// Value sizes.
    pub(crate) mix: SizeMix,
    /// Seed of sizes, keys and kinds.
    pub(crate) seed: u64,
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// Request `i`: whether it is a SET, its key, its value's length.
fn request(load: &OpenLoop, i: u64) -> (bool, u64, usize) {
    let mut rng = SplitMix64::new(load.seed ^ i.wrapping_mul(0x9E37_79B9));
    let set = rng.next_u64() % 2 == 0;
    let key = rng.next_u64() % load.keyspace;
    (set, key, RecordSpec::new(load.seed, i, &load.mix).value_len)
}

/// The bytes of a `SET` (with `value[..len]`) or `GET` of `key`.
fn encode(set: bool, key: u64, len: usize, value: &[u8], out: &mut Vec<u8>) {
    let key = format!("ol:{key}");
    out.clear();
    if set {
        out.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${len}\r\n", key.len()).as_bytes());
        out.extend_from_slice(&value[..len]);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes());
    }
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    Ok(stream)
}

/// Reads one reply; its value bytes are skipped. `Err` for an error reply.
fn skip_reply(r: &mut BufReader<TcpStream>, line: &mut String) -> io::Result<()> {
    line.clear();
    if r.read_line(line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
    }
    match line.as_bytes().first() {
        Some(b'+') => Ok(()),
        Some(b'$') => {
            let n: i64 = line[1..].trim_end().parse().map_err(|_| io::Error::other(format!("bad reply {line:?}")))?;
            if n >= 0 {
                io::copy(&mut r.by_ref().take(n as u64 + 2), &mut io::sink())?;
            }
            Ok(())
        }
        _ => Err(io::Error::other(format!("error reply {:?}", line.trim_end()))),
    }
}

/// Sets every key once, on one connection, one request at a time.
fn warm_up(addr: SocketAddr, load: &OpenLoop, value: &[u8]) -> io::Result<()> {
    let mut stream = connect(addr)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let (mut buf, mut line) = (Vec::new(), String::new());
    for key in 0..load.keyspace {
        let (_, _, len) = request(load, u64::MAX - key);
        encode(true, key, len, value, &mut buf);
        stream.write_all(&buf)?;
        skip_reply(&mut reader, &mut line)?;
    }
    Ok(())
}

/// Runs `load` against `addr` (after a warm-up of every key).
///
/// # Errors
///
/// On a connection failure, an error reply or a timeout.
pub(crate) fn run(addr: SocketAddr, load: &OpenLoop) -> Result<Measured, String> {
    let largest = load.mix.buckets().iter().map(|b| b.max).max().unwrap_or(0);
    let value: Vec<u8> = (0..largest).map(|i| b'a' + (i % 26) as u8).collect();
    warm_up(addr, load, &value).map_err(|e| format!("open loop warm-up: {e}"))?;
    let connections = u64::from(load.connections.max(1));
    let interval = Duration::from_secs_f64(connections as f64 / load.rate.max(1) as f64);
    let start = Instant::now() + Duration::from_millis(20);
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..connections)
            .map(|c| {
                let value = &value;
                s.spawn(move || connection(addr, load, c, connections, start, interval, value))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a load thread does not panic")).collect::<Vec<_>>()
    });
    let elapsed = start.elapsed();
    let mut hist = histogram();
    for r in results {
        hist.add(r.map_err(|e| format!("open loop: {e}"))?).expect("same bounds");
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(Measured {
        name: format!("open loop at {}/s", load.rate),
        requests: hist.len(),
        rps: hist.len() as f64 / elapsed.as_secs_f64(),
        p50: ms(0.5),
        p99: ms(0.99),
        p999: ms(0.999),
        max: hist.max() as f64 / 1000.0,
    })
}

/// Latencies in µs, up to a minute.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// Connection `c` of `n`: requests `c, c + n, ...`, the k-th of them
/// scheduled at `start + (k + c/n) × interval`.
fn connection(
    addr: SocketAddr,
    load: &OpenLoop,
    c: u64,
    n: u64,
    start: Instant,
    interval: Duration,
    value: &[u8],
) -> io::Result<Histogram<u64>> {
    let stream = connect(addr)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let (tx, rx) = mpsc::channel::<Instant>();
    std::thread::scope(|s| {
        let sender = s.spawn(move || -> io::Result<()> {
            let mut stream = stream;
            let mut buf = Vec::new();
            for (k, i) in (c..load.requests).step_by(n as usize).enumerate() {
                let at = start + interval.mul_f64(k as f64 + c as f64 / n as f64);
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let (set, key, len) = request(load, i);
                encode(set, key, len, value, &mut buf);
                tx.send(at).map_err(|_| io::Error::other("the reader stopped"))?;
                stream.write_all(&buf)?;
            }
            Ok(())
        });
        let mut hist = histogram();
        let mut line = String::new();
        for at in rx.iter() {
            skip_reply(&mut reader, &mut line)?;
            hist.saturating_record(at.elapsed().as_micros() as u64);
        }
        sender.join().expect("a sender does not panic")?;
        Ok(hist)
    })
}
