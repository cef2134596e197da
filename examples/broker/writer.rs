//! The writer thread: the one owner of every log's `LogWriter`. It takes
//! encoded records from the connections, gathers what has arrived for one
//! log into a batch (up to `--batch-size`), appends it, updates the key
//! map, and acknowledges each record with its offset, in order.
//!
//! Durability as Kafka's default: an append reaches the page cache; it is
//! `fsync`ed per batch only with `--fsync batch`.
//!
//! # Invariants
//!
//! - Records of one connection reach the log, and their acks the
//!   connection, in the order it sent them (one FIFO channel in, one per
//!   connection out).
//! - Record buffers are dropped here, after their batch was appended: on
//!   another thread than the connection that filled them.
//! - After a failed append, the log's writer is dropped and reopened (with
//!   recovery) on its next append; the records of the failed batch are
//!   acknowledged with `None`.
//!
//! Started by `server.rs`; fed by the command layer.

use std::ops::Range;
use std::sync::atomic::Ordering::Release;
use std::sync::Arc;

use tokio::sync::mpsc::{Receiver, UnboundedSender};

use crate::bufs::Buffers;
use crate::codec::{BatchBuilder, BATCH_HEADER_LEN};
use crate::counting;
use crate::segment::{LogConfig, LogWriter};
use crate::store::{Store, KV};

/// An acknowledgement: the record's offset, or `None` if it was not
/// appended.
pub(crate) type Ack = Option<u64>;

/// One encoded record for log `log`, and where to acknowledge it.
#[derive(Debug)]
pub(crate) struct Append<B> {
    /// Which log (`store::KV` or a stream's).
    pub(crate) log: usize,
    /// The record, as `codec::encode_record_with` wrote it.
    pub(crate) record: B,
    /// Where its key is in `record` (for the key map of the kv log).
    pub(crate) key: Range<usize>,
    /// The sending connection's acknowledgements.
    pub(crate) ack: UnboundedSender<Ack>,
}

/// How the writer batches and lays out logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterConfig {
    /// A batch closes at this many bytes, or when nothing more has arrived.
    pub(crate) batch_bytes: usize,
    /// Segment size, index interval, fsync policy.
    pub(crate) log: LogConfig,
}

/// Runs until every sender of `rx` is gone. Arms this thread for the
/// counting allocator.
pub(crate) fn run<S: Buffers + Sync + 'static>(
    store: Arc<Store<S>>,
    mut rx: Receiver<Append<S::Buf<'static>>>,
    cfg: WriterConfig,
) {
    counting::arm();
    let bufs = store.bufs();
    let mut writers: Vec<Option<LogWriter>> = Vec::new();
    let mut held: Vec<Append<S::Buf<'static>>> = Vec::with_capacity(1024);
    let mut carry = None;
    while let Some(first) = carry.take().or_else(|| rx.blocking_recv()) {
        let log = first.log;
        let capacity = cfg.batch_bytes.max(first.record.len()) + BATCH_HEADER_LEN;
        let mut batch = BatchBuilder::new(bufs.with_capacity(capacity));
        let mut next = Some(first);
        while let Some(append) = next.take() {
            if append.log != log {
                carry = Some(append); // the next batch's first record
                break;
            }
            if batch.push(&append.record).is_err() {
                let _ = append.ack.send(None); // not a record: ours to fix, never the client's
                continue;
            }
            held.push(append);
            if batch.len() < cfg.batch_bytes {
                next = rx.try_recv().ok();
            }
        }
        if batch.count() == 0 {
            continue;
        }
        let base = append(&store, &mut writers, log, batch, &cfg);
        acknowledge(&store, log, base, &mut held);
    }
}

/// Appends `batch` to log `log` (opened first if need be); its base
/// offset, or `None` after a failure (reported on stderr).
fn append<S: Buffers + Sync + 'static>(
    store: &Store<S>,
    writers: &mut Vec<Option<LogWriter>>,
    log: usize,
    batch: BatchBuilder<S::Buf<'static>>,
    cfg: &WriterConfig,
) -> Option<u64> {
    if writers.len() <= log {
        writers.resize_with(log + 1, || None);
    }
    let dir = &store.log(log).dir;
    if writers[log].is_none() {
        match LogWriter::open(dir, cfg.log, store.bufs()) {
            Ok((writer, _)) => writers[log] = Some(writer),
            Err(e) => {
                eprintln!("broker: cannot open the log in {}: {e}", dir.display());
                return None;
            }
        }
    }
    let writer = writers[log].as_mut().expect("opened above");
    let base = writer.next_offset();
    match writer.append(store.bufs(), batch) {
        Ok(_) => {
            // Release: the batch's bytes are in the files; pairs with the
            // Acquire of readers that check `appended` before reading.
            store.log(log).appended.store(writer.next_offset(), Release);
            Some(base)
        }
        Err(e) => {
            eprintln!("broker: append to {} failed, reopening the log: {e}", dir.display());
            writers[log] = None;
            store.forget_reader(log);
            None
        }
    }
}

/// Maps the kv log's keys to their offsets, then acknowledges every held
/// record (offset `base + i`) and drops its buffer here.
fn acknowledge<S: Buffers + Sync + 'static>(
    store: &Store<S>,
    log: usize,
    base: Option<u64>,
    held: &mut Vec<Append<S::Buf<'static>>>,
) {
    if let (Some(base), KV) = (base, log) {
        store.set_offsets(held.iter().zip(base..).map(|(a, offset)| (&a.record[a.key.clone()], offset)));
    }
    for (i, append) in held.drain(..).enumerate() {
        let _ = append.ack.send(base.map(|b| b + i as u64)); // a connection that left needs no ack
    }
}
