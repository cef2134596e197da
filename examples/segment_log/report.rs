//! What a mode's run measured, carried from its child process to the parent
//! as `key=value` lines, and the side-by-side table the parent prints.
//!
//! # Invariants
//!
//! - [`ModeReport::parse`] reads back exactly what
//!   [`ModeReport::to_lines`] wrote; any other line is an error, so a child
//!   that printed something unexpected is noticed, not half-read.
//!
//! Used by `main.rs` only.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use magpool::Stats;

use crate::records::human;
use crate::workload::RunResult;

/// The numbers of one mode's run.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ModeReport {
    /// `magpool` or `none`.
    pub(crate) mode: String,
    /// The named numbers, in print order (see [`FIELDS`]).
    pub(crate) values: Vec<f64>,
    /// The pool's stats, pre-formatted (empty without a pool).
    pub(crate) pool_lines: Vec<String>,
}

/// The numbers a report carries, in order.
pub(crate) const FIELDS: [&str; 19] = [
    "records",
    "log_bytes",
    "batches",
    "segments",
    "write_secs",
    "read_secs",
    "append_p50_us",
    "append_p99_us",
    "append_p999_us",
    "fetch_p50_us",
    "fetch_p99_us",
    "fetch_p999_us",
    "alloc_calls",
    "peak_rss_kib",
    "time_lookups",
    "offset_lookups",
    "fetches",
    "append_max_us",
    "fetch_max_us",
];

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

impl ModeReport {
    /// The report of `run` in `mode`, with the allocator calls and peak RSS
    /// measured around it, and the pool's stats if there was a pool.
    pub(crate) fn new(mode: &str, run: &RunResult, alloc_calls: u64, peak_rss_kib: u64, stats: Option<&Stats>) -> Self {
        let (a, f) = (&run.append_ns, &run.fetch_ns);
        let values = vec![
            run.records as f64,
            run.log_bytes as f64,
            run.batches as f64,
            run.segments as f64,
            run.write_time.as_secs_f64(),
            run.read_time.as_secs_f64(),
            us(a, 0.5),
            us(a, 0.99),
            us(a, 0.999),
            us(f, 0.5),
            us(f, 0.99),
            us(f, 0.999),
            alloc_calls as f64,
            peak_rss_kib as f64,
            run.time_lookups as f64,
            run.offset_lookups as f64,
            f.len() as f64,
            a.max() as f64 / 1000.0,
            f.max() as f64 / 1000.0,
        ];
        ModeReport { mode: mode.to_string(), values, pool_lines: stats.map(pool_lines).unwrap_or_default() }
    }

    /// The value of field `name`.
    ///
    /// # Panics
    ///
    /// If `name` is not in [`FIELDS`].
    pub(crate) fn get(&self, name: &str) -> f64 {
        let i = FIELDS.iter().position(|f| *f == name).unwrap_or_else(|| panic!("no report field {name}"));
        self.values[i]
    }

    /// Allocator calls per record.
    pub(crate) fn calls_per_record(&self) -> f64 {
        self.get("alloc_calls") / self.get("records")
    }

    /// The report as lines: `mode=…`, one `NAME=VALUE` per field, then
    /// `pool=…` lines.
    pub(crate) fn to_lines(&self) -> String {
        let mut out = format!("mode={}\n", self.mode);
        for (name, value) in FIELDS.iter().zip(&self.values) {
            let _ = writeln!(out, "{name}={value}");
        }
        for line in &self.pool_lines {
            let _ = writeln!(out, "pool={line}");
        }
        out
    }

    /// Reads what [`to_lines`](ModeReport::to_lines) wrote.
    ///
    /// # Errors
    ///
    /// Naming the first line that is not as written.
    pub(crate) fn parse(text: &str) -> Result<ModeReport, String> {
        let mut r = ModeReport::default();
        for line in text.lines() {
            let (key, value) = line.split_once('=').ok_or_else(|| format!("unexpected line {line:?}"))?;
            match key {
                "mode" => r.mode = value.to_string(),
                "pool" => r.pool_lines.push(value.to_string()),
                _ if FIELDS.get(r.values.len()) == Some(&key) => {
                    r.values.push(value.parse().map_err(|_| format!("bad number in {line:?}"))?);
                }
                _ => return Err(format!("unexpected line {line:?}")),
            }
        }
        if r.values.len() != FIELDS.len() || r.mode.is_empty() {
            return Err(format!("incomplete report ({} of {} fields)", r.values.len(), FIELDS.len()));
        }
        Ok(r)
    }
}

