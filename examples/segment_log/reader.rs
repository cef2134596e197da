//! Reading a log back: find the segment by binary search over base offsets,
//! the batch through the segment's sparse index, read it into a pooled
//! buffer, check its CRC and decode its records in place.
//!
//! # Invariants
//!
//! - Every batch handed out has had its CRC checked, and every record its own
//!   CRC as it is decoded; a mismatch is an error naming the segment file, the
//!   byte position and, for a record, its offset.
//! - A torn tail (a partial header or payload at the end of a segment) ends
//!   that segment for the reader: it sees every complete batch before it.
//!
//! Used by the workload's read phase and by the tests.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::bufs::{Buffers, ByteBuf};
use crate::codec::{self, BatchHeader, CodecError, RecordIter, RecordRef, RecordView, BATCH_HEADER_LEN};
use crate::index::{OffsetIndex, TimeIndex};
use crate::segment::{list_segments, read_header, segment_path, LogError};

/// One segment, open for reading, with its indexes in memory.
#[derive(Debug)]
struct SegmentReader<B> {
    base: u64,
    path: PathBuf,
    file: File,
    /// Bytes of complete batches.
    len: u64,
    offsets: OffsetIndex<B>,
    times: TimeIndex<B>,
    /// The offset after the segment's last record.
    next_offset: u64,
    /// The largest record timestamp in the segment (`i64::MIN` if empty).
    max_timestamp: i64,
    /// The `.index` and `.timeindex` files, kept open while this is the
    /// reader's last segment, which may still grow (see `catch_up`).
    index_files: Option<(File, File)>,
}

/// A read-only view of a log directory as it was when opened.
#[derive(Debug)]
pub(crate) struct Reader<'s, S: Buffers> {
    bufs: &'s S,
    segments: Vec<SegmentReader<S::Buf<'s>>>,
}

/// One batch read and CRC-checked, its payload in a buffer from the reader's
/// [`Buffers`].
#[derive(Debug)]
pub(crate) struct Fetch<'r, B> {
    /// The batch's header.
    pub(crate) header: BatchHeader,
    /// Byte position of the batch in its segment file.
    pub(crate) position: u64,
    path: &'r Path,
    payload: B,
}

impl<B: ByteBuf> Fetch<'_, B> {
    /// The batch's records with their offsets, each CRC-checked as it is
    /// decoded. Allocates nothing.
    pub(crate) fn records(&self) -> impl Iterator<Item = Result<(u64, RecordView<'_>), LogError>> + '_ {
        let base = self.header.base_offset;
        RecordIter::new(&self.payload, self.header.record_count).enumerate().map(move |(i, (at, record))| {
            let offset = base + i as u64;
            record.map(|view| (offset, view)).map_err(|source| LogError::Corrupt {
                path: self.path.to_path_buf(),
                position: self.position + (BATCH_HEADER_LEN + at) as u64,
                offset: Some(offset),
                source,
            })
        })
    }

    /// Decodes the batch's records into `out` (cleared first): where each
    /// lies, CRC-checked. `out` is the caller's to reuse: a list from an
    /// object pool costs no allocation once warm.
    ///
    /// # Errors
    ///
    /// As [`records`](Fetch::records), at the first bad record.
    pub(crate) fn decode_into(&self, out: &mut Vec<RecordRef>) -> Result<(), LogError> {
        out.clear();
        let base = self.header.base_offset;
        let mut starts = RecordIter::new(&self.payload, self.header.record_count).enumerate().peekable();
        while let Some((i, (at, record))) = starts.next() {
            let offset = base + i as u64;
            record.map_err(|source| self.corrupt(at, offset, source))?;
            let end = starts.peek().map_or(self.payload.len(), |&(_, (next, _))| next);
            out.push(RecordRef { offset, at: at as u32, len: (end - at) as u32 });
        }
        Ok(())
    }

    /// The record `r` (from [`decode_into`](Fetch::decode_into) on this
    /// fetch), decoded again.
    ///
    /// # Errors
    ///
    /// When `r` does not describe one of this batch's records.
    pub(crate) fn record(&self, r: &RecordRef) -> Result<RecordView<'_>, LogError> {
        let (at, len) = (r.at as usize, r.len as usize);
        let bytes = self.payload.get(at..at + len).ok_or(CodecError::Malformed("a record past the batch"));
        bytes.and_then(codec::decode_record).map(|(view, _)| view).map_err(|source| self.corrupt(at, r.offset, source))
    }

    /// The error for a bad record at payload position `at`.
    fn corrupt(&self, at: usize, offset: u64, source: CodecError) -> LogError {
        LogError::Corrupt {
            path: self.path.to_path_buf(),
            position: self.position + (BATCH_HEADER_LEN + at) as u64,
            offset: Some(offset),
            source,
        }
    }

    /// Bytes of the batch, header included.
    pub(crate) fn len(&self) -> u64 {
        self.header.total_len()
    }
}

