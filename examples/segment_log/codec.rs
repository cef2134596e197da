//! The on-disk format: records framed with a length and a CRC32C, gathered in
//! batches framed the same way. Pure byte work: no files, no threads.
//!
//! ```text
//! batch  = header payload
//! header = magic "MPB1" | payload_len u32 | base_offset u64 | record_count u32
//!        | min_timestamp i64 | max_timestamp i64 | crc u32      (40 bytes)
//!          crc = CRC32C(header[0..36] ++ payload)
//! payload = record*                (record i has offset base_offset + i)
//! record = body_len u32 | crc u32 | body                        crc = CRC32C(body)
//! body   = timestamp i64 | key_len u32 | key | header_count u16
//!        | (name_len u16 | name | value_len u32 | value)* | value_len u32 | value
//! ```
//!
//! All integers are little-endian. The value comes last so that an encoder
//! can stream it in without knowing its bytes up front.
//!
//! # Invariants
//!
//! - A batch whose header parses and whose CRC matches was written whole: a
//!   torn write leaves a short header, a short payload or a CRC mismatch.
//! - Decoding never reads past the slice it is given; every length is checked.
//!
//! Used by the workload (encoding), the segment writer (batches, recovery) and
//! the reader (decoding).

use std::fmt;

use crate::bufs::ByteBuf;

/// Bytes before a record's body: its length and its CRC.
pub(crate) const RECORD_PREFIX: usize = 8;
/// Bytes of a batch header.
pub(crate) const BATCH_HEADER_LEN: usize = 40;
/// The first four bytes of every batch.
pub(crate) const MAGIC: [u8; 4] = *b"MPB1";
/// Where the header's CRC sits (it covers the bytes before it).
const CRC_AT: usize = 36;

/// A record header: a name and a value, both bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    /// The header's name.
    pub(crate) name: &'a [u8],
    /// The header's value.
    pub(crate) value: &'a [u8],
}

/// A record to encode whole (the workload streams its values instead).
#[cfg_attr(not(test), allow(dead_code, reason = "the tests encode whole records"))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    /// Milliseconds since the epoch (any `i64`).
    pub(crate) timestamp: i64,
    /// The record's key.
    pub(crate) key: &'a [u8],
    /// The record's headers, in order.
    pub(crate) headers: &'a [Header<'a>],
    /// The record's value.
    pub(crate) value: &'a [u8],
}

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CodecError {
    /// The bytes end before the structure does.
    Truncated {
        /// Bytes the structure needs from where it starts.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// A stored CRC32C differs from the one computed over the bytes.
    Crc {
        /// What the bytes say.
        stored: u32,
        /// What the bytes hash to.
        computed: u32,
    },
    /// The bytes are not a batch or record at all.
    Malformed(&'static str),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} present")
            }
            CodecError::Crc { stored, computed } => {
                write!(f, "CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
            CodecError::Malformed(what) => write!(f, "malformed: {what}"),
        }
    }
}

impl std::error::Error for CodecError {}

// === records ===

/// Appends `record` to `out`, length-prefixed and CRC'd; returns its encoded
/// length. O(record size), plus one move of `out` if it must grow.
#[cfg_attr(not(test), allow(dead_code, reason = "the tests encode whole records"))]
pub(crate) fn encode_record<B: ByteBuf + ?Sized>(out: &mut B, record: &Record<'_>) -> usize {
    encode_record_with(out, record.timestamp, record.key, record.headers, record.value.len(), |out| {
        out.extend_from_slice(record.value)
    })
}

/// Like [`encode_record`], with the value's `value_len` bytes appended by
/// `fill_value` (so a producer can generate them straight into `out`).
///
/// # Panics
///
/// If `fill_value` appends other than `value_len` bytes, or a field is longer
/// than its length prefix can say (key, value: 4 GiB; header name: 64 KiB;
/// header count: 65535).
pub(crate) fn encode_record_with<B, F>(
    out: &mut B,
    timestamp: i64,
    key: &[u8],
    headers: &[Header<'_>],
    value_len: usize,
    fill_value: F,
) -> usize
where
    B: ByteBuf + ?Sized,
    F: FnOnce(&mut B),
{
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_PREFIX]);
    out.extend_from_slice(&timestamp.to_le_bytes());
    put_len32(out, key.len());
    out.extend_from_slice(key);
    let count = u16::try_from(headers.len()).expect("at most 65535 headers");
    out.extend_from_slice(&count.to_le_bytes());
    for h in headers {
        let name_len = u16::try_from(h.name.len()).expect("header names under 64 KiB");
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(h.name);
        put_len32(out, h.value.len());
        out.extend_from_slice(h.value);
    }
    put_len32(out, value_len);
    let value_start = out.len();
    fill_value(out);
    assert_eq!(out.len() - value_start, value_len, "fill_value must append exactly value_len bytes");
    let body_len = out.len() - start - RECORD_PREFIX;
    let crc = crc32c::crc32c(&out[start + RECORD_PREFIX..]);
    out[start..start + 4].copy_from_slice(&len32(body_len).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out.len() - start
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).expect("record fields under 4 GiB")
}

