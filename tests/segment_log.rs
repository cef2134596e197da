//! The segment_log example's log, tested through its own modules (included
//! by path, so the example and these tests share one copy of the code):
//! record and batch round trips, index lookups, CRC failures that name the
//! offset, and recovery of a segment torn in its last batch.
#![cfg(unix)]

// Each module is the example's own file; the example uses parts of them
// that these tests do not.
#[allow(dead_code)]
#[path = "../examples/segment_log/bufs.rs"]
mod bufs;
#[allow(dead_code)]
#[path = "../examples/segment_log/codec.rs"]
mod codec;
#[allow(dead_code)]
#[path = "../examples/segment_log/index.rs"]
mod index;
#[allow(dead_code)]
#[path = "../examples/segment_log/reader.rs"]
mod reader;
#[allow(dead_code)]
#[path = "../examples/segment_log/records.rs"]
mod records;
#[allow(dead_code)]
#[path = "../examples/segment_log/segment.rs"]
mod segment;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bufs::{Buffers, ByteBuf, Heap};
use codec::{BatchBuilder, BatchHeader, CodecError, Header, Record, RecordIter, BATCH_HEADER_LEN};
use index::{OffsetIndex, TimeIndex};
use magpool::Pool;
use reader::Reader;
use records::{RecordSpec, SizeMix};
use segment::{segment_path, Fsync, LogConfig, LogError, LogWriter};

// === helpers ===

/// Record `i`'s fields: values of 0 B to 3000 B, 0 to 2 headers, and
/// timestamps that rise with jitter (so the log is not in time order).
fn fields(i: u64) -> (i64, Vec<u8>, Vec<u8>) {
    let len = [0, 1, 100, 700, 3000][i as usize % 5];
    let value = (0..len).map(|j| (i as usize * 31 + j) as u8).collect();
    (1_000 + i as i64 * 10 - (i as i64 % 3) * 15, format!("key-{i}").into_bytes(), value)
}

/// Encodes record `i` into `out`; returns its encoded length.
fn encode_nth<B: ByteBuf>(out: &mut B, i: u64) -> usize {
    let (timestamp, key, value) = fields(i);
    let id = i.to_le_bytes();
    let headers = [Header { name: b"id", value: &id }, Header { name: b"h", value: b"" }];
    let headers = &headers[..i as usize % 3];
    codec::encode_record(out, &Record { timestamp, key: &key, headers, value: &value })
}

fn config(segment_bytes: u64, index_interval: u64) -> LogConfig {
    LogConfig { segment_bytes, index_interval, fsync: Fsync::Batch }
}

/// Where a record went: its offset, segment file and byte position there.
#[derive(Debug, Clone)]
struct Placed {
    offset: u64,
    segment: PathBuf,
    position: u64,
}

/// Appends batches of `sizes` records, records `first..`; says where each
/// record went.
fn append<S: Buffers>(dir: &Path, log: &mut LogWriter, bufs: &S, first: u64, sizes: &[u64]) -> Vec<Placed> {
    let (mut placed, mut i) = (Vec::new(), first);
    for &n in sizes {
        let mut batch = BatchBuilder::new(bufs.with_capacity(64));
        let mut lens = Vec::new();
        for _ in 0..n {
            let mut encoded = Vec::new();
            lens.push(encode_nth(&mut encoded, i) as u64);
            batch.push(&encoded).unwrap();
            i += 1;
        }
        let at = log.append(bufs, batch).unwrap();
        let mut position = at.position + BATCH_HEADER_LEN as u64;
        for (k, len) in lens.into_iter().enumerate() {
            let segment = segment_path(dir, at.segment, "log");
            placed.push(Placed { offset: at.base_offset + k as u64, segment, position });
            position += len;
        }
    }
    placed
}

/// Reads the whole log through `fetch`, checking each record against
/// `fields(id)` where `id(offset)` names the record written there.
fn read_all<S: Buffers>(reader: &Reader<'_, S>, id: impl Fn(u64) -> u64) -> u64 {
    let mut offset = 0;
    while let Some(fetch) = reader.fetch(offset).unwrap() {
        assert_eq!(fetch.header.base_offset, offset, "batches follow each other");
        for record in fetch.records() {
            let (at, view) = record.unwrap();
            let (timestamp, key, value) = fields(id(at));
            assert_eq!((view.timestamp, view.key, view.value), (timestamp, &key[..], &value[..]), "offset {at}");
        }
        offset = fetch.header.next_offset();
    }
    offset
}