impl<'s, S: Buffers> Reader<'s, S> {
    /// Opens the log in `dir`: lists its segments, reads their index files
    /// into buffers from `bufs`, and finds each segment's end.
    ///
    /// # Errors
    ///
    /// When a file cannot be read, or a batch header is corrupt.
    pub(crate) fn open(dir: &Path, bufs: &'s S) -> Result<Reader<'s, S>, LogError> {
        let mut segments = Vec::new();
        for base in list_segments(dir)? {
            if let Some(before) = segments.last_mut() {
                let before: &mut SegmentReader<_> = before;
                before.index_files = None;
            }
            segments.push(open_segment(dir, base, bufs)?);
        }
        Ok(Reader { bufs, segments })
    }

    /// Catches up with a log that is still being appended to: reads what
    /// was appended to its last segment's index files and the batches
    /// written after its known end, then opens the segments rolled since
    /// (each starts at the offset where the one before ends). Cost: the new
    /// index bytes and batch headers, plus one `stat` of the next segment's
    /// path; no directory listing, nothing read twice.
    ///
    /// A reader only follows appends: a log that recovery truncated needs a
    /// new reader.
    ///
    /// # Errors
    ///
    /// As [`open`](Reader::open).
    #[cfg_attr(not(test), allow(dead_code, reason = "the broker example reads a live log"))]
    pub(crate) fn refresh(&mut self, dir: &Path) -> Result<(), LogError> {
        match self.segments.last_mut() {
            Some(last) => last.catch_up()?,
            None => {
                for base in list_segments(dir)? {
                    self.segments.push(open_segment(dir, base, self.bufs)?);
                }
            }
        }
        while let Some(last) = self.segments.last_mut() {
            let next = segment_path(dir, last.next_offset, "log");
            if !next.exists() {
                break;
            }
            last.index_files = None; // rolled past: complete, it grows no more
            let base = last.next_offset;
            self.segments.push(open_segment(dir, base, self.bufs)?);
        }
        Ok(())
    }

    /// The offset after the log's last record.
    pub(crate) fn next_offset(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.next_offset)
    }

    /// Segments in the log.
    pub(crate) fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The batch holding `offset`, read and CRC-checked, or `None` past the
    /// end. Cost: two binary searches, a header read per batch between the
    /// index entry and the target, one read of the batch.
    ///
    /// # Errors
    ///
    /// On I/O failure or corruption (a CRC mismatch names the record).
    pub(crate) fn fetch(&self, offset: u64) -> Result<Option<Fetch<'_, S::Buf<'s>>>, LogError> {
        let i = self.segments.partition_point(|s| s.base <= offset);
        let Some(seg) = i.checked_sub(1).map(|i| &self.segments[i]) else { return Ok(None) };
        if offset >= seg.next_offset {
            return Ok(None);
        }
        let relative = u32::try_from(offset - seg.base).expect("segments hold under 4G records");
        let start = u64::from(seg.offsets.lookup(relative).position);
        match find_batch(seg, start, |h| h.next_offset() > offset)? {
            Some((position, header)) => self.read_batch(seg, position, header).map(Some),
            None => Ok(None),
        }
    }

