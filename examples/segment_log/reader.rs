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
use crate::codec::{self, BatchHeader, CodecError, RecordIter, RecordView, BATCH_HEADER_LEN};
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
            segments.push(open_segment(dir, base, bufs)?);
        }
        Ok(Reader { bufs, segments })
    }

    /// Catches up with a log that is still being appended to: re-opens the
    /// reader's last segment, whose indexes and end may have grown, and opens
    /// the segments rolled since. Cost: as [`open`](Reader::open), for those
    /// segments only (their index files are read again).
    ///
    /// # Errors
    ///
    /// As [`open`](Reader::open); the reader then ends before its last
    /// segment until a refresh succeeds.
    #[cfg_attr(not(test), allow(dead_code, reason = "the broker example reads a live log"))]
    pub(crate) fn refresh(&mut self, dir: &Path) -> Result<(), LogError> {
        let from = self.segments.pop().map_or(0, |s| s.base);
        for base in list_segments(dir)?.into_iter().filter(|&base| base >= from) {
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

/// Reads the whole file at `path` into a buffer from `bufs`.
fn read_into<'s, S: Buffers>(bufs: &'s S, path: &Path) -> Result<S::Buf<'s>, LogError> {
    let mut file = File::open(path).map_err(LogError::io("open", path))?;
    let len = file.metadata().map_err(LogError::io("stat", path))?.len() as usize;
    let mut buf = bufs.zeroed(len);
    file.read_exact(&mut buf).map_err(LogError::io("read", path))?;
    Ok(buf)
}

/// Opens segment `base`: its file, its indexes, and a scan of the batch
/// headers after the last index entry to find its end and newest timestamp.
fn open_segment<'s, S: Buffers>(dir: &Path, base: u64, bufs: &'s S) -> Result<SegmentReader<S::Buf<'s>>, LogError> {
    let path = segment_path(dir, base, "log");
    let file = File::open(&path).map_err(LogError::io("open", &path))?;
    let file_len = file.metadata().map_err(LogError::io("stat", &path))?.len();
    let offsets = OffsetIndex::new(read_into(bufs, &segment_path(dir, base, "index"))?);
    let times = TimeIndex::new(read_into(bufs, &segment_path(dir, base, "timeindex"))?);
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
    while position < file_len {
        let Some(h) = parse_header_at(&file, &path, position)? else { break };
        if position + h.total_len() > file_len {
            break; // a torn tail: the segment ends before it
        }
        (next_offset, max_timestamp) = (h.next_offset(), max_timestamp.max(h.max_timestamp));
        position += h.total_len();
    }
    Ok(SegmentReader { base, path, file, len: position, offsets, times, next_offset, max_timestamp })
}