/// Checks every segment's two index files against the rule they follow,
/// recomputed from the segment's batch headers: an entry for each batch
/// (but the first) that starts `interval` or more bytes after the previous
/// entry's batch, its time entry holding the segment's newest timestamp
/// before the batch.
fn assert_indexes_match_segments(dir: &Path, interval: u64) {
    for base in segment::list_segments(dir).unwrap() {
        let file = std::fs::File::open(segment_path(dir, base, "log")).unwrap();
        let len = file.metadata().unwrap().len();
        let (mut offsets, mut times) = (Vec::new(), Vec::new());
        let (mut position, mut since, mut max) = (0, 0, i64::MIN);
        while position < len {
            let raw = segment::read_header(&file, position).unwrap().unwrap();
            let h = BatchHeader::parse(&raw).unwrap();
            let relative = (h.base_offset - base) as u32;
            if relative > 0 && since >= interval {
                offsets.extend_from_slice(&relative.to_le_bytes());
                offsets.extend_from_slice(&(position as u32).to_le_bytes());
                times.extend_from_slice(&max.to_le_bytes());
                times.extend_from_slice(&relative.to_le_bytes());
                since = 0;
            }
            (since, max, position) = (since + h.total_len(), max.max(h.max_timestamp), position + h.total_len());
        }
        assert_eq!(std::fs::read(segment_path(dir, base, "index")).unwrap(), offsets, "segment {base}'s .index");
        assert_eq!(std::fs::read(segment_path(dir, base, "timeindex")).unwrap(), times, "segment {base}'s .timeindex");
        assert!(!offsets.is_empty() || len < 2 * interval, "segment {base} of {len} bytes has index entries");
    }
}

// === codec ===

#[test]
fn record_round_trip() {
    let pool = Pool::new();
    let big: Vec<u8> = (0..(1 << 20) + 7).map(|i| (i * 7) as u8).collect();
    let headers = [Header { name: b"a", value: b"1" }, Header { name: b"", value: &big[..70_000] }];
    let cases = [
        Record { timestamp: 0, key: b"", headers: &[], value: b"" },
        Record { timestamp: -5, key: b"k", headers: &headers[..1], value: b"v" },
        Record { timestamp: i64::MAX, key: &big[..300], headers: &headers, value: &big },
    ];
    let mut all = Vec::new();
    for rec in &cases {
        let mut pooled = pool.with_capacity(16); // grows, class by class
        let len = codec::encode_record(&mut pooled, rec);
        let mut vec = Vec::new();
        assert_eq!(codec::encode_record(&mut vec, rec), len);
        assert_eq!(&pooled[..], &vec[..], "Buf and Vec encode the same bytes");
        let (view, used) = codec::decode_record(&pooled).unwrap();
        assert_eq!(used, len);
        assert_eq!((view.timestamp, view.key, view.value), (rec.timestamp, rec.key, rec.value));
        assert!(view.headers().eq(rec.headers.iter().copied()));
        all.extend_from_slice(&vec);
    }
    // Back to back, each record decodes from where the last one ended.
    let (mut at, mut n) = (0, 0);
    while at < all.len() {
        at += codec::decode_record(&all[at..]).unwrap().1;
        n += 1;
    }
    assert_eq!((at, n), (all.len(), cases.len()));
}

#[test]
fn generated_records_verify() {
    let mix = SizeMix::parse(records::DEFAULT_MIX).unwrap();
    let pool = Pool::new();
    for id in [0, 1, 2, 77, 1_000_003] {
        let spec = RecordSpec::new(9, id, &mix);
        let mut buf = pool.with_capacity(1024);
        spec.encode(&mut buf);
        let (view, _) = codec::decode_record(&buf).unwrap();
        assert_eq!(records::verify(&view, 9, &mix), Ok(id));
        assert!(records::verify(&view, 10, &mix).is_err(), "another seed's record differs");
    }
    assert!(SizeMix::parse("1k-16k").is_err() && SizeMix::parse("2k-1k:1").is_err());
    assert!(SizeMix::parse("1k:0").is_err() && SizeMix::parse("1m:1,100-200:3").is_ok());
}