    /// The offset of the first record (in offset order) with a timestamp of
    /// at least `timestamp`, or `None` if there is none. Cost: a pass over
    /// segment maxima, a binary search of one time index and one offset
    /// index, then headers and batches from there to the record.
    ///
    /// # Errors
    ///
    /// As [`fetch`](Reader::fetch).
    pub(crate) fn offset_for_time(&self, timestamp: i64) -> Result<Option<u64>, LogError> {
        let Some(seg) = self.segments.iter().find(|s| s.max_timestamp >= timestamp) else { return Ok(None) };
        let relative = seg.times.lookup(timestamp);
        let mut position = u64::from(seg.offsets.lookup(relative).position);
        while let Some((at, header)) = find_batch(seg, position, |h| h.max_timestamp >= timestamp)? {
            let fetch = self.read_batch(seg, at, header)?;
            for record in fetch.records() {
                let (offset, view) = record?;
                if view.timestamp >= timestamp {
                    return Ok(Some(offset));
                }
            }
            position = at + header.total_len();
        }
        Ok(None)
    }

    /// Reads and checks the batch at `position` whose header is `header`.
    fn read_batch<'r>(
        &'r self,
        seg: &'r SegmentReader<S::Buf<'s>>,
        position: u64,
        header: BatchHeader,
    ) -> Result<Fetch<'r, S::Buf<'s>>, LogError> {
        let mut payload = self.bufs.zeroed(header.payload_len as usize);
        seg.file
            .read_exact_at(&mut payload, position + BATCH_HEADER_LEN as u64)
            .map_err(LogError::io("read", &seg.path))?;
        let mut raw = [0; BATCH_HEADER_LEN];
        seg.file.read_exact_at(&mut raw, position).map_err(LogError::io("read", &seg.path))?;
        let fetch = Fetch { header, position, path: &seg.path, payload };
        if let Err(source) = codec::verify_batch(&raw, &header, &fetch.payload) {
            // Name the record that is damaged, if one is; else the batch.
            fetch.records().find_map(Result::err).map_or(Ok(()), Err)?;
            return Err(LogError::Corrupt { path: seg.path.clone(), position, offset: None, source });
        }
        Ok(fetch)
    }
}

/// Walks batch headers from `position` to the first for which `wanted`
/// holds; `None` at the segment's end.
fn find_batch<B>(
    seg: &SegmentReader<B>,
    mut position: u64,
    wanted: impl Fn(&BatchHeader) -> bool,
) -> Result<Option<(u64, BatchHeader)>, LogError> {
    while position < seg.len {
        let header = parse_header_at(&seg.file, &seg.path, position)?.ok_or_else(|| LogError::Corrupt {
            path: seg.path.clone(),
            position,
            offset: None,
            source: CodecError::Truncated { needed: BATCH_HEADER_LEN, available: (seg.len - position) as usize },
        })?;
        if wanted(&header) {
            return Ok(Some((position, header)));
        }
        position += header.total_len();
    }
    Ok(None)
}

/// The header at `position`, `None` if the file ends inside it.
fn parse_header_at(file: &File, path: &Path, position: u64) -> Result<Option<BatchHeader>, LogError> {
    let Some(raw) = read_header(file, position).map_err(LogError::io("read", path))? else { return Ok(None) };
    let header = BatchHeader::parse(&raw).map_err(|source| LogError::Corrupt {
        path: path.to_path_buf(),
        position,
        offset: None,
        source,
    })?;
    Ok(Some(header))
}

