//! The commands the broker answers, one request at a time, for one
//! connection: `PING`, `ECHO`, `SET`, `GET`, `XADD`, `XRANGE`, `XLEN`,
//! `CONFIG GET`, `INFO`, `COMMAND`, `QUIT`; anything else gets Redis' own
//! `unknown command` error.
//!
//! A write (`SET`, `XADD`) is encoded into a storage buffer and sent to the
//! writer thread; its reply waits for the acknowledgement. Every other reply
//! is written at once, after the replies of the writes before it (so
//! pipelined requests are answered in order, and a `GET` sees the `SET`s
//! its connection sent before it).
//!
//! # Invariants
//!
//! - Replies leave in request order: an immediate reply first settles every
//!   pending write (`Session::settle`).
//! - A reply that fails half-way (a read error in `XRANGE`) is cut back
//!   and replaced by an error, so the reply stream stays well-formed.
//!
//! Used by `conn.rs`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use crate::bufs::{Buffers, ByteBuf};
use crate::codec::{self, Header, RECORD_PREFIX};
use crate::netbuf::{Mode, NetBuf};
use crate::resp;
use crate::server::Shared;
use crate::store::{ReadError, StreamError, KV};
use crate::writer::{Ack, Append};

/// Where a record's key starts: after the length and CRC, the timestamp
/// (8 bytes) and the key length (4 bytes); see `codec.rs`.
const KEY_AT: usize = RECORD_PREFIX + 12;
/// Replies are sent once this many bytes are pending.
const REPLY_FLUSH: usize = 64 << 10;
/// Writes awaiting acknowledgement past which a round ends.
const MAX_PENDING: usize = 256;
/// Stream fields held on the stack; more take a `Vec`.
const INLINE_FIELDS: usize = 8;

/// Whether the connection goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Read the next request.
    Continue,
    /// Close after the replies so far (`QUIT`, or the client is gone).
    Close,
}

/// A write sent to the writer thread, awaiting its acknowledgement.
#[derive(Debug, Clone, Copy)]
enum Pending {
    Set,
    XAdd,
}

/// One connection's side of the command layer.
pub(crate) struct Session<'s, M: Mode> {
    shared: &'s Shared<M>,
    ack_tx: UnboundedSender<Ack>,
    acks: UnboundedReceiver<Ack>,
    pending: VecDeque<Pending>,
    reply: M::Net,
    out: mpsc::Sender<Bytes>,
}

type Args<'r> = (&'r [u8], &'r [Range<usize>]);

fn arg<'r>((req, args): Args<'r>, i: usize) -> &'r [u8] {
    &req[args[i].clone()]
}

impl<'s, M: Mode> Session<'s, M> {
    /// A session whose replies go to `out`, frozen.
    pub(crate) fn new(shared: &'s Shared<M>, out: mpsc::Sender<Bytes>) -> Self {
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let reply = shared.mode.reply_buffer();
        Session { shared, ack_tx, acks, pending: VecDeque::with_capacity(64), reply, out }
    }

    /// Executes the request whose arguments are `args` in `req`.
    pub(crate) async fn execute(&mut self, req: &[u8], args: &[Range<usize>]) -> Flow {
        let a = (req, args);
        let Some(name) = args.first().map(|r| &req[r.clone()]) else { return Flow::Continue };
        self.shared.commands.fetch_add(1, Relaxed);
        let is = |cmd: &str| name.eq_ignore_ascii_case(cmd.as_bytes());
        let flow = if is("SET") {
            self.set(a).await
        } else if is("XADD") {
            self.xadd(a).await
        } else {
            if !self.settle().await {
                return Flow::Close;
            }
            self.immediate(a, name)
        };
        match flow {
            Flow::Continue if self.reply.len() >= REPLY_FLUSH => self.flush().await,
            flow => flow,
        }
    }

