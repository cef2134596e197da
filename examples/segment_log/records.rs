//! The records a run writes, each a pure function of `(seed, id)`: the
//! producers generate them straight into buffers, and the reader regenerates
//! them to check every byte it decodes, so nothing is kept in memory.
//!
//! A record's key, timestamp, headers and value length come from a
//! [`SplitMix64`] seeded by `(seed, id)`; its value bytes from a second one.
//! The id travels in an `id` header, so the reader can tell which record it
//! holds whatever order the producers' records reached the log in.
//!
//! # Invariants
//!
//! - [`RecordSpec::new`] and [`ValueBytes`] are deterministic: the same
//!   `(seed, id, mix)` gives the same bytes on every thread and every run.
//!
//! Used by the workload's producers and reader, and by the tests.

use std::fmt;

use crate::bufs::ByteBuf;
use crate::codec::{self, Header, RecordView};

/// Sebastiano Vigna's SplitMix64: tiny, fast, and fixed forever, which a
/// regenerate-to-verify scheme needs (a library RNG may change its stream
/// between versions).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// One bucket of the value-size mix: values of `min..=max` bytes, chosen
/// with relative `weight`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SizeBucket {
    /// Smallest value size.
    pub(crate) min: usize,
    /// Largest value size.
    pub(crate) max: usize,
    /// Relative weight (any positive number).
    pub(crate) weight: f64,
}

/// The value-size mix, e.g. `100-1k:90,1k-16k:9.9,1m:0.1`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SizeMix {
    buckets: Vec<SizeBucket>,
    total: f64,
}

/// The broker-like default: mostly small records, some medium, a few 1 MiB.
pub(crate) const DEFAULT_MIX: &str = "100-1k:90,1k-16k:9.9,1m:0.1";

/// Values above this are refused (records must fit well inside a segment).
const MAX_VALUE: usize = 64 << 20;

impl SizeMix {
    /// Parses `MIN[-MAX]:WEIGHT,...`; sizes take a `k` or `m` suffix (KiB,
    /// MiB).
    ///
    /// # Errors
    ///
    /// A message naming the bucket that does not parse.
    pub(crate) fn parse(spec: &str) -> Result<SizeMix, String> {
        let buckets = spec.split(',').map(parse_bucket).collect::<Result<Vec<_>, _>>()?;
        let total = buckets.iter().map(|b| b.weight).sum();
        Ok(SizeMix { buckets, total })
    }

    /// The buckets, in the order given, with their weights.
    #[cfg_attr(not(test), allow(dead_code, reason = "the broker example runs one load per bucket"))]
    pub(crate) fn buckets(&self) -> &[SizeBucket] {
        &self.buckets
    }

    /// The share of all draws that bucket `b` gets, in `[0, 1]`.
    #[cfg_attr(not(test), allow(dead_code, reason = "the broker example runs one load per bucket"))]
    pub(crate) fn share(&self, b: &SizeBucket) -> f64 {
        b.weight / self.total
    }

    /// The mean value size.
    pub(crate) fn mean(&self) -> f64 {
        self.buckets.iter().map(|b| b.weight * (b.min + b.max) as f64 / 2.0).sum::<f64>() / self.total
    }

    /// A value size drawn from the mix.
    fn draw(&self, rng: &mut SplitMix64) -> usize {
        let mut x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * self.total;
        for b in &self.buckets {
            if x < b.weight {
                return rng.range(b.min as u64, b.max as u64) as usize;
            }
            x -= b.weight;
        }
        let last = self.buckets.last().expect("a mix has a bucket");
        rng.range(last.min as u64, last.max as u64) as usize
    }
}

impl fmt::Display for SizeMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.buckets.iter().enumerate() {
            let share = 100.0 * b.weight / self.total;
            let sep = if i == 0 { "" } else { ", " };
            match b.min == b.max {
                true => write!(f, "{sep}{share}% {}", human(b.min))?,
                false => write!(f, "{sep}{share}% {}-{}", human(b.min), human(b.max))?,
            }
        }
        Ok(())
    }
}

/// `1048576` → `1 MiB`, `1024` → `1 KiB`, `100` → `100 B`.
pub(crate) fn human(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

fn parse_bucket(text: &str) -> Result<SizeBucket, String> {
    let bad = |why: &str| format!("size bucket {text:?}: {why} (expected MIN[-MAX]:WEIGHT, e.g. 1k-16k:9.9)");
    let (sizes, weight) = text.trim().split_once(':').ok_or_else(|| bad("no ':WEIGHT'"))?;
    let weight: f64 = weight.parse().map_err(|_| bad("the weight is not a number"))?;
    if !(weight.is_finite() && weight > 0.0) {
        return Err(bad("the weight must be positive"));
    }
    let (min, max) = sizes.split_once('-').unwrap_or((sizes, sizes));
    let (min, max) = (parse_size(min).ok_or_else(|| bad("bad size"))?, parse_size(max).ok_or_else(|| bad("bad size"))?);
    if min > max || max > MAX_VALUE {
        return Err(bad("sizes must satisfy MIN <= MAX <= 64m"));
    }
    Ok(SizeBucket { min, max, weight })
}

fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim().to_ascii_lowercase();
    let (digits, unit) = match text.strip_suffix('k') {
        Some(d) => (d, 1 << 10),
        None => text.strip_suffix('m').map_or((text.as_str(), 1), |d| (d, 1 << 20)),
    };
    digits.parse::<usize>().ok()?.checked_mul(unit)
}

