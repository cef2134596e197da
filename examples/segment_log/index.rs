//! The two sparse indexes of a segment, as Kafka keeps them: an offset index
//! (`.index`: offset → byte position of a batch) and a time index
//! (`.timeindex`: timestamp → offset to start scanning from).
//!
//! ```text
//! offset entry = relative_offset u32 | position u32                  (8 bytes)
//! time entry   = max_timestamp_before i64 | relative_offset u32      (12 bytes)
//! ```
//!
//! An entry is written for a batch when at least `interval` bytes of batches
//! were appended since the previous entry, so the indexes stay small; a
//! lookup returns the last entry at or before the target, and the reader
//! scans forward from there. A time entry's timestamp is the largest record
//! timestamp in the segment *before* its batch: every record before the
//! entry's offset is older than it.
//!
//! # Invariants
//!
//! - Entries are sorted: offsets and positions strictly increase, time-entry
//!   timestamps never decrease. Both files get an entry for the same batches.
//! - No entry is at relative offset 0: "start of segment" is implied.
//! - A torn trailing partial entry is ignored by the readers.
//!
//! Used by the segment writer (appending, rebuilding in recovery) and the
//! reader (lookups over index files read into pooled buffers).

use std::fs::File;
use std::io::{self, Write};
use std::ops::Deref;

use crate::bufs::{Buffers, ByteBuf};

/// Bytes of an offset-index entry.
pub(crate) const OFFSET_ENTRY: usize = 8;
/// Bytes of a time-index entry.
pub(crate) const TIME_ENTRY: usize = 12;

/// An offset-index entry: where the batch at `relative_offset` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    /// Offset of the batch's first record, less the segment's base offset.
    pub(crate) relative_offset: u32,
    /// Byte position of the batch header in the segment file.
    pub(crate) position: u32,
}

/// A time-index entry: every record of the segment before `relative_offset`
/// has a timestamp of at most `max_timestamp_before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    /// The largest record timestamp in the segment before the batch.
    pub(crate) max_timestamp_before: i64,
    /// Offset of the batch's first record, less the segment's base offset.
    pub(crate) relative_offset: u32,
}

/// The first index in `0..len` for which `is_after` is true, given that it
/// is false then true over the range (binary search, O(log len)).
fn partition(len: usize, is_after: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if is_after(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

// === impl OffsetIndex ===

/// An offset index over its encoded entries (a file's bytes).
#[derive(Debug)]
pub(crate) struct OffsetIndex<B> {
    bytes: B,
}

impl<B: Deref<Target = [u8]>> OffsetIndex<B> {
    /// Wraps encoded entries; a torn partial entry at the end is ignored.
    pub(crate) fn new(bytes: B) -> OffsetIndex<B> {
        OffsetIndex { bytes }
    }

    /// Number of whole entries. O(1).
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() / OFFSET_ENTRY
    }

    /// Entry `i`. O(1).
    ///
    /// # Panics
    ///
    /// If `i >= len()`.
    pub(crate) fn entry(&self, i: usize) -> OffsetEntry {
        assert!(i < self.len(), "offset index entry {i} of {}", self.len());
        let at = i * OFFSET_ENTRY;
        OffsetEntry { relative_offset: u32_at(&self.bytes, at), position: u32_at(&self.bytes, at + 4) }
    }

    /// The last entry at or before `relative_offset`, or the segment start
    /// `(0, 0)` when there is none. Past the end it is the last entry: the
    /// caller's scan finds out that the offset is not there. O(log entries).
    pub(crate) fn lookup(&self, relative_offset: u32) -> OffsetEntry {
        match partition(self.len(), |i| self.entry(i).relative_offset > relative_offset) {
            0 => OffsetEntry { relative_offset: 0, position: 0 },
            n => self.entry(n - 1),
        }
    }
}

impl<B: ByteBuf> OffsetIndex<B> {
    /// Bytes held, a torn partial entry included: where the file's unread
    /// tail starts. O(1).
    #[cfg_attr(not(test), allow(dead_code, reason = "readers of a live log catch up"))]
    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends bytes the file gained since (which complete a torn entry
    /// first). O(bytes), plus one move of the buffer if it must grow.
    #[cfg_attr(not(test), allow(dead_code, reason = "readers of a live log catch up"))]
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }
}

// === impl TimeIndex ===

/// A time index over its encoded entries (a file's bytes).
#[derive(Debug)]
pub(crate) struct TimeIndex<B> {
    bytes: B,
}

impl<B: Deref<Target = [u8]>> TimeIndex<B> {
    /// Wraps encoded entries; a torn partial entry at the end is ignored.
    pub(crate) fn new(bytes: B) -> TimeIndex<B> {
        TimeIndex { bytes }
    }

    /// Number of whole entries. O(1).
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() / TIME_ENTRY
    }

    /// Entry `i`. O(1).
    ///
    /// # Panics
    ///
    /// If `i >= len()`.
    pub(crate) fn entry(&self, i: usize) -> TimeEntry {
        assert!(i < self.len(), "time index entry {i} of {}", self.len());
        let at = i * TIME_ENTRY;
        let ts = i64::from_le_bytes(self.bytes[at..at + 8].try_into().expect("8 bytes"));
        TimeEntry { max_timestamp_before: ts, relative_offset: u32_at(&self.bytes, at + 8) }
    }

    /// Where to start scanning for the first record with a timestamp at
    /// least `timestamp`: the relative offset of the last entry whose records
    /// before it are all older, or 0. O(log entries).
    pub(crate) fn lookup(&self, timestamp: i64) -> u32 {
        match partition(self.len(), |i| self.entry(i).max_timestamp_before >= timestamp) {
            0 => 0,
            n => self.entry(n - 1).relative_offset,
        }
    }
}