    /// Commands answered at once.
    fn immediate(&mut self, a: Args<'_>, name: &[u8]) -> Flow {
        let n = a.1.len();
        let is = |cmd: &str| name.eq_ignore_ascii_case(cmd.as_bytes());
        match () {
            _ if is("PING") && n <= 2 => match n {
                1 => resp::simple(self.out_buf(), b"PONG"),
                _ => resp::bulk(self.out_buf(), arg(a, 1)),
            },
            _ if is("ECHO") && n == 2 => resp::bulk(self.out_buf(), arg(a, 1)),
            _ if is("GET") && n == 2 => self.get(arg(a, 1)),
            _ if is("XRANGE") && (n == 4 || n == 6) => self.xrange(a),
            _ if is("XLEN") && n == 2 => self.xlen(arg(a, 1)),
            _ if is("CONFIG") && n >= 2 => self.config(a),
            _ if is("INFO") => {
                let info = crate::server::info(self.shared);
                resp::bulk(self.out_buf(), info.as_bytes());
            }
            _ if is("COMMAND") => resp::array(self.out_buf(), 0), // no command docs: clients do without
            _ if is("QUIT") => {
                resp::simple(self.out_buf(), b"OK");
                return Flow::Close;
            }
            _ if ["PING", "ECHO", "GET", "XRANGE", "XLEN", "CONFIG"].iter().any(|c| is(c)) => {
                let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                self.error(&format!("ERR wrong number of arguments for '{name}' command"));
            }
            _ => self.unknown(a),
        }
        Flow::Continue
    }

    /// The reply buffer of this round.
    fn out_buf(&mut self) -> &mut M::Net {
        &mut self.reply
    }

    fn error(&mut self, message: &str) {
        resp::error(self.out_buf(), message);
    }

    /// Redis' reply to a request that is not RESP2.
    pub(crate) fn protocol_error(&mut self, e: &resp::ProtoError) {
        self.error(&format!("ERR Protocol error: {e}"));
    }