#[test]
fn truncated_record_is_an_error() {
    let mut buf = Vec::new();
    let len = encode_nth(&mut buf, 4);
    for cut in 0..len {
        assert!(matches!(codec::decode_record(&buf[..cut]), Err(CodecError::Truncated { .. })), "cut at {cut}");
    }
}

#[test]
fn batch_round_trip() {
    let pool = Pool::new();
    let mut batch = BatchBuilder::new(pool.with_capacity(16));
    for i in 0..7 {
        let mut rec = Vec::new();
        encode_nth(&mut rec, i);
        batch.push(&rec).unwrap();
    }
    assert!(batch.push(b"not a record").is_err());
    let bytes = batch.finish(1000);
    let raw: &[u8; BATCH_HEADER_LEN] = bytes[..BATCH_HEADER_LEN].try_into().unwrap();
    let header = BatchHeader::parse(raw).unwrap();
    assert_eq!((header.base_offset, header.record_count, header.next_offset()), (1000, 7, 1007));
    assert_eq!((header.min_timestamp, header.max_timestamp), (1000 - 15 * 2 + 20, 1060));
    assert_eq!(header.total_len(), bytes.len() as u64);
    codec::verify_batch(raw, &header, &bytes[BATCH_HEADER_LEN..]).unwrap();
    let keys: Vec<_> = RecordIter::new(&bytes[BATCH_HEADER_LEN..], 7).map(|(_, r)| r.unwrap().key.to_vec()).collect();
    assert_eq!(keys, (0..7).map(|i| format!("key-{i}").into_bytes()).collect::<Vec<_>>());
    let mut torn = bytes[BATCH_HEADER_LEN..].to_vec();
    torn.pop();
    assert!(codec::verify_batch(raw, &header, &torn).is_err(), "a short payload fails");
}

// === indexes ===

#[test]
fn offset_index_lookup() {
    let mut bytes = Vec::new();
    for (rel, pos) in [(10u32, 100u32), (20, 200), (30, 300)] {
        bytes.extend_from_slice(&rel.to_le_bytes());
        bytes.extend_from_slice(&pos.to_le_bytes());
    }
    bytes.extend_from_slice(&[7; 5]); // a torn partial entry: ignored
    let index = OffsetIndex::new(bytes);
    let at = |rel| {
        let e = index.lookup(rel);
        (e.relative_offset, e.position)
    };
    assert_eq!(index.len(), 3);
    assert_eq!(at(0), (0, 0), "before the first entry: the segment start");
    assert_eq!(at(9), (0, 0));
    assert_eq!(at(10), (10, 100), "exact: first entry");
    assert_eq!(at(15), (10, 100), "between sparse entries: the one before");
    assert_eq!(at(29), (20, 200));
    assert_eq!(at(30), (30, 300), "exact: last entry");
    assert_eq!(at(u32::MAX), (30, 300), "past the end: the last entry");
    assert_eq!(OffsetIndex::new(Vec::new()).lookup(5).position, 0, "an empty index");
}

#[test]
fn time_index_lookup() {
    let mut bytes = Vec::new();
    for (ts, rel) in [(100i64, 10u32), (150, 20), (150, 25), (300, 30)] {
        bytes.extend_from_slice(&ts.to_le_bytes());
        bytes.extend_from_slice(&rel.to_le_bytes());
    }
    let index = TimeIndex::new(bytes);
    let cases =
        [(i64::MIN, 0), (50, 0), (100, 0), (101, 10), (150, 10), (151, 25), (300, 25), (301, 30), (i64::MAX, 30)];
    for (ts, rel) in cases {
        assert_eq!(index.lookup(ts), rel, "lookup({ts})");
    }
}

/// A log of several segments with a dense sparse index: every offset and
/// every timestamp must be found by binary search, matching brute force.
#[test]
fn reader_lookups_match_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new();
    let (mut log, _) = LogWriter::open(dir.path(), config(16 << 10, 2048), &pool).unwrap();
    let placed = append(dir.path(), &mut log, &pool, 0, &[1, 3, 2, 5, 1, 4, 3, 3, 2, 6, 1, 1, 4, 2, 2]);
    let n = placed.len() as u64;
    assert_indexes_match_segments(dir.path(), 2048);
    let reader = Reader::open(dir.path(), &pool).unwrap();
    assert!(reader.segment_count() >= 3, "the log rolled: {} segments", reader.segment_count());
    assert_eq!(read_all(&reader, |offset| offset), n);
    for offset in 0..n {
        let fetch = reader.fetch(offset).unwrap().expect("every offset is found");
        assert!((fetch.header.base_offset..fetch.header.next_offset()).contains(&offset));
    }
    assert!(reader.fetch(n).unwrap().is_none(), "one past the end");
    assert!(reader.fetch(u64::MAX).unwrap().is_none(), "far past the end");
    for target in (900..1_600).step_by(7).chain([i64::MIN, i64::MAX]) {
        let first = (0..n).find(|&o| fields(o).0 >= target);
        assert_eq!(reader.offset_for_time(target).unwrap(), first, "time {target}");
    }
}