fn put_len32<B: ByteBuf + ?Sized>(out: &mut B, len: usize) {
    out.extend_from_slice(&len32(len).to_le_bytes());
}

/// A record decoded in place, borrowing the bytes it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordView<'a> {
    /// The record's timestamp.
    pub(crate) timestamp: i64,
    /// The record's key.
    pub(crate) key: &'a [u8],
    /// The encoded headers (`header_count` of them).
    headers: &'a [u8],
    header_count: u16,
    /// The record's value.
    pub(crate) value: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// The headers, in order. Allocates nothing.
    pub(crate) fn headers(&self) -> HeaderIter<'a> {
        HeaderIter { cursor: Cursor { bytes: self.headers, pos: 0 }, left: self.header_count }
    }
}

/// Iterator over a [`RecordView`]'s headers (checked when the view was made).
#[derive(Debug, Clone)]
pub(crate) struct HeaderIter<'a> {
    cursor: Cursor<'a>,
    left: u16,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = Header<'a>;
    fn next(&mut self) -> Option<Header<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        read_header(&mut self.cursor).ok()
    }
}

/// Decodes the record at the start of `bytes`, checking its CRC; returns it
/// and its encoded length. O(record size).
///
/// # Errors
///
/// [`CodecError::Truncated`] when `bytes` ends early, [`CodecError::Crc`] when
/// the body does not match its CRC, [`CodecError::Malformed`] when the body's
/// fields do not add up to its length.
pub(crate) fn decode_record(bytes: &[u8]) -> Result<(RecordView<'_>, usize), CodecError> {
    let mut c = Cursor { bytes, pos: 0 };
    let body_len = c.u32()? as usize;
    let stored = c.u32()?;
    let body = c.take(body_len)?;
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(CodecError::Crc { stored, computed });
    }
    let mut b = Cursor { bytes: body, pos: 0 };
    let timestamp = b.i64()?;
    let key_len = b.u32()? as usize;
    let key = b.take(key_len)?;
    let header_count = b.u16()?;
    let headers_start = b.pos;
    for _ in 0..header_count {
        read_header(&mut b)?;
    }
    let headers = &body[headers_start..b.pos];
    let value_len = b.u32()? as usize;
    let value = b.take(value_len)?;
    if b.pos != body.len() {
        return Err(CodecError::Malformed("record body longer than its fields"));
    }
    Ok((RecordView { timestamp, key, headers, header_count, value }, RECORD_PREFIX + body_len))
}

fn read_header<'a>(c: &mut Cursor<'a>) -> Result<Header<'a>, CodecError> {
    let name_len = c.u16()? as usize;
    let name = c.take(name_len)?;
    let value_len = c.u32()? as usize;
    Ok(Header { name, value: c.take(value_len)? })
}

/// A bounds-checked reader over a byte slice.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let available = self.bytes.len() - self.pos;
        if n > available {
            return Err(CodecError::Truncated { needed: n, available });
        }
        self.pos += n;
        Ok(&self.bytes[self.pos - n..self.pos])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u16(&mut self) -> Result<u16, CodecError> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        self.array().map(u32::from_le_bytes)
    }
    fn i64(&mut self) -> Result<i64, CodecError> {
        self.array().map(i64::from_le_bytes)
    }
}

// === batches ===

/// A parsed batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    /// Bytes of records after the header.
    pub(crate) payload_len: u32,
    /// Offset of the batch's first record.
    pub(crate) base_offset: u64,
    /// Records in the batch (at least 1).
    pub(crate) record_count: u32,
    /// Smallest record timestamp in the batch.
    pub(crate) min_timestamp: i64,
    /// Largest record timestamp in the batch.
    pub(crate) max_timestamp: i64,
    /// CRC32C of the header's first 36 bytes and the payload.
    pub(crate) crc: u32,
}

impl BatchHeader {
    /// Parses a header. Checks the magic and the counts, not the CRC (which
    /// needs the payload: see [`verify_batch`]).
    ///
    /// # Errors
    ///
    /// [`CodecError::Malformed`] for a wrong magic or an empty batch.
    pub(crate) fn parse(bytes: &[u8; BATCH_HEADER_LEN]) -> Result<BatchHeader, CodecError> {
        if bytes[..4] != MAGIC {
            return Err(CodecError::Malformed("no batch magic"));
        }
        let mut c = Cursor { bytes, pos: 4 };
        let payload_len = c.u32()?;
        let base_offset = u64::from_le_bytes(c.array()?);
        let record_count = c.u32()?;
        let (min_timestamp, max_timestamp) = (c.i64()?, c.i64()?);
        let crc = c.u32()?;
        if record_count == 0 || payload_len < record_count.saturating_mul(RECORD_PREFIX as u32) {
            return Err(CodecError::Malformed("batch counts do not add up"));
        }
        Ok(BatchHeader { payload_len, base_offset, record_count, min_timestamp, max_timestamp, crc })
    }

    /// The offset after the batch's last record.
    pub(crate) fn next_offset(&self) -> u64 {
        self.base_offset + u64::from(self.record_count)
    }