    /// Redis' reply to an unknown command, quoting at most 128 bytes of the
    /// name and of each of the first arguments.
    fn unknown(&mut self, a: Args<'_>) {
        let quote = |bytes: &[u8]| -> String {
            let cut = &bytes[..bytes.len().min(128)];
            cut.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '?' }).collect()
        };
        let mut message = format!("ERR unknown command '{}', with args beginning with: ", quote(arg(a, 0)));
        for i in 1..a.1.len().min(4) {
            let _ = write!(message, "'{}' ", quote(arg(a, i)));
        }
        self.error(&message);
    }

    /// Whether more requests may join this round: its replies are still
    /// small and few writes await their acknowledgements.
    pub(crate) fn can_coalesce(&self) -> bool {
        self.reply.len() < REPLY_FLUSH && self.pending.len() < MAX_PENDING
    }

    /// Sends the pending replies, frozen: the writer task drops them, on
    /// whichever thread it runs.
    pub(crate) async fn flush(&mut self) -> Flow {
        if self.reply.is_empty() {
            return Flow::Continue;
        }
        match self.out.send(self.reply.split_frozen()).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Close, // the writer task stopped: the client is gone
        }
    }

    /// Waits for the acknowledgement of every pending write, in order, and
    /// writes its reply. False if the writer thread is gone.
    pub(crate) async fn settle(&mut self) -> bool {
        while let Some(kind) = self.pending.pop_front() {
            let Some(ack) = self.acks.recv().await else { return false };
            match (ack, kind) {
                (None, _) => self.error("ERR the log could not append the record; see the server's log"),
                (Some(_), Pending::Set) => resp::simple(self.out_buf(), b"OK"),
                (Some(offset), Pending::XAdd) => stream_id(self.out_buf(), offset),
            }
        }
        true
    }

    // === writes ===

    /// `SET key value`: the value goes to the kv log; the reply waits for
    /// the append.
    async fn set(&mut self, a: Args<'_>) -> Flow {
        if a.1.len() != 3 {
            let message = match a.1.len() {
                n if n > 3 => "ERR syntax error (SET options are not supported)",
                _ => "ERR wrong number of arguments for 'set' command",
            };
            return self.reply_now(|s| s.error(message)).await;
        }
        let (key, value) = (arg(a, 1), arg(a, 2));
        if self.shared.store.is_stream(key) {
            return self.reply_now(|s| s.error(WRONGTYPE)).await;
        }
        self.append(KV, key, &[], value).await
    }

    /// `XADD key * field value [field value ...]`: the fields become the
    /// record's headers; the reply is the entry's id.
    async fn xadd(&mut self, a: Args<'_>) -> Flow {
        let n = a.1.len();
        if n < 5 || n % 2 == 0 {
            return self.reply_now(|s| s.error("ERR wrong number of arguments for 'xadd' command")).await;
        }
        if arg(a, 2) != b"*" {
            let message = "ERR this broker assigns stream ids itself: XADD key * field value ...";
            return self.reply_now(|s| s.error(message)).await;
        }
        let fields = || (3..n).step_by(2).map(|i| Header { name: arg(a, i), value: arg(a, i + 1) });
        if fields().any(|h| h.name.len() > usize::from(u16::MAX)) {
            let message = "ERR stream field names are limited to 65535 bytes";
            return self.reply_now(|s| s.error(message)).await;
        }
        let log = match self.shared.store.stream_or_create(arg(a, 1)) {
            Ok(log) => log,
            Err(StreamError::WrongType) => return self.reply_now(|s| s.error(WRONGTYPE)).await,
            Err(StreamError::TooMany) => {
                let message = "ERR too many streams (see --max-streams)";
                return self.reply_now(|s| s.error(message)).await;
            }
        };
        let count = (n - 3) / 2;
        let empty = Header { name: b"", value: b"" };
        let mut inline = [empty; INLINE_FIELDS];
        let spilled: Vec<Header<'_>>;
        let headers = if count <= INLINE_FIELDS {
            fields().zip(inline.iter_mut()).for_each(|(h, slot)| *slot = h);
            &inline[..count]
        } else {
            spilled = fields().collect();
            &spilled[..]
        };
        self.append(log, arg(a, 1), headers, b"").await
    }

    /// Encodes a record into a storage buffer of its exact size and sends
    /// it to the writer thread; its reply waits in `pending`.
    async fn append(&mut self, log: usize, key: &[u8], headers: &[Header<'_>], value: &[u8]) -> Flow {
        let shared = self.shared;
        let size = RECORD_PREFIX
            + 12
            + key.len()
            + 2
            + headers.iter().map(|h| 6 + h.name.len() + h.value.len()).sum::<usize>()
            + 4
            + value.len();
        let mut record = shared.store.bufs().with_capacity(size);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        codec::encode_record_with(&mut record, now, key, headers, value.len(), |out| out.extend_from_slice(value));
        debug_assert_eq!(&record[KEY_AT..KEY_AT + key.len()], key);
        let append = Append { log, record, key: KEY_AT..KEY_AT + key.len(), ack: self.ack_tx.clone() };
        if shared.appends.send(append).await.is_err() {
            return Flow::Close; // the server is stopping
        }
        self.pending.push_back(if log == KV { Pending::Set } else { Pending::XAdd });
        Flow::Continue
    }

    /// Writes an immediate reply after the pending ones.
    async fn reply_now(&mut self, f: impl FnOnce(&mut Self)) -> Flow {
        if !self.settle().await {
            return Flow::Close;
        }
        f(self);
        Flow::Continue
    }

    // === reads ===

    /// `GET key`: the value read back from the kv log, or null.
    fn get(&mut self, key: &[u8]) {
        let store = &self.shared.store;
        let Some(offset) = store.offset_of(key) else {
            match store.is_stream(key) {
                true => self.error(WRONGTYPE),
                false => resp::null(self.out_buf()),
            }
            return;
        };
        let out = &mut self.reply;
        let result = store.read(KV, offset, |view| {
            out.reserve(resp::bulk_len(view.value.len()));
            resp::bulk(out, view.value);
        });
        if let Err(e) = result {
            self.read_failed(e);
        }
    }

    /// `XRANGE key start end [COUNT n]`: ids `-`, `+`, `ms` or `ms-seq`.
    fn xrange(&mut self, a: Args<'_>) {
        let store = &self.shared.store;
        let Some(log) = store.stream(arg(a, 1)) else {
            match store.offset_of(arg(a, 1)) {
                Some(_) => self.error(WRONGTYPE),
                None => resp::array(self.out_buf(), 0),
            }
            return;
        };
        let bounds = (start_offset(arg(a, 2)), end_offset(arg(a, 3)));
        let (Some(from), Some(to)) = bounds else {
            return self.error("ERR Invalid stream ID specified as stream command argument");
        };
        let count = match a.1.len() {
            6 if arg(a, 4).eq_ignore_ascii_case(b"COUNT") => resp::parse_u64(arg(a, 5)),
            6 => return self.error("ERR syntax error"),
            _ => Some(u64::MAX),
        };
        let Some(count) = count else { return self.error("ERR value is not an integer or out of range") };
        let to = to.min(store.log(log).appended.load(std::sync::atomic::Ordering::Acquire));
        let n = to.saturating_sub(from).min(count);
        if n > self.shared.config.max_range {
            let max = self.shared.config.max_range;
            return self.error(&format!("ERR the range holds more than {max} entries; ask for fewer with COUNT"));
        }
        let out = &mut self.reply;
        let mark = out.len();
        resp::array(out, n as usize);
        let result = store.scan(log, from, from + n, |offset, view| {
            resp::array(out, 2);
            stream_id(out, offset);
            resp::array(out, 2 * view.headers().count());
            for h in view.headers() {
                resp::bulk(out, h.name);
                resp::bulk(out, h.value);
            }
        });
        if let Err(e) = result {
            out.truncate_to(mark);
            self.read_failed(e);
        }
    }

    /// `XLEN key`: entries in the stream.
    fn xlen(&mut self, key: &[u8]) {
        let store = &self.shared.store;
        let len = match store.stream(key) {
            Some(log) => store.log(log).appended.load(std::sync::atomic::Ordering::Acquire) as i64,
            None if store.offset_of(key).is_some() => return self.error(WRONGTYPE),
            None => 0,
        };
        resp::integer(self.out_buf(), len);
    }

    /// `CONFIG GET parameter`: what `redis-benchmark` asks before it runs.
    /// There is no RDB or AOF here: the log is the storage.
    fn config(&mut self, a: Args<'_>) {
        if !arg(a, 1).eq_ignore_ascii_case(b"GET") || a.1.len() != 3 {
            return self.error("ERR this broker supports CONFIG GET parameter only");
        }
        let known: [(&[u8], &[u8]); 2] = [(b"save", b""), (b"appendonly", b"no")];
        let wanted = arg(a, 2);
        let matches = |name: &[u8]| wanted == b"*" || wanted.eq_ignore_ascii_case(name);
        let out = self.out_buf();
        resp::array(out, 2 * known.iter().filter(|(name, _)| matches(name)).count());
        for (name, value) in known.iter().filter(|(name, _)| matches(name)) {
            resp::bulk(out, name);
            resp::bulk(out, value);
        }
    }

    fn read_failed(&mut self, e: ReadError) {
        match e {
            ReadError::Log(e) => {
                eprintln!("broker: read failed: {e}");
                self.error("ERR the log could not be read; see the server's log");
            }
            ReadError::Missing(offset) => self.error(&format!("ERR offset {offset} is missing from the log")),
        }
    }
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// A stream entry's id as a bulk string: `offset + 1` then `-0`.
fn stream_id(out: &mut impl NetBuf, offset: u64) {
    let mut id = [0u8; 24];
    let mut cursor = &mut id[..];
    resp::decimal(&mut cursor, (offset + 1) as i64);
    let len = 24 - cursor.len();
    resp::bulk_header(out, len + 2);
    bytes::BufMut::put_slice(out, &id[..len]);
    bytes::BufMut::put_slice(out, b"-0");
    resp::bulk_end(out);
}

/// Parses a stream id `ms[-seq]` into `(ms, seq)`; `seq` is `None` when absent.
fn parse_id(id: &[u8]) -> Option<(u64, Option<u64>)> {
    match id.iter().position(|&b| b == b'-') {
        Some(dash) => Some((resp::parse_u64(&id[..dash])?, Some(resp::parse_u64(&id[dash + 1..])?))),
        None => Some((resp::parse_u64(id)?, None)),
    }
}

/// The first offset whose id (`offset + 1`-0) is at least `id`.
fn start_offset(id: &[u8]) -> Option<u64> {
    if id == b"-" {
        return Some(0);
    }
    let (ms, seq) = parse_id(id)?;
    Some(match ms {
        0 => 0,
        ms => ms - 1 + u64::from(seq.unwrap_or(0) > 0),
    })
}

/// The offset after the last one whose id is at most `id`.
fn end_offset(id: &[u8]) -> Option<u64> {
    if id == b"+" {
        return Some(u64::MAX);
    }
    parse_id(id).map(|(ms, _)| ms)
}