impl<B: ByteBuf> TimeIndex<B> {
    /// Bytes held, a torn partial entry included: where the file's unread
    /// tail starts. O(1).
    #[cfg_attr(not(test), allow(dead_code, reason = "readers of a live log catch up"))]
    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends bytes the file gained since (which complete a torn entry
    /// first). O(bytes), plus one move of the buffer if it must grow.
    #[cfg_attr(not(test), allow(dead_code, reason = "readers of a live log catch up"))]
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }
}

// === impl IndexWriter ===

/// Appends the entries of one segment's two index files as batches arrive.
#[derive(Debug)]
pub(crate) struct IndexWriter {
    offsets: File,
    times: File,
    interval: u64,
    /// Bytes of batches appended since the last entry.
    since_entry: u64,
    /// Largest record timestamp in the segment so far.
    max_timestamp: i64,
    /// An entry was written since the last sync.
    unsynced: bool,
}

impl IndexWriter {
    /// Writes to `offsets` and `times` (opened for appending, empty or
    /// holding this segment's entries so far), one entry per `interval`
    /// bytes of batches. `since_entry` and `max_timestamp` carry the state
    /// of a segment reopened after recovery.
    pub(crate) fn new(offsets: File, times: File, interval: u64, since_entry: u64, max_timestamp: i64) -> IndexWriter {
        IndexWriter { offsets, times, interval: interval.max(1), since_entry, max_timestamp, unsynced: false }
    }

    /// Notes a batch of `len` bytes at `position`, its first record at
    /// `relative_offset`, its largest timestamp `max_timestamp`; writes an
    /// entry to each file when one is due, through one pooled buffer.
    ///
    /// # Errors
    ///
    /// When writing an index file fails.
    pub(crate) fn on_batch<S: Buffers>(
        &mut self,
        bufs: &S,
        relative_offset: u32,
        position: u32,
        len: u64,
        max_timestamp: i64,
    ) -> io::Result<()> {
        if relative_offset > 0 && self.since_entry >= self.interval {
            let mut entry = bufs.with_capacity(TIME_ENTRY);
            entry.extend_from_slice(&relative_offset.to_le_bytes());
            entry.extend_from_slice(&position.to_le_bytes());
            self.offsets.write_all(&entry)?;
            entry.clear();
            entry.extend_from_slice(&self.max_timestamp.to_le_bytes());
            entry.extend_from_slice(&relative_offset.to_le_bytes());
            self.times.write_all(&entry)?;
            self.since_entry = 0;
            self.unsynced = true;
        }
        self.since_entry += len;
        self.max_timestamp = self.max_timestamp.max(max_timestamp);
        Ok(())
    }

    /// Flushes both files to disk if an entry was written since last time.
    ///
    /// # Errors
    ///
    /// When `fsync` fails.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.offsets.sync_data()?;
            self.times.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }
}
