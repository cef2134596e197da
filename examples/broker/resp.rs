//! RESP2, the Redis protocol, as the broker speaks it: a parser for requests
//! (multibulk arrays of bulk strings, and inline commands as `redis-cli`
//! and `telnet` send them) and encoders for replies. Pure byte work: no
//! sockets, no buffers of its own.
//!
//! ```text
//! request = "*" n CRLF ( "$" len CRLF bytes CRLF ){n}       multibulk
//!         | word ( " " word )* CRLF                         inline
//! reply   = "+" text CRLF | "-" text CRLF | ":" int CRLF
//!         | "$" len CRLF bytes CRLF | "$-1" CRLF | "*" n CRLF reply{n}
//! ```
//!
//! # Invariants
//!
//! - [`parse`] never trusts a length: an array count or bulk length that
//!   would take the frame past `max_request` bytes is an error before any
//!   byte of it is awaited, the `need` of a partial frame is at most
//!   `max_request`, and a partial frame of `max_request` bytes or more is
//!   an error. So a caller that reserves `need` never allocates what a
//!   client merely claims, and never holds more than `max_request` of one
//!   request.
//! - [`parse`] is stateless: a partial frame is parsed again from its start
//!   when more bytes arrive, skipping bulk bodies by their lengths, so a
//!   re-parse costs the frame's headers, not its bytes.
//!
//! Used by the connection loop (`conn.rs`) and the command layer.

use std::fmt;
use std::ops::Range;

use bytes::BufMut;

/// Longest count or length line (`*`, `$`): a sign, 20 digits, CRLF.
const MAX_COUNT_LINE: usize = 24;
/// Longest inline command line, as Redis (64 KiB).
pub(crate) const MAX_INLINE: usize = 64 << 10;
/// Fewest bytes one array element takes on the wire: `$0\r\n\r\n`.
const MIN_ELEMENT: usize = 6;

/// What [`parse`] found at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole request of `len` bytes; its arguments are in `args`.
    Frame {
        /// Bytes of the request, from the start of the buffer.
        len: usize,
    },
    /// Not a whole request yet: at least `need` bytes (from the start of
    /// the buffer) are needed, `need <= max_request`.
    Partial {
        /// Bytes the request needs at least.
        need: usize,
    },
}

/// A request that is not RESP2: the connection answers with the error and
/// closes, as Redis does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProtoError {
    /// The first byte is neither `*` nor the start of an inline command.
    BadType(u8),
    /// An array count that is not a number, negative, or too large.
    BadArrayLen,
    /// An array element that is not a bulk string.
    ExpectedBulk(u8),
    /// A bulk length that is not a number, negative, or too large.
    BadBulkLen,
    /// A bulk string not followed by CRLF.
    BadTerminator,
    /// The request would be longer than `max_request` bytes.
    TooLarge {
        /// The configured maximum.
        max: usize,
    },
    /// An inline command longer than 64 KiB.
    InlineTooLong,
}

impl fmt::Display for ProtoError {
    /// Redis' own wording, after `ERR Protocol error: `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::BadType(b) => write!(f, "unexpected request type byte {}", Byte(*b)),
            ProtoError::BadArrayLen => f.write_str("invalid multibulk length"),
            ProtoError::ExpectedBulk(b) => write!(f, "expected '$', got {}", Byte(*b)),
            ProtoError::BadBulkLen => f.write_str("invalid bulk length"),
            ProtoError::BadTerminator => f.write_str("bulk string not terminated by CRLF"),
            ProtoError::TooLarge { max } => write!(f, "request larger than the maximum of {max} bytes"),
            ProtoError::InlineTooLong => f.write_str("too big inline request"),
        }
    }
}

/// A byte as Redis quotes it: `'x'` when printable, else `'\xNN'`.
struct Byte(u8);

impl fmt::Display for Byte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b if b.is_ascii_graphic() => write!(f, "'{}'", b as char),
            b => write!(f, "'\\x{b:02x}'"),
        }
    }
}

/// Parses the request at the start of `buf`, allowing at most `max_request`
/// bytes for it. On [`Parsed::Frame`], `args` holds the ranges of its
/// arguments in `buf` (cleared first; it grows only as elements actually
/// arrive). An empty array (`*0`) is a frame with no arguments, which Redis
/// ignores. Cost: O(arguments) plus, for an inline command, O(line).
///
/// # Errors
///
/// A [`ProtoError`] when the bytes are not a request, or would exceed
/// `max_request`.
pub(crate) fn parse(buf: &[u8], max_request: usize, args: &mut Vec<Range<usize>>) -> Result<Parsed, ProtoError> {
    args.clear();
    let parsed = match buf.first() {
        None => Ok(Parsed::Partial { need: 1 }),
        Some(b'*') => parse_multibulk(buf, max_request, args),
        Some(b) if b.is_ascii_alphabetic() => parse_inline(buf, max_request, args),
        Some(&b) => Err(ProtoError::BadType(b)),
    };
    match parsed {
        // Whatever the parser makes of it, a partial request never holds
        // more than the maximum: the caller's buffer stays bounded.
        Ok(Parsed::Partial { .. }) if buf.len() >= max_request => Err(ProtoError::TooLarge { max: max_request }),
        parsed => parsed,
    }
}

