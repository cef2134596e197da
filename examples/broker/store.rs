//! The broker's storage, on the segment log (`examples/segment_log/`): one
//! log for `SET`/`GET` values (`kv/`) and one log per stream
//! (`stream-NNN/`), each a directory of segments with their sparse offset
//! and time indexes, every batch and record CRC32C-framed.
//!
//! ```text
//! SET k v  ─► record(key k, value v) ─► writer thread ─► kv log ─► keys[k] = offset
//! GET k    ─► keys[k] ─► Reader::fetch(offset) (offset index, batch CRC) ─► value
//! XADD s * f v ... ─► record(key s, headers f=v ...) ─► stream log ─► id = offset+1 "-0"
//! XRANGE s a b     ─► offsets [a, b) ─► Reader::fetch, batch by batch
//! ```
//!
//! # Invariants
//!
//! - A key maps to the offset of its last `SET` in log order: the writer
//!   thread updates the map after the batch is appended, in batch order.
//! - A stream's entry ids are its log's offsets plus one (`1-0`, `2-0`,
//!   ...), so they are dense and unique, and a range of ids is a range of
//!   offsets: its length is known before anything is read.
//! - A reader is refreshed only when asked for an offset the writer has
//!   appended (`Log::appended`) but the reader has not seen yet; a refresh
//!   reads only what was appended since. After a failed append the reader
//!   is dropped, since recovery may cut the log's tail.
//!
//! Used by the command layer (reads, registrations) and the writer thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Acquire};
use std::sync::{Mutex, RwLock};

use crate::bufs::Buffers;
use crate::codec::RecordView;
use crate::reader::Reader;
use crate::segment::LogError;

/// The log of `SET` values.
pub(crate) const KV: usize = 0;

/// One log: its directory, how far the writer has appended, and a reader
/// opened on first use.
pub(crate) struct Log<S: Buffers + 'static> {
    /// The log's directory.
    pub(crate) dir: PathBuf,
    /// Records appended so far (the next offset). Written by the writer
    /// thread with Release after each append; read with Acquire, so the
    /// bytes of every offset below it are in the files.
    pub(crate) appended: AtomicU64,
    reader: RwLock<Option<Reader<'static, S>>>,
}

/// Why a read failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The log could not be read.
    Log(LogError),
    /// An offset the writer appended is not in the log.
    Missing(u64),
}

impl From<LogError> for ReadError {
    fn from(e: LogError) -> Self {
        ReadError::Log(e)
    }
}

/// Why a stream could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamError {
    /// The key holds a string value.
    WrongType,
    /// `--max-streams` streams exist already.
    TooMany,
}

/// The logs and the in-memory maps.
pub(crate) struct Store<S: Buffers + 'static> {
    bufs: &'static S,
    /// `KV`, then one per possible stream.
    logs: Box<[Log<S>]>,
    /// Key → offset of its value in the kv log.
    keys: Mutex<HashMap<Box<[u8]>, u64>>,
    /// Stream name → its log's index.
    streams: Mutex<HashMap<Box<[u8]>, usize>>,
}