/// Opens the index file at `path` and reads it whole into a buffer from
/// `bufs`.
fn read_index<'s, S: Buffers>(bufs: &'s S, path: &Path) -> Result<(File, S::Buf<'s>), LogError> {
    let mut file = File::open(path).map_err(LogError::io("open", path))?;
    let len = file.metadata().map_err(LogError::io("stat", path))?.len() as usize;
    let mut buf = bufs.zeroed(len);
    file.read_exact(&mut buf).map_err(LogError::io("read", path))?;
    Ok((file, buf))
}

/// Opens segment `base`: its file, its indexes, and a scan of the batch
/// headers after the last index entry to find its end and newest timestamp.
fn open_segment<'s, S: Buffers>(dir: &Path, base: u64, bufs: &'s S) -> Result<SegmentReader<S::Buf<'s>>, LogError> {
    let path = segment_path(dir, base, "log");
    let file = File::open(&path).map_err(LogError::io("open", &path))?;
    let file_len = file.metadata().map_err(LogError::io("stat", &path))?.len();
    let (offsets_file, offsets) = read_index(bufs, &segment_path(dir, base, "index"))?;
    let (times_file, times) = read_index(bufs, &segment_path(dir, base, "timeindex"))?;
    let (offsets, times) = (OffsetIndex::new(offsets), TimeIndex::new(times));
    // Start from the last index entry when it is consistent with the file
    // (an unrecovered log may have entries past a torn tail), else from 0.
    let (mut position, mut next_offset, mut max_timestamp) = (0, base, i64::MIN);
    if let Some(last) = times.len().checked_sub(1).map(|i| times.entry(i)) {
        let entry = offsets.lookup(last.relative_offset);
        if entry.relative_offset == last.relative_offset && u64::from(entry.position) < file_len {
            position = u64::from(entry.position);
            next_offset = base + u64::from(entry.relative_offset);
            max_timestamp = last.max_timestamp_before;
        }
    }
    let index_files = Some((offsets_file, times_file));
    let mut seg =
        SegmentReader { base, path, file, len: position, offsets, times, next_offset, max_timestamp, index_files };
    seg.scan_batches(file_len)?;
    Ok(seg)
}

// === impl SegmentReader ===

impl<B: ByteBuf> SegmentReader<B> {
    /// Takes in what was appended since the segment was opened or last
    /// caught up: index entries, then whole batches.
    fn catch_up(&mut self) -> Result<(), LogError> {
        if let Some((offsets, times)) = &self.index_files {
            let path = &self.path;
            read_tail(offsets, self.offsets.byte_len(), |b| self.offsets.extend(b))
                .map_err(LogError::io("read the offset index of", path))?;
            read_tail(times, self.times.byte_len(), |b| self.times.extend(b))
                .map_err(LogError::io("read the time index of", path))?;
        }
        let file_len = self.file.metadata().map_err(LogError::io("stat", &self.path))?.len();
        self.scan_batches(file_len)
    }

    /// Walks the batch headers from the known end to `file_len`, stopping
    /// before a torn (or still being written) batch.
    fn scan_batches(&mut self, file_len: u64) -> Result<(), LogError> {
        while self.len < file_len {
            let Some(h) = parse_header_at(&self.file, &self.path, self.len)? else { break };
            if self.len + h.total_len() > file_len {
                break; // a torn tail, or a batch still being written
            }
            (self.next_offset, self.max_timestamp) = (h.next_offset(), self.max_timestamp.max(h.max_timestamp));
            self.len += h.total_len();
        }
        Ok(())
    }
}

/// Passes the bytes of `file` from `from` to its end to `sink`, a page at a
/// time, through a buffer on the stack.
fn read_tail(file: &File, from: usize, mut sink: impl FnMut(&[u8])) -> std::io::Result<()> {
    let mut chunk = [0u8; 4096];
    let mut at = from as u64;
    loop {
        match file.read_at(&mut chunk, at)? {
            0 => return Ok(()),
            n => {
                sink(&chunk[..n]);
                at += n as u64;
            }
        }
    }
}