fn parse_multibulk(buf: &[u8], max: usize, args: &mut Vec<Range<usize>>) -> Result<Parsed, ProtoError> {
    let Some((count, mut pos)) = count_line(buf, 1, ProtoError::BadArrayLen)? else {
        return Ok(partial(buf.len() + 1, max));
    };
    // Each element takes at least MIN_ELEMENT bytes: a count the maximum
    // cannot hold is refused before anything is awaited.
    if count < 0 || count as u64 > (max / MIN_ELEMENT) as u64 {
        return Err(ProtoError::BadArrayLen);
    }
    for _ in 0..count {
        match buf.get(pos) {
            None => return Ok(partial(pos + MIN_ELEMENT, max)),
            Some(b'$') => {}
            Some(&b) => return Err(ProtoError::ExpectedBulk(b)),
        }
        let Some((len, start)) = count_line(buf, pos + 1, ProtoError::BadBulkLen)? else {
            return Ok(partial(buf.len() + 1, max));
        };
        if len < 0 || len as u64 > max as u64 {
            return Err(ProtoError::BadBulkLen);
        }
        let end = start + len as usize;
        if end + 2 > max {
            return Err(ProtoError::TooLarge { max });
        }
        if buf.len() < end + 2 {
            return Ok(partial(end + 2, max));
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ProtoError::BadTerminator);
        }
        args.push(start..end);
        pos = end + 2;
    }
    Ok(Parsed::Frame { len: pos })
}

/// A partial frame's need, which the callers have checked against `max`,
/// except for the one-more-byte cases.
fn partial(need: usize, max: usize) -> Parsed {
    Parsed::Partial { need: need.min(max) }
}

/// Reads the integer line starting at `at` (after its type byte): the
/// value and the position after its CRLF, or `None` if the line is not
/// whole yet.
fn count_line(buf: &[u8], at: usize, bad: ProtoError) -> Result<Option<(i64, usize)>, ProtoError> {
    let window = &buf[at.min(buf.len())..buf.len().min(at + MAX_COUNT_LINE)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return if window.len() == MAX_COUNT_LINE { Err(bad) } else { Ok(None) };
    };
    match buf.get(at + cr + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(bad),
    }
    let value = std::str::from_utf8(&window[..cr]).ok().and_then(|s| s.parse::<i64>().ok()).ok_or(bad)?;
    Ok(Some((value, at + cr + 2)))
}

fn parse_inline(buf: &[u8], max: usize, args: &mut Vec<Range<usize>>) -> Result<Parsed, ProtoError> {
    let limit = MAX_INLINE.min(max);
    let Some(nl) = buf.iter().take(limit).position(|&b| b == b'\n') else {
        return if buf.len() >= limit { Err(ProtoError::InlineTooLong) } else { Ok(partial(buf.len() + 1, max)) };
    };
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut at = 0;
    for word in line.split(|&b| b == b' ' || b == b'\t') {
        if !word.is_empty() {
            args.push(at..at + word.len());
        }
        at += word.len() + 1;
    }
    Ok(Parsed::Frame { len: nl + 1 })
}

// === replies ===

/// `+text\r\n`.
pub(crate) fn simple(out: &mut impl BufMut, text: &[u8]) {
    out.put_u8(b'+');
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

/// `-message\r\n`; `message` starts with its code (`ERR`, `WRONGTYPE`).
/// CR and LF in it become spaces, so the reply stays one line.
pub(crate) fn error(out: &mut impl BufMut, message: &str) {
    out.put_u8(b'-');
    for b in message.bytes() {
        out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
    }
    out.put_slice(b"\r\n");
}

/// `:n\r\n`.
pub(crate) fn integer(out: &mut impl BufMut, n: i64) {
    out.put_u8(b':');
    decimal(out, n);
    out.put_slice(b"\r\n");
}

/// `$len\r\nbytes\r\n`.
pub(crate) fn bulk(out: &mut impl BufMut, bytes: &[u8]) {
    bulk_header(out, bytes.len());
    out.put_slice(bytes);
    out.put_slice(b"\r\n");
}

/// `$len\r\n`: the start of a bulk string whose bytes the caller writes,
/// then ends with [`bulk_end`].
pub(crate) fn bulk_header(out: &mut impl BufMut, len: usize) {
    out.put_u8(b'$');
    decimal(out, len as i64);
    out.put_slice(b"\r\n");
}

/// The CRLF after a bulk string's bytes.
pub(crate) fn bulk_end(out: &mut impl BufMut) {
    out.put_slice(b"\r\n");
}

/// `$-1\r\n`: the null bulk string (a missing key).
pub(crate) fn null(out: &mut impl BufMut) {
    out.put_slice(b"$-1\r\n");
}

/// `*n\r\n`: an array of the `n` replies that follow.
pub(crate) fn array(out: &mut impl BufMut, n: usize) {
    out.put_u8(b'*');
    decimal(out, n as i64);
    out.put_slice(b"\r\n");
}

/// Bytes of the reply [`bulk`] writes for `len` bytes.
pub(crate) fn bulk_len(len: usize) -> usize {
    len + 5 + digits(len as u64)
}

/// `n` in decimal, with no allocation.
pub(crate) fn decimal(out: &mut impl BufMut, n: i64) {
    if n < 0 {
        out.put_u8(b'-');
    }
    let mut v = n.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
}

fn digits(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// Parses a decimal `u64` argument (no sign, no spaces).
pub(crate) fn parse_u64(arg: &[u8]) -> Option<u64> {
    if arg.is_empty() || arg.len() > 20 || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}
