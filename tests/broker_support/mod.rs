//! What the broker tests share: a server started in-process on a loopback
//! port (the example's own `server::start`, included by path by each test
//! file), a small blocking RESP client with timeouts, and the idle check
//! (every network buffer back in its pool, and the server still answering).
#![allow(dead_code, reason = "each test file uses part of it")]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::netbuf::{Mode, Plain, Pooled};
use crate::segment::{Fsync, LogConfig};
use crate::server::{self, Running, ServerConfig};
use crate::writer::WriterConfig;

/// How long any one read or write of a test may take.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A server of the tests, with its log directory.
pub(crate) struct TestServer<M: Mode> {
    pub(crate) running: Running<M>,
    pub(crate) addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// The tests' configuration: small batches and segments (so fetches cross
/// batches and the log rolls), `max_request` as given.
pub(crate) fn config(dir: &std::path::Path, max_request: usize) -> ServerConfig {
    ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        dir: dir.to_path_buf(),
        max_request,
        max_clients: 64,
        max_streams: 4,
        max_range: 5_000,
        workers: 2,
        writer: WriterConfig {
            batch_bytes: 4 << 10,
            log: LogConfig { segment_bytes: 1 << 20, index_interval: 1024, fsync: Fsync::Never },
        },
    }
}

/// A magpool server (with pools of its own) allowing `max_request` bytes.
pub(crate) fn pooled(max_request: usize) -> (TestServer<Pooled>, Pooled) {
    let mode = Pooled::new();
    (start(mode, |dir| config(dir, max_request)), mode)
}

/// A `BytesMut` server allowing `max_request` bytes.
pub(crate) fn plain(max_request: usize) -> TestServer<Plain> {
    start(Plain, |dir| config(dir, max_request))
}

pub(crate) fn start<M: Mode>(mode: M, config: impl FnOnce(&std::path::Path) -> ServerConfig) -> TestServer<M> {
    let dir = tempfile::tempdir().unwrap();
    let running = server::start(mode, config(dir.path())).unwrap();
    let addr = running.addr();
    TestServer { running, addr, _dir: dir }
}

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Reply {
    pub(crate) fn bulk(bytes: &[u8]) -> Reply {
        Reply::Bulk(Some(bytes.to_vec()))
    }
    pub(crate) fn ok() -> Reply {
        Reply::Simple("OK".into())
    }
}

/// A blocking client on one connection.
pub(crate) struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub(crate) fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client { reader: BufReader::new(stream) }
    }

    /// Sends raw bytes.
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// Sends a command as a multibulk array.
    pub(crate) fn send(&mut self, args: &[&[u8]]) {
        self.send_raw(&encode(args));
    }

    /// Sends a command and reads its reply.
    pub(crate) fn call(&mut self, args: &[&[u8]]) -> Reply {
        self.send(args);
        self.reply().unwrap()
    }

    /// Reads one reply.
    pub(crate) fn reply(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader)
    }

    /// Half-closes: the server sees the end of the stream.
    pub(crate) fn shutdown_write(&mut self) {
        let _ = self.reader.get_mut().shutdown(Shutdown::Write);
    }

    /// Whether the server closed the connection: a read sees the end.
    pub(crate) fn closed_by_server(&mut self) -> bool {
        let mut byte = [0];
        matches!(self.reader.read(&mut byte), Ok(0))
    }

    /// Sets how long a read may wait.
    pub(crate) fn read_timeout(&mut self, timeout: Duration) {
        self.reader.get_mut().set_read_timeout(Some(timeout)).unwrap();
    }
}

/// `args` as a multibulk request.
pub(crate) fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn line(r: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    Ok(line.trim_end_matches("\r\n").to_string())
}

fn read_reply(r: &mut BufReader<TcpStream>) -> io::Result<Reply> {
    let head = line(r)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad reply line {head:?}"));
    let (kind, rest) = head.split_at(1);
    Ok(match kind {
        "+" => Reply::Simple(rest.into()),
        "-" => Reply::Error(rest.into()),
        ":" => Reply::Int(rest.parse().map_err(|_| bad())?),
        "$" => match rest.parse::<i64>().map_err(|_| bad())? {
            -1 => Reply::Bulk(None),
            n => {
                let mut bytes = vec![0; n as usize + 2];
                r.read_exact(&mut bytes)?;
                assert_eq!(&bytes[n as usize..], b"\r\n", "a bulk string ends in CRLF");
                bytes.truncate(n as usize);
                Reply::Bulk(Some(bytes))
            }
        },
        "*" => {
            let n: usize = rest.parse().map_err(|_| bad())?;
            (0..n).map(|_| read_reply(r)).collect::<io::Result<Vec<_>>>().map(Reply::Array)?
        }
        _ => return Err(bad()),
    })
}

/// Waits (at most 5 s) until the net pool has every buffer back, then
/// checks that the server still answers a new client, and that its net
/// pool is back to 0 after that client leaves too.
pub(crate) fn assert_idle<M: Mode>(server: &TestServer<M>, mode: &Pooled) {
    wait_in_use_zero(mode);
    let mut client = Client::connect(server.addr);
    assert_eq!(client.call(&[b"PING"]), Reply::Simple("PONG".into()), "the server still answers");
    drop(client);
    wait_in_use_zero(mode);
}

/// Waits (at most 5 s) for the net pool's `in_use` to reach 0: the
/// connections' tasks end a little after their clients leave.
pub(crate) fn wait_in_use_zero(mode: &Pooled) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let in_use = mode.net.stats().in_use;
        if in_use == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "net pool in_use stays at {in_use}: a buffer was lost");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `n` bytes that differ from one position to the next and hold every
/// byte value, CR and LF included.
pub(crate) fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
}