/// The pool's counters, in total and for each class it used.
fn pool_lines(s: &Stats) -> Vec<String> {
    let mut lines = vec![format!(
        "gets {}  puts {}  in use {}  allocations {}  discarded {}  oversized {}  retained {}  depot {}",
        s.gets,
        s.puts,
        s.in_use,
        s.allocations,
        s.discarded,
        s.oversized,
        mib(s.retained_bytes as f64),
        mib(s.depot_bytes as f64),
    )];
    for c in s.classes.iter().filter(|c| c.gets > 0) {
        lines.push(format!(
            "  {:>7}: gets {:>7}  allocations {:>5}  discarded {:>4}  refills {:>5}  spills {:>5}",
            human(c.size),
            c.gets,
            c.allocations,
            c.discarded,
            c.refills,
            c.spills
        ));
    }
    lines
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / f64::from(1 << 20))
}

/// `1234567.0` → `1,234,567`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The side-by-side table of `reports` (one column each), the pool stats,
/// and, with both modes, the allocator-call ratio.
pub(crate) fn table(reports: &[ModeReport]) -> String {
    type Row = (&'static str, fn(&ModeReport) -> String);
    let rows: [Row; 12] = [
        ("write   records/s", |r| thousands(r.get("records") / r.get("write_secs"))),
        ("        MB/s", |r| format!("{:.1}", r.get("log_bytes") / 1e6 / r.get("write_secs"))),
        ("append  p50 / p99 / p99.9", |r| pcts(r, "append")),
        ("read    records/s", |r| thousands(r.get("records") / r.get("read_secs"))),
        ("        MB/s", |r| format!("{:.1}", r.get("log_bytes") / 1e6 / r.get("read_secs"))),
        ("fetch   p50 / p99 / p99.9", |r| pcts(r, "fetch")),
        ("allocator calls per record", |r| format!("{:.3}", r.calls_per_record())),
        ("allocator calls in all", |r| thousands(r.get("alloc_calls"))),
        ("peak RSS", |r| mib(r.get("peak_rss_kib") * 1024.0)),
        ("segments / batches", |r| format!("{} / {}", r.get("segments"), thousands(r.get("batches")))),
        ("fetches / time / offset lookups", |r| {
            format!("{} / {} / {}", thousands(r.get("fetches")), r.get("time_lookups"), r.get("offset_lookups"))
        }),
        ("records checked byte for byte", |r| thousands(r.get("records"))),
    ];
    let mut out = format!("{:<32}", "");
    for r in reports {
        let _ = write!(out, "{:>26}", column_name(&r.mode));
    }
    out.push('\n');
    for (label, cell) in rows {
        let _ = write!(out, "{label:<32}");
        for r in reports {
            let _ = write!(out, "{:>26}", cell(r));
        }
        out.push('\n');
    }
    for r in reports.iter().filter(|r| !r.pool_lines.is_empty()) {
        let _ = writeln!(out, "\n{} pool stats at the end of the run:", column_name(&r.mode));
        for line in &r.pool_lines {
            let _ = writeln!(out, "  {line}");
        }
    }
    out.push_str(LEGEND);
    if let [a, b] = reports {
        let (pool, vec) = if a.mode == "magpool" { (a, b) } else { (b, a) };
        let ratio = vec.calls_per_record() / pool.calls_per_record().max(f64::MIN_POSITIVE);
        let _ = writeln!(out, "\nallocator calls per record: Vec<u8> / magpool = {ratio:.0}x");
    }
    out
}

/// What the table's rows measure.
const LEGEND: &str = "
append: from a producer starting to encode a record to its batch written (and fsync'd).
fetch: index lookups, read, batch and record CRC checks of one batch (the byte-for-byte
check against regenerated records is not timed). Allocator calls: every alloc, realloc
and free made by the run's threads, counted by a wrapper around the System allocator.
Peak RSS: VmHWM of the mode's own child process.
";

fn pcts(r: &ModeReport, which: &str) -> String {
    let p = |q: &str| r.get(&format!("{which}_{q}_us"));
    format!("{:.0} / {:.0} / {:.0} µs", p("p50"), p("p99"), p("p999"))
}

fn column_name(mode: &str) -> &str {
    match mode {
        "none" => "Vec<u8>",
        other => other,
    }
}