/// A reader opened on a log that is still written sees the appends made
/// since only after `refresh`, then all of them, in grown and new segments.
#[test]
fn reader_refresh_catches_up_with_appends() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new();
    let (mut log, _) = LogWriter::open(dir.path(), config(16 << 10, 2048), &pool).unwrap();
    let first = append(dir.path(), &mut log, &pool, 0, &[3, 2]).len() as u64;
    let mut reader = Reader::open(dir.path(), &pool).unwrap();
    assert_eq!((reader.next_offset(), reader.segment_count()), (first, 1));
    let n = first + append(dir.path(), &mut log, &pool, first, &[4, 1, 5, 2, 3, 6, 2, 4, 1, 3]).len() as u64;
    assert!(log.segments() >= 2, "the log rolled: {} segments", log.segments());
    assert_eq!(reader.next_offset(), first, "nothing new before a refresh");
    assert!(reader.fetch(first).unwrap().is_none());
    reader.refresh(dir.path()).unwrap();
    assert_eq!((reader.next_offset(), reader.segment_count()), (n, log.segments()));
    assert_eq!(read_all(&reader, |offset| offset), n);
    reader.refresh(dir.path()).unwrap();
    assert_eq!((reader.next_offset(), reader.segment_count()), (n, log.segments()), "a refresh with nothing new");
    // Many small steps, inside a segment (its indexes grow) and across
    // rolls: the caught-up reader agrees with one opened afresh.
    let mut n = n;
    for step in 0..40 {
        n += append(dir.path(), &mut log, &pool, n, &[1 + step % 4]).len() as u64;
        reader.refresh(dir.path()).unwrap();
        assert_eq!(reader.next_offset(), n, "step {step}");
    }
    let fresh = Reader::open(dir.path(), &pool).unwrap();
    assert_eq!((reader.segment_count(), fresh.segment_count()), (log.segments(), log.segments()));
    for offset in 0..n {
        let (a, b) = (reader.fetch(offset).unwrap().unwrap(), fresh.fetch(offset).unwrap().unwrap());
        assert_eq!((a.position, a.header), (b.position, b.header), "offset {offset}");
    }
    for target in (900..1_600).step_by(13) {
        assert_eq!(reader.offset_for_time(target).unwrap(), fresh.offset_for_time(target).unwrap(), "time {target}");
    }
}

// === corruption ===

/// Flips one byte of `path` at `position`.
fn flip(path: &Path, position: u64) {
    let file = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut byte = [0];
    file.read_exact_at(&mut byte, position).unwrap();
    file.write_all_at(&[byte[0] ^ 0x40], position).unwrap();
}

#[test]
fn flipped_byte_names_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = LogWriter::open(dir.path(), config(1 << 20, 4096), &Heap).unwrap();
    let placed = append(dir.path(), &mut log, &Heap, 0, &[4, 5, 4]);
    let victim = &placed[7]; // the fourth record of the second batch
    flip(&victim.segment, victim.position + 100);
    let reader = Reader::open(dir.path(), &Heap).unwrap();
    assert!(reader.fetch(0).unwrap().is_some(), "the first batch is intact");
    let err = reader.fetch(7).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LogError::Corrupt { offset: Some(7), source: CodecError::Crc { .. }, .. }), "{text}");
    assert!(text.contains("record at offset 7") && text.contains(&format!("byte {}", victim.position)), "{text}");
    assert!(text.contains("CRC32C mismatch"), "{text}");

    // A flip in the third batch's header (its max timestamp) names the batch.
    let batch_at = placed[9].position - BATCH_HEADER_LEN as u64;
    flip(&placed[9].segment, batch_at + 30);
    let err = Reader::open(dir.path(), &Heap).unwrap().fetch(10).unwrap_err();
    assert!(matches!(err, LogError::Corrupt { offset: None, .. }), "{err}");
    assert!(err.to_string().contains(&format!("byte {batch_at}: CRC32C mismatch")), "{err}");
}