impl<S: Buffers + Sync + 'static> Store<S> {
    /// A store in `root` (whose `kv/` and `stream-NNN/` must not hold logs
    /// of another run) with room for `max_streams` streams. Opens nothing:
    /// the writer opens each log on its first append.
    pub(crate) fn new(root: &Path, bufs: &'static S, max_streams: usize) -> Store<S> {
        let log = |dir: PathBuf| Log { dir, appended: AtomicU64::new(0), reader: RwLock::new(None) };
        let mut logs = vec![log(root.join("kv"))];
        logs.extend((0..max_streams).map(|i| log(root.join(format!("stream-{i:03}")))));
        Store { bufs, logs: logs.into(), keys: Mutex::default(), streams: Mutex::default() }
    }

    /// The storage buffers.
    pub(crate) fn bufs(&self) -> &'static S {
        self.bufs
    }

    /// Log `i`.
    pub(crate) fn log(&self, i: usize) -> &Log<S> {
        &self.logs[i]
    }

    /// Records the offsets of `keys` after their batch was appended, in
    /// log order. One lock per batch; allocates only for a new key.
    pub(crate) fn set_offsets<'k>(&self, keys: impl Iterator<Item = (&'k [u8], u64)>) {
        let mut map = self.keys.lock().expect("the key map is never poisoned");
        for (key, offset) in keys {
            match map.get_mut(key) {
                Some(at) => *at = offset,
                None => {
                    map.insert(key.into(), offset);
                }
            }
        }
    }

    /// The offset of `key`'s value, if it was set.
    pub(crate) fn offset_of(&self, key: &[u8]) -> Option<u64> {
        self.keys.lock().expect("the key map is never poisoned").get(key).copied()
    }

    /// Whether `key` names a stream.
    pub(crate) fn is_stream(&self, key: &[u8]) -> bool {
        self.streams.lock().expect("the stream map is never poisoned").contains_key(key)
    }

    /// The log of stream `name`, if it exists.
    pub(crate) fn stream(&self, name: &[u8]) -> Option<usize> {
        self.streams.lock().expect("the stream map is never poisoned").get(name).copied()
    }

    /// The log of stream `name`, registered if new.
    ///
    /// # Errors
    ///
    /// [`StreamError::WrongType`] if `name` holds a string,
    /// [`StreamError::TooMany`] if every stream log is taken.
    pub(crate) fn stream_or_create(&self, name: &[u8]) -> Result<usize, StreamError> {
        if self.offset_of(name).is_some() {
            return Err(StreamError::WrongType);
        }
        let mut streams = self.streams.lock().expect("the stream map is never poisoned");
        if let Some(&log) = streams.get(name) {
            return Ok(log);
        }
        let log = streams.len() + 1;
        if log >= self.logs.len() {
            return Err(StreamError::TooMany);
        }
        streams.insert(name.into(), log);
        Ok(log)
    }

    /// Calls `f` with the record at `offset` of log `i`, read from the log
    /// and CRC-checked. Cost: an index lookup, one batch read into a
    /// storage buffer (dropped before returning), the CRCs of the batch and
    /// of the records up to `offset`; a refresh of the reader first if it
    /// has not seen `offset` yet.
    ///
    /// # Errors
    ///
    /// When the log cannot be read or does not hold `offset`.
    pub(crate) fn read<R>(&self, i: usize, offset: u64, f: impl FnOnce(&RecordView<'_>) -> R) -> Result<R, ReadError> {
        let mut f = Some(f);
        let mut out = None;
        self.scan(i, offset, offset + 1, |_, view| out = f.take().map(|f| f(view)))?;
        out.ok_or(ReadError::Missing(offset))
    }

    /// Calls `f` with each record of log `i` at offsets `from..to`, in
    /// order, batch by batch (one storage buffer at a time).
    ///
    /// # Errors
    ///
    /// As [`read`](Store::read); `f` may have seen some records.
    pub(crate) fn scan(
        &self,
        i: usize,
        from: u64,
        to: u64,
        mut f: impl FnMut(u64, &RecordView<'_>),
    ) -> Result<(), ReadError> {
        let log = &self.logs[i];
        if to > log.appended.load(Acquire) {
            return Err(ReadError::Missing(to - 1));
        }
        let mut guard = log.reader.read().expect("a reader lock is never poisoned");
        if guard.as_ref().is_none_or(|r| r.next_offset() < to) {
            drop(guard);
            self.refresh(log)?;
            guard = log.reader.read().expect("a reader lock is never poisoned");
        }
        let reader = guard.as_ref().expect("refreshed above");
        let mut offset = from;
        while offset < to {
            let fetch = reader.fetch(offset)?.ok_or(ReadError::Missing(offset))?;
            for record in fetch.records() {
                let (at, view) = record?;
                if (offset..to).contains(&at) {
                    f(at, &view);
                }
            }
            offset = fetch.header.next_offset();
        }
        Ok(())
    }

    /// Drops log `i`'s reader: after a failed append the writer reopens
    /// the log with recovery, which may cut its tail, and a reader only
    /// follows appends. The next read opens a new one.
    pub(crate) fn forget_reader(&self, i: usize) {
        *self.logs[i].reader.write().expect("a reader lock is never poisoned") = None;
    }

    /// Opens or refreshes `log`'s reader (once, however many readers
    /// arrive at the same time).
    fn refresh(&self, log: &Log<S>) -> Result<(), LogError> {
        let mut slot = log.reader.write().expect("a reader lock is never poisoned");
        let wanted = log.appended.load(Acquire);
        match slot.as_mut() {
            Some(reader) if reader.next_offset() >= wanted => Ok(()),
            Some(reader) => reader.refresh(&log.dir),
            None => {
                *slot = Some(Reader::open(&log.dir, self.bufs)?);
                Ok(())
            }
        }
    }
}
