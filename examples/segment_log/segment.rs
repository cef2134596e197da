//! Segment files on disk: naming, the appending writer that rolls segments
//! at a size limit and keeps their indexes, and crash recovery.
//!
//! A log directory holds, per segment, `{base_offset:020}.log` (batches, see
//! `codec.rs`), `.index` and `.timeindex` (see `index.rs`). Only the newest
//! segment is ever written.
//!
//! # Invariants
//!
//! - Batches are written whole, one `write` each, then the indexes, then (with
//!   [`Fsync::Batch`]) `fsync` of all three files before the batch counts as
//!   appended: after a crash the segment ends in complete batches plus at most
//!   one torn one.
//! - Recovery ([`LogWriter::open`]) scans the newest segment from its start,
//!   checking every batch's framing, CRC and offset, truncates it before the
//!   first batch that fails, and rebuilds its indexes from what remains.
//!   Older segments were complete when the writer rolled past them.
//!
//! Used by the workload's writer thread and by the tests.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::bufs::{Buffers, ByteBuf};
use crate::codec::{self, BatchBuilder, BatchHeader, CodecError, BATCH_HEADER_LEN};
use crate::index::IndexWriter;

/// When the writer calls `fsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fsync {
    /// After every batch: a batch is durable once `append` returns.
    Batch,
    /// Never: the OS writes back when it likes (a crash may lose batches).
    Never,
}

/// How the log is laid out on disk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogConfig {
    /// A segment rolls when the next batch would take it past this many bytes.
    pub(crate) segment_bytes: u64,
    /// Bytes of batches between index entries.
    pub(crate) index_interval: u64,
    /// When to `fsync`.
    pub(crate) fsync: Fsync,
}

/// What went wrong with a log, naming the file and, for corruption, the
/// byte position and record offset.
#[derive(Debug)]
pub(crate) enum LogError {
    /// A file system call failed.
    Io {
        /// What was being done ("create log directory", "append to", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Bytes on disk do not decode.
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position in the file of the batch or record that failed.
        position: u64,
        /// The failing record's offset, when it is known.
        offset: Option<u64>,
        /// What is wrong.
        source: CodecError,
    },
}

impl LogError {
    /// Wraps an I/O error with what was being done and to what.
    pub(crate) fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> LogError + 'p {
        move |source| LogError::Io { action, path: path.to_path_buf(), source }
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io { action, path, source } => write!(f, "cannot {action} {}: {source}", path.display()),
            LogError::Corrupt { path, position, offset, source } => {
                write!(f, "{}: ", path.display())?;
                if let Some(offset) = offset {
                    write!(f, "record at offset {offset}, ")?;
                }
                write!(f, "byte {position}: {source}")
            }
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogError::Io { source, .. } => Some(source),
            LogError::Corrupt { source, .. } => Some(source),
        }
    }
}

/// The path of segment `base`'s file with extension `ext` in `dir`.
pub(crate) fn segment_path(dir: &Path, base: u64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}

/// The base offsets of the segments in `dir`, in order.
///
/// # Errors
///
/// When `dir` cannot be listed.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).map_err(LogError::io("list", dir))? {
        let name = entry.map_err(LogError::io("list", dir))?.file_name();
        let name = name.to_string_lossy();
        if let Some(base) = name.strip_suffix(".log").and_then(|b| b.parse::<u64>().ok()) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Reads the batch header at `position`, if a whole one is there.
