//! One run of the log workload on one kind of buffer: producer threads encode
//! records into buffers and send them down a bounded channel; a writer thread
//! gathers them into batches, appends the batches and releases the record
//! buffers (on another thread than the one that filled them); then a reader
//! fetches every batch back through the indexes and checks every record.
//!
//! # Invariants
//!
//! - A run writes records `0..records` exactly once each, and its read phase
//!   fails unless it reads back exactly those, byte for byte.
//! - Once warm, nothing per record calls the allocator except the buffers
//!   themselves: records, batches and fetches come from [`Buffers`], channel
//!   slots are preallocated, histograms are fixed-size.
//!
//! Called by `main.rs` (one mode per child process) and by the tests.

use std::fmt;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use crate::bufs::Buffers;
use crate::codec::BatchBuilder;
use crate::counting;
use crate::reader::Reader;
use crate::records::{self, RecordSpec, SizeMix, SplitMix64, T0};
use crate::segment::{LogConfig, LogError, LogWriter};

/// What a run does.
#[derive(Debug, Clone)]
pub(crate) struct RunConfig {
    /// Records to write (ids `0..records`).
    pub(crate) records: u64,
    /// Producer threads.
    pub(crate) producers: usize,
    /// Value sizes.
    pub(crate) mix: SizeMix,
    /// Seed of every record.
    pub(crate) seed: u64,
    /// Log directory (created; must hold no log yet).
    pub(crate) dir: PathBuf,
    /// Segment size, index interval, fsync policy.
    pub(crate) log: LogConfig,
    /// A batch closes at this many bytes (or when the channel is empty).
    pub(crate) batch_bytes: usize,
    /// Records in flight between producers and the writer.
    pub(crate) channel: usize,
    /// The capacity a producer asks for before encoding a record.
    pub(crate) record_hint: usize,
}

/// Append latency is measured from the start of encoding to the end of the
/// append (and fsync) of the record's batch.
const LATENCY_MAX_NS: u64 = 60_000_000_000;
/// Time and offset lookups the read phase checks after the full scan.
const PROBES: usize = 256;

/// What a run measured.
#[derive(Debug)]
pub(crate) struct RunResult {
    /// Records written and read back.
    pub(crate) records: u64,
    /// Bytes appended to segments (batch headers included).
    pub(crate) log_bytes: u64,
    /// Batches appended.
    pub(crate) batches: u64,
    /// Segments in the log at the end.
    pub(crate) segments: usize,
    /// Wall time of the write phase.
    pub(crate) write_time: Duration,
    /// Wall time of the read phase (scan, checks and lookups).
    pub(crate) read_time: Duration,
    /// Per record, encode start to batch appended, in ns.
    pub(crate) append_ns: Histogram<u64>,
    /// Per fetch (lookup, read, CRC checks, decode of one batch), in ns.
    pub(crate) fetch_ns: Histogram<u64>,
    /// Time-index lookups checked against the scan.
    pub(crate) time_lookups: usize,
    /// Random offset lookups checked.
    pub(crate) offset_lookups: usize,
}

/// Why a run failed.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The log itself failed (I/O or corruption).
    Log(LogError),
    /// A record read back differs from the one written, or one is missing.
    Verify(String),
    /// The directory already holds a log (a run needs a fresh one).
    NotEmpty(PathBuf),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Log(e) => e.fmt(f),
            RunError::Verify(why) => write!(f, "verification failed: {why}"),
            RunError::NotEmpty(dir) => write!(f, "{} already holds a log; give an empty directory", dir.display()),
        }
    }
}

impl std::error::Error for RunError {}

impl From<LogError> for RunError {
    fn from(e: LogError) -> Self {
        RunError::Log(e)
    }
}

/// A record buffer on its way to the writer, with when its encoding began.
struct Sent<B> {
    buf: B,
    started: Instant,
}