// === recovery ===

/// Cuts the newest segment of a rolled log inside its last batch: the
/// reader sees everything up to the previous batch; reopening for append
/// truncates the torn bytes, rebuilds the indexes and continues the offsets.
#[test]
fn torn_tail_recovers_to_last_complete_batch() {
    for cut_into in [1, BATCH_HEADER_LEN as u64 / 2, BATCH_HEADER_LEN as u64 + 10, u64::MAX] {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::new();
        let sizes = [5, 4, 6, 3, 5, 4, 6, 3, 5];
        let (mut log, _) = LogWriter::open(dir.path(), config(12 << 10, 1024), &pool).unwrap();
        let placed = append(dir.path(), &mut log, &pool, 0, &sizes);
        drop(log);
        let last = &placed[placed.len() - sizes[sizes.len() - 1] as usize]; // first record of the last batch
        let batch_at = last.position - BATCH_HEADER_LEN as u64;
        let len = std::fs::metadata(&last.segment).unwrap().len();
        let cut = batch_at + cut_into.min(len - batch_at - 1); // u64::MAX: all but the last byte
        OpenOptions::new().write(true).open(&last.segment).unwrap().set_len(cut).unwrap();
        let kept = last.offset;

        let reader = Reader::open(dir.path(), &pool).unwrap();
        assert!(reader.segment_count() > 1, "the torn segment is not the only one");
        assert_eq!(reader.next_offset(), kept, "cut at {cut}: a reader stops before the torn batch");
        assert_eq!(read_all(&reader, |offset| offset), kept);
        drop(reader);

        let (mut log, recovery) = LogWriter::open(dir.path(), config(12 << 10, 1024), &pool).unwrap();
        assert_eq!((recovery.next_offset, recovery.truncated_bytes), (kept, cut - batch_at), "{recovery:?}");
        assert_eq!(recovery.torn_at.as_ref().map(|t| t.0), Some(batch_at));
        assert_eq!(std::fs::metadata(&last.segment).unwrap().len(), batch_at, "the torn bytes are gone");
        // Appending resumes at the next offset, with records 1000.. this time.
        let more = append(dir.path(), &mut log, &pool, 1000, &[2, 7, 3]);
        assert_eq!(more[0].offset, kept, "offsets continue after the kept batches");
        drop(log);
        assert_indexes_match_segments(dir.path(), 1024);
        let reader = Reader::open(dir.path(), &pool).unwrap();
        let total = read_all(&reader, |offset| if offset < kept { offset } else { 1000 + offset - kept });
        assert_eq!(total, kept + 12);
        for offset in 0..total {
            assert!(reader.fetch(offset).unwrap().is_some(), "rebuilt indexes find offset {offset}");
        }
    }
}

#[test]
fn garbage_tail_is_cut_too() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = LogWriter::open(dir.path(), config(1 << 20, 4096), &Heap).unwrap();
    let placed = append(dir.path(), &mut log, &Heap, 0, &[3, 3]);
    drop(log);
    let segment = &placed[0].segment;
    let len = std::fs::metadata(segment).unwrap().len();
    // A whole-looking batch whose CRC is wrong: the tail of a torn write
    // that reached the disk out of order.
    let mut fake = file_bytes(segment, placed[3].position - BATCH_HEADER_LEN as u64, len);
    fake[8..16].copy_from_slice(&6u64.to_le_bytes()); // the next base offset
    OpenOptions::new().write(true).open(segment).unwrap().write_all_at(&fake, len).unwrap();
    let (_, recovery) = LogWriter::open(dir.path(), config(1 << 20, 4096), &Heap).unwrap();
    assert!(matches!(recovery.torn_at, Some((at, CodecError::Crc { .. })) if at == len), "{recovery:?}");
    assert_eq!((recovery.next_offset, recovery.batches_kept), (6, 2));
    assert_eq!(std::fs::metadata(segment).unwrap().len(), len);
}

/// The bytes of `path` from `from` to `to`.
fn file_bytes(path: &Path, from: u64, to: u64) -> Vec<u8> {
    let mut bytes = vec![0; (to - from) as usize];
    std::fs::File::open(path).unwrap().read_exact_at(&mut bytes, from).unwrap();
    bytes
}