pub(crate) fn read_header(file: &File, position: u64) -> io::Result<Option<[u8; BATCH_HEADER_LEN]>> {
    let mut raw = [0; BATCH_HEADER_LEN];
    match file.read_exact_at(&mut raw, position) {
        Ok(()) => Ok(Some(raw)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// What [`LogWriter::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// Segments in the directory.
    pub(crate) segments: usize,
    /// Complete batches kept in the newest segment.
    pub(crate) batches_kept: u64,
    /// Bytes cut from the newest segment's torn tail.
    pub(crate) truncated_bytes: u64,
    /// Why the tail was cut, and where, if it was.
    pub(crate) torn_at: Option<(u64, CodecError)>,
    /// The offset the next record gets.
    pub(crate) next_offset: u64,
}

/// Where [`LogWriter::append`] put a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    /// Offset of the batch's first record.
    pub(crate) base_offset: u64,
    /// Base offset of the segment it went to.
    pub(crate) segment: u64,
    /// Byte position of the batch in that segment's file.
    pub(crate) position: u64,
}

/// The segment being appended to.
#[derive(Debug)]
struct Active {
    base: u64,
    path: PathBuf,
    file: File,
    len: u64,
    index: IndexWriter,
}

/// Appends batches to the newest segment, rolling to a new one at the size
/// limit; one per log directory.
#[derive(Debug)]
pub(crate) struct LogWriter {
    dir: PathBuf,
    config: LogConfig,
    active: Active,
    next_offset: u64,
    segments: usize,
}

impl LogWriter {
    /// Opens the log in `dir` (created if missing) for appending, recovering
    /// the newest segment first (see the module docs).
    ///
    /// # Errors
    ///
    /// When `dir` cannot be created or listed, or a segment file cannot be
    /// read, truncated or written.
    pub(crate) fn open<S: Buffers>(dir: &Path, config: LogConfig, bufs: &S) -> Result<(LogWriter, Recovery), LogError> {
        fs::create_dir_all(dir).map_err(LogError::io("create log directory", dir))?;
        let bases = list_segments(dir)?;
        let Some(&base) = bases.last() else {
            let active = create_segment(dir, 0, config)?;
            let recovery = Recovery { segments: 1, ..Recovery::default() };
            return Ok((LogWriter { dir: dir.to_path_buf(), config, active, next_offset: 0, segments: 1 }, recovery));
        };
        let (active, mut recovery) = recover_segment(dir, base, config, bufs)?;
        recovery.segments = bases.len();
        let writer = LogWriter {
            dir: dir.to_path_buf(),
            config,
            active,
            next_offset: recovery.next_offset,
            segments: bases.len(),
        };
        Ok((writer, recovery))
    }

    /// The offset the next record gets.
    pub(crate) fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Segments in the log.
    pub(crate) fn segments(&self) -> usize {
        self.segments
    }

    /// Finishes `batch` with the next offsets and appends it, rolling first
    /// if it would take the segment past the limit; says where it went. Cost: one `write` of the batch, index entries when due,
    /// and with [`Fsync::Batch`] an `fsync` per file written.
    ///
    /// # Errors
    ///
    /// When a write, `fsync` or a roll fails: the log should then be
    /// reopened, which recovers it.
    pub(crate) fn append<S: Buffers, B: ByteBuf>(
        &mut self,
        bufs: &S,
        batch: BatchBuilder<B>,
    ) -> Result<Appended, LogError> {
        let base_offset = self.next_offset;
        let bytes = batch.finish(base_offset);
        let raw: &[u8; BATCH_HEADER_LEN] = bytes[..BATCH_HEADER_LEN].try_into().expect("a whole header");
        let header = BatchHeader::parse(raw).expect("a batch we just framed parses");
        if self.active.len > 0 && self.active.len + header.total_len() > self.config.segment_bytes {
            self.roll()?;
        }
        let a = &mut self.active;
        a.file.write_all(&bytes).map_err(LogError::io("append to", &a.path))?;
        let relative = u32::try_from(base_offset - a.base).expect("segments hold under 4G records");
        let position = u32::try_from(a.len).expect("segments stay under 4 GiB");
        a.index
            .on_batch(bufs, relative, position, header.total_len(), header.max_timestamp)
            .map_err(LogError::io("index", &a.path))?;
        if self.config.fsync == Fsync::Batch {
            a.file.sync_data().map_err(LogError::io("fsync", &a.path))?;
            a.index.sync().map_err(LogError::io("fsync the indexes of", &a.path))?;
        }
        let appended = Appended { base_offset, segment: a.base, position: a.len };
        a.len += header.total_len();
        self.next_offset = header.next_offset();
        Ok(appended)
    }

    /// Starts a new segment at the next offset.
    fn roll(&mut self) -> Result<(), LogError> {
        let next = create_segment(&self.dir, self.next_offset, self.config)?;
        self.active = next;
        self.segments += 1;
        Ok(())
    }

    /// Flushes everything to disk, whatever the fsync policy.
    ///
    /// # Errors
    ///
    /// When `fsync` fails.
    pub(crate) fn sync_all(&mut self) -> Result<(), LogError> {
        let a = &mut self.active;
        a.file.sync_all().map_err(LogError::io("fsync", &a.path))?;
        a.index.sync().map_err(LogError::io("fsync the indexes of", &a.path))
    }
}

/// Opens segment `base`'s log file for appending (created if missing) and
/// its two index files emptied: a new segment starts them empty, and
/// recovery rebuilds them from the batches it keeps.
fn open_files(dir: &Path, base: u64) -> Result<(PathBuf, File, File, File), LogError> {
    let path = segment_path(dir, base, "log");
    let open = |p: &Path, truncate: bool| {
        let mut o = OpenOptions::new();
        o.read(true).create(true);
        if truncate {
            o.write(true).truncate(true);
        } else {
            o.append(true);
        }
        o.open(p).map_err(LogError::io("open", p))
    };
    let log = open(&path, false)?;
    let offsets = open(&segment_path(dir, base, "index"), true)?;
    let times = open(&segment_path(dir, base, "timeindex"), true)?;
    Ok((path, log, offsets, times))
}

/// Creates an empty segment at `base`.
fn create_segment(dir: &Path, base: u64, config: LogConfig) -> Result<Active, LogError> {
    let (path, file, offsets, times) = open_files(dir, base)?;
    let index = IndexWriter::new(offsets, times, config.index_interval, 0, i64::MIN);
    Ok(Active { base, path, file, len: 0, index })
}

/// Recovers segment `base`: keeps its longest prefix of valid batches,
/// truncates the rest, rebuilds its indexes.
fn recover_segment<S: Buffers>(
    dir: &Path,
    base: u64,
    config: LogConfig,
    bufs: &S,
) -> Result<(Active, Recovery), LogError> {
    let (path, file, offsets, times) = open_files(dir, base)?;
    let file_len = file.metadata().map_err(LogError::io("stat", &path))?.len();
    let mut index = IndexWriter::new(offsets, times, config.index_interval, 0, i64::MIN);
    let mut r = Recovery { next_offset: base, ..Recovery::default() };
    let mut payload = bufs.with_capacity(64 << 10);
    let mut position = 0;
    while position < file_len {
        match check_batch(&file, file_len, position, r.next_offset, &mut payload)
            .map_err(LogError::io("read", &path))?
        {
            Ok(h) => {
                let relative = u32::try_from(h.base_offset - base).expect("segments hold under 4G records");
                let at = u32::try_from(position).expect("segments stay under 4 GiB");
                index
                    .on_batch(bufs, relative, at, h.total_len(), h.max_timestamp)
                    .map_err(LogError::io("index", &path))?;
                position += h.total_len();
                r.next_offset = h.next_offset();
                r.batches_kept += 1;
            }
            Err(why) => {
                r.torn_at = Some((position, why));
                break;
            }
        }
    }
    if position < file_len {
        file.set_len(position).map_err(LogError::io("truncate", &path))?;
        r.truncated_bytes = file_len - position;
    }
    file.sync_all().map_err(LogError::io("fsync", &path))?;
    index.sync().map_err(LogError::io("fsync the indexes of", &path))?;
    Ok((Active { base, path, file, len: position, index }, r))
}

/// Checks the batch at `position` of a `file_len`-byte file: a whole header
/// with the magic and the `expected` base offset, a whole payload (read into
/// `payload`) and a matching CRC. The outer error is I/O; the inner one says
/// what is wrong with the batch.
fn check_batch<B: ByteBuf>(
    file: &File,
    file_len: u64,
    position: u64,
    expected: u64,
    payload: &mut B,
) -> io::Result<Result<BatchHeader, CodecError>> {
    let available = usize::try_from(file_len - position).unwrap_or(usize::MAX);
    let Some(raw) = read_header(file, position)? else {
        return Ok(Err(CodecError::Truncated { needed: BATCH_HEADER_LEN, available }));
    };
    let header = match BatchHeader::parse(&raw) {
        Ok(h) if h.base_offset != expected => {
            return Ok(Err(CodecError::Malformed("batch base offset out of sequence")))
        }
        Ok(h) => h,
        Err(e) => return Ok(Err(e)),
    };
    if header.total_len() > file_len - position {
        return Ok(Err(CodecError::Truncated { needed: header.total_len() as usize, available }));
    }
    payload.resize_zeroed(header.payload_len as usize);
    file.read_exact_at(payload, position + BATCH_HEADER_LEN as u64)?;
    Ok(codec::verify_batch(&raw, &header, payload).map(|()| header))
}