    /// Bytes of the whole batch, header included.
    pub(crate) fn total_len(&self) -> u64 {
        BATCH_HEADER_LEN as u64 + u64::from(self.payload_len)
    }
}

/// Checks a batch's CRC over its raw header and payload. O(payload).
///
/// # Errors
///
/// [`CodecError::Truncated`] when `payload` is shorter than the header says,
/// [`CodecError::Crc`] on a mismatch.
pub(crate) fn verify_batch(
    raw_header: &[u8; BATCH_HEADER_LEN],
    header: &BatchHeader,
    payload: &[u8],
) -> Result<(), CodecError> {
    let want = header.payload_len as usize;
    if payload.len() < want {
        return Err(CodecError::Truncated { needed: want, available: payload.len() });
    }
    let computed = crc32c::crc32c_append(crc32c::crc32c(&raw_header[..CRC_AT]), &payload[..want]);
    if computed != header.crc {
        return Err(CodecError::Crc { stored: header.crc, computed });
    }
    Ok(())
}

/// Gathers encoded records into one batch buffer: header space first, then
/// each record copied in; [`finish`](BatchBuilder::finish) fills the header.
#[derive(Debug)]
pub(crate) struct BatchBuilder<B> {
    buf: B,
    count: u32,
    min_timestamp: i64,
    max_timestamp: i64,
}

impl<B: ByteBuf> BatchBuilder<B> {
    /// Starts a batch in `buf` (cleared first).
    pub(crate) fn new(mut buf: B) -> BatchBuilder<B> {
        buf.clear();
        buf.extend_from_slice(&[0; BATCH_HEADER_LEN]);
        BatchBuilder { buf, count: 0, min_timestamp: i64::MAX, max_timestamp: i64::MIN }
    }

    /// Appends one record as [`encode_record`] made it. O(record), plus one
    /// move of the batch buffer if it must grow.
    ///
    /// # Errors
    ///
    /// When `record` is not exactly one encoded record (checked: length, CRC).
    pub(crate) fn push(&mut self, record: &[u8]) -> Result<(), CodecError> {
        let (view, len) = decode_record(record)?;
        if len != record.len() {
            return Err(CodecError::Malformed("bytes after the record"));
        }
        self.min_timestamp = self.min_timestamp.min(view.timestamp);
        self.max_timestamp = self.max_timestamp.max(view.timestamp);
        self.buf.extend_from_slice(record);
        self.count += 1;
        Ok(())
    }

    /// Records pushed so far.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// Bytes of the batch so far, header included.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Fills in the header for a batch starting at `base_offset` and returns
    /// the finished batch bytes.
    ///
    /// # Panics
    ///
    /// If no record was pushed, or the payload is 4 GiB or more.
    pub(crate) fn finish(mut self, base_offset: u64) -> B {
        assert!(self.count > 0, "a batch holds at least one record");
        let payload_len = len32(self.buf.len() - BATCH_HEADER_LEN);
        let h = &mut self.buf[..BATCH_HEADER_LEN];
        h[..4].copy_from_slice(&MAGIC);
        h[4..8].copy_from_slice(&payload_len.to_le_bytes());
        h[8..16].copy_from_slice(&base_offset.to_le_bytes());
        h[16..20].copy_from_slice(&self.count.to_le_bytes());
        h[20..28].copy_from_slice(&self.min_timestamp.to_le_bytes());
        h[28..36].copy_from_slice(&self.max_timestamp.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&h[..CRC_AT]), &self.buf[BATCH_HEADER_LEN..]);
        self.buf[CRC_AT..BATCH_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

/// Where one decoded record lies in its batch: its offset in the log and its
/// span in the batch's payload. Plain data (no borrow), so that a list of
/// them can be kept and reused across batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordRef {
    pub(crate) offset: u64,
    pub(crate) at: u32,
    pub(crate) len: u32,
}

/// The records of a batch payload, each with its byte position in the
/// payload; each record's CRC is checked as it is reached. After an error it
/// ends.
#[derive(Debug, Clone)]
pub(crate) struct RecordIter<'a> {
    payload: &'a [u8],
    pos: usize,
    left: u32,
}

impl<'a> RecordIter<'a> {
    /// Iterates the `count` records of `payload`.
    pub(crate) fn new(payload: &'a [u8], count: u32) -> RecordIter<'a> {
        RecordIter { payload, pos: 0, left: count }
    }
}

impl<'a> Iterator for RecordIter<'a> {
    /// The record's position in the payload, and the record or why it failed.
    type Item = (usize, Result<RecordView<'a>, CodecError>);

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.pos;
        if self.left == 0 {
            if at == self.payload.len() {
                return None;
            }
            self.pos = self.payload.len();
            return Some((at, Err(CodecError::Malformed("bytes after the batch's last record"))));
        }
        self.left -= 1;
        match decode_record(&self.payload[at..]) {
            Ok((view, len)) => {
                self.pos += len;
                Some((at, Ok(view)))
            }
            Err(e) => {
                (self.left, self.pos) = (0, self.payload.len());
                Some((at, Err(e)))
            }
        }
    }
}