/// Runs the workload with buffers from `bufs`, ticking `progress` once per
/// record written and once per record read. Arms the calling thread and the
/// threads it starts for `counting`.
///
/// # Errors
///
/// When the log fails or a record does not read back as written.
pub(crate) fn run<S: Buffers>(bufs: &S, cfg: &RunConfig, progress: &ProgressBar) -> Result<RunResult, RunError> {
    counting::arm();
    let (mut writer, recovery) = LogWriter::open(&cfg.dir, cfg.log, bufs)?;
    if recovery.next_offset != 0 {
        return Err(RunError::NotEmpty(cfg.dir.clone()));
    }
    let start = Instant::now();
    let (tx, rx) = mpsc::sync_channel::<Sent<S::Buf<'_>>>(cfg.channel);
    let written = std::thread::scope(|s| {
        let writer = s.spawn(|| write_phase(bufs, &mut writer, rx, cfg, progress));
        for p in 0..cfg.producers {
            let tx = tx.clone();
            s.spawn(move || produce(bufs, cfg, p, tx));
        }
        drop(tx);
        writer.join().expect("the writer thread does not panic")
    })?;
    writer.sync_all()?;
    let write_time = start.elapsed();
    let (batches, append_ns) = written;
    if writer.next_offset() != cfg.records {
        return Err(RunError::Verify(format!("wrote {} records of {}", writer.next_offset(), cfg.records)));
    }
    let start = Instant::now();
    let read = read_phase(bufs, cfg, progress)?;
    if read.segments != writer.segments() {
        let why = format!("the reader found {} segments, the writer made {}", read.segments, writer.segments());
        return Err(RunError::Verify(why));
    }
    Ok(RunResult {
        records: cfg.records,
        log_bytes: read.log_bytes,
        batches,
        segments: writer.segments(),
        write_time,
        read_time: start.elapsed(),
        append_ns,
        fetch_ns: read.fetch_ns,
        time_lookups: read.time_lookups,
        offset_lookups: read.offset_lookups,
    })
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3).expect("valid histogram bounds")
}

/// Producer `p` of `cfg.producers`: encodes records `p, p + n, p + 2n, ...`
/// into fresh buffers and sends them; stops early if the writer is gone.
fn produce<'b, S: Buffers>(bufs: &'b S, cfg: &RunConfig, p: usize, tx: SyncSender<Sent<S::Buf<'b>>>) {
    counting::arm();
    for id in (p as u64..cfg.records).step_by(cfg.producers) {
        let started = Instant::now();
        let spec = RecordSpec::new(cfg.seed, id, &cfg.mix);
        let mut buf = bufs.with_capacity(cfg.record_hint);
        spec.encode(&mut buf);
        if tx.send(Sent { buf, started }).is_err() {
            return;
        }
    }
}

/// The writer thread: batches whatever has arrived (up to `batch_bytes`),
/// appends it, records each record's append latency, drops the record
/// buffers here. Returns the batch count and the latency histogram.
fn write_phase<'b, S: Buffers>(
    bufs: &'b S,
    log: &mut LogWriter,
    rx: Receiver<Sent<S::Buf<'b>>>,
    cfg: &RunConfig,
    progress: &ProgressBar,
) -> Result<(u64, Histogram<u64>), RunError> {
    counting::arm();
    let (mut hist, mut batches) = (histogram(), 0);
    let mut started = Vec::with_capacity(cfg.channel + 1);
    while let Ok(first) = rx.recv() {
        let mut batch = BatchBuilder::new(bufs.with_capacity(cfg.batch_bytes));
        let mut next = Some(first);
        while let Some(sent) = next.take() {
            batch.push(&sent.buf).map_err(|e| RunError::Verify(format!("a producer sent a bad record: {e}")))?;
            started.push(sent.started);
            if batch.len() < cfg.batch_bytes {
                next = rx.try_recv().ok();
            }
        }
        let count = u64::from(batch.count());
        log.append(bufs, batch)?;
        let done = Instant::now();
        for t in started.drain(..) {
            hist.saturating_record(done.duration_since(t).as_nanos() as u64);
        }
        batches += 1;
        progress.inc(count);
    }
    Ok((batches, hist))
}

/// What the read phase measured.
struct ReadTotals {
    segments: usize,
    log_bytes: u64,
    fetch_ns: Histogram<u64>,
    time_lookups: usize,
    offset_lookups: usize,
}

/// Timestamps to look up after the scan, with the first offset the scan saw
/// at or after each: sorted, so the unresolved ones are always a suffix.
struct TimeProbes {
    timestamps: Vec<i64>,
    first: Vec<u64>,
}