/// Everything about record `id` but its value bytes, which [`ValueBytes`]
/// streams. Lives on the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordSpec {
    /// The record's id (`0..records`).
    pub(crate) id: u64,
    /// Milliseconds: rising with the id, with jitter, so that the log is
    /// roughly but not strictly in time order.
    pub(crate) timestamp: i64,
    /// `user-` and 11 digits.
    pub(crate) key: [u8; 16],
    /// A random trace id (a header).
    pub(crate) trace: [u8; 16],
    /// Whether the record has a content-type header.
    pub(crate) typed: bool,
    /// Bytes of value.
    pub(crate) value_len: usize,
    /// Seed of the value's bytes.
    pub(crate) value_seed: u64,
}

/// The first record timestamp of a run (ms since the epoch, late 2023).
pub(crate) const T0: i64 = 1_700_000_000_000;
const CONTENT_TYPE: &[u8] = b"application/octet-stream";

impl RecordSpec {
    /// The record `id` of a run seeded with `seed`.
    pub(crate) fn new(seed: u64, id: u64, mix: &SizeMix) -> RecordSpec {
        let mut rng = SplitMix64::new(seed ^ id.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        let mut key = *b"user-00000000000";
        let mut n = rng.next_u64() % 100_000_000_000;
        for digit in key[5..].iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let timestamp = T0 + id as i64 * 2 + rng.range(0, 50) as i64;
        let trace = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())).to_le_bytes();
        let typed = rng.next_u64() % 4 == 0;
        let value_len = mix.draw(&mut rng);
        RecordSpec { id, timestamp, key, trace, typed, value_len, value_seed: rng.next_u64() }
    }

    /// Appends the encoded record to `out`, generating the value straight
    /// into it in 4 KiB pieces (so `out` grows as a real encoder's would).
    pub(crate) fn encode<B: ByteBuf + ?Sized>(&self, out: &mut B) -> usize {
        let id = self.id.to_le_bytes();
        let headers = [
            Header { name: b"id", value: &id },
            Header { name: b"trace", value: &self.trace },
            Header { name: b"content-type", value: CONTENT_TYPE },
        ];
        let headers = if self.typed { &headers[..] } else { &headers[..2] };
        codec::encode_record_with(out, self.timestamp, &self.key, headers, self.value_len, |out| {
            let mut value = ValueBytes::new(self.value_seed, self.value_len);
            let mut chunk = [0; 4096];
            while let Some(n) = value.fill(&mut chunk) {
                out.extend_from_slice(&chunk[..n]);
            }
        })
    }
}

/// The value bytes of a record, produced in pieces.
#[derive(Debug, Clone)]
pub(crate) struct ValueBytes {
    rng: SplitMix64,
    left: usize,
}

impl ValueBytes {
    /// The `len` value bytes seeded by `seed`.
    pub(crate) fn new(seed: u64, len: usize) -> ValueBytes {
        ValueBytes { rng: SplitMix64::new(seed), left: len }
    }

    /// Writes the next bytes into `chunk` (whose length must be a multiple
    /// of 8); returns how many, or `None` when done.
    pub(crate) fn fill(&mut self, chunk: &mut [u8]) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        let n = self.left.min(chunk.len());
        for word in chunk[..n.next_multiple_of(8)].chunks_exact_mut(8) {
            word.copy_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        self.left -= n;
        Some(n)
    }
}

/// Checks a decoded record against the one its `id` header names, field by
/// field and every value byte; returns the id.
///
/// # Errors
///
/// A message naming the first field that differs.
pub(crate) fn verify(view: &RecordView<'_>, seed: u64, mix: &SizeMix) -> Result<u64, String> {
    let mut headers = view.headers();
    let id = match headers.next() {
        Some(h) if h.name == b"id" && h.value.len() == 8 => u64::from_le_bytes(h.value.try_into().expect("8 bytes")),
        _ => return Err("no id header".into()),
    };
    let spec = RecordSpec::new(seed, id, mix);
    let expect = |ok: bool, field: &str| if ok { Ok(()) } else { Err(format!("record id {id}: {field} differs")) };
    expect(view.timestamp == spec.timestamp, "timestamp")?;
    expect(view.key == spec.key, "key")?;
    expect(headers.next().is_some_and(|h| h.name == b"trace" && h.value == spec.trace), "trace header")?;
    let third_ok = match headers.next() {
        None => !spec.typed,
        Some(h) => spec.typed && h.name == b"content-type" && h.value == CONTENT_TYPE,
    };
    expect(third_ok && headers.next().is_none(), "headers")?;
    expect(view.value.len() == spec.value_len, "value length")?;
    let mut value = ValueBytes::new(spec.value_seed, spec.value_len);
    let (mut chunk, mut at) = ([0; 4096], 0);
    while let Some(n) = value.fill(&mut chunk) {
        expect(view.value[at..at + n] == chunk[..n], "value")?;
        at += n;
    }
    Ok(id)
}