impl TimeProbes {
    fn new(cfg: &RunConfig) -> TimeProbes {
        let mut rng = SplitMix64::new(cfg.seed ^ 0x7157);
        let span = cfg.records * 2 + 60;
        let mut timestamps: Vec<i64> = (0..PROBES).map(|_| T0 + rng.range(0, span) as i64).collect();
        timestamps.sort_unstable();
        TimeProbes { first: Vec::with_capacity(PROBES), timestamps }
    }

    /// Notes the record at `offset` (scanned in order) with `timestamp`.
    fn observe(&mut self, offset: u64, timestamp: i64) {
        while self.timestamps.get(self.first.len()).is_some_and(|&t| t <= timestamp) {
            self.first.push(offset);
        }
    }
}

/// Scans the whole log, then checks time and offset lookups.
fn read_phase<S: Buffers>(bufs: &S, cfg: &RunConfig, progress: &ProgressBar) -> Result<ReadTotals, RunError> {
    let reader = Reader::open(&cfg.dir, bufs)?;
    let mut seen = vec![0u64; cfg.records.div_ceil(64) as usize];
    let mut probes = TimeProbes::new(cfg);
    let (mut fetch_ns, mut log_bytes, mut offset) = (histogram(), 0, 0);
    loop {
        let t = Instant::now();
        let Some(fetch) = reader.fetch(offset)? else { break };
        // Decoded and CRC-checked into a list of the batch's records: the
        // reader's own work, timed. The list comes from `bufs` (an object
        // pool in the magpool mode, a fresh `Vec` in the other).
        let mut batch = bufs.batch(fetch.header.record_count as usize);
        fetch.decode_into(&mut batch)?;
        fetch_ns.saturating_record(t.elapsed().as_nanos() as u64);
        for r in batch.iter() {
            let (at, view) = (r.offset, fetch.record(r)?);
            let id = records::verify(&view, cfg.seed, &cfg.mix).map_err(RunError::Verify)?;
            let (word, bit) = ((id / 64) as usize, 1 << (id % 64));
            if id >= cfg.records || seen[word] & bit != 0 {
                return Err(RunError::Verify(format!("offset {at}: record id {id} unexpected or repeated")));
            }
            seen[word] |= bit;
            probes.observe(at, view.timestamp);
        }
        progress.inc(u64::from(fetch.header.record_count));
        log_bytes += fetch.len();
        offset = fetch.header.next_offset();
    }
    if offset != cfg.records || reader.next_offset() != cfg.records {
        return Err(RunError::Verify(format!("read {offset} records back, wrote {}", cfg.records)));
    }
    let time_lookups = check_time_lookups(&reader, &probes)?;
    let offset_lookups = check_offset_lookups(&reader, cfg)?;
    Ok(ReadTotals { segments: reader.segment_count(), log_bytes, fetch_ns, time_lookups, offset_lookups })
}

/// Every probe's time lookup must find the first offset the scan saw.
fn check_time_lookups<S: Buffers>(reader: &Reader<'_, S>, probes: &TimeProbes) -> Result<usize, RunError> {
    for (i, &timestamp) in probes.timestamps.iter().enumerate() {
        let found = reader.offset_for_time(timestamp)?;
        if found != probes.first.get(i).copied() {
            let want = probes.first.get(i);
            return Err(RunError::Verify(format!("time lookup {timestamp}: found {found:?}, the scan says {want:?}")));
        }
    }
    Ok(probes.timestamps.len())
}

/// Random offsets must each land in the batch that holds them.
fn check_offset_lookups<S: Buffers>(reader: &Reader<'_, S>, cfg: &RunConfig) -> Result<usize, RunError> {
    let mut rng = SplitMix64::new(cfg.seed ^ 0x0FF5E7);
    for _ in 0..PROBES {
        let offset = rng.range(0, cfg.records - 1);
        let fetch = reader.fetch(offset)?.ok_or_else(|| RunError::Verify(format!("offset {offset} not found")))?;
        let holds = fetch
            .records()
            .any(|r| r.is_ok_and(|(at, view)| at == offset && records::verify(&view, cfg.seed, &cfg.mix).is_ok()));
        if !holds {
            return Err(RunError::Verify(format!("the batch fetched for offset {offset} does not hold it")));
        }
    }
    Ok(PROBES)
}
