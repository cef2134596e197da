//! Aggregation and the report's text: the samples of every round per
//! (implementation, workload), their medians and spreads, and the Markdown
//! and CSV renderings. The targets are checked in `targets.rs`; burst→idle,
//! memory over time, has its table in `idle_report.rs`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use magpool_bench::child::{median, Percentiles, Sample};
use magpool_bench::idle::{self, Series};
use magpool_bench::workloads::{Workload, BURST, CHANNEL, THREADS, TOUCH, WINDOW};
use magpool_bench::{objects, thread_exit};

/// Every sample of a report run, and how it was run.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) rounds: usize,
    pub(crate) ms: u64,
    pub(crate) impls: Vec<&'static str>,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) timer_ns: u64,
    /// magpool's `Builder::magazine_bytes`, when not the default.
    pub(crate) magazine_bytes: Option<usize>,
    samples: HashMap<(&'static str, Workload), Vec<Sample>>,
    started: SystemTime,
    load_before: String,
    load_after: String,
    elapsed: Duration,
}

impl Run {
    pub(crate) fn new(rounds: usize, ms: u64, impls: &[&'static str], workloads: &[Workload], timer_ns: u64) -> Run {
        Run {
            rounds,
            ms,
            impls: impls.to_vec(),
            workloads: workloads.to_vec(),
            timer_ns,
            magazine_bytes: None,
            samples: HashMap::new(),
            started: SystemTime::now(),
            load_before: load_average(),
            load_after: String::new(),
            elapsed: Duration::ZERO,
        }
    }

    pub(crate) fn add(&mut self, imp: &'static str, w: Workload, s: Sample) {
        self.samples.entry((imp, w)).or_default().push(s);
    }

    pub(crate) fn finish(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
        self.load_after = load_average();
    }
}

/// One implementation on one workload, over every round.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// `median` over the median of the workload's baseline (the system
    /// `Vec`, or for freeze `BytesMut` on the system allocator).
    pub(crate) ratio_base: f64,
    pub(crate) rss_kib: u64,
    pub(crate) calls_per_op: f64,
    /// Per percentile, the median over rounds (max: the max over rounds).
    pub(crate) latency: Option<(Percentiles, Percentiles)>,
    /// Burst→idle: per point, the median over rounds.
    pub(crate) series: Option<Series>,
}

/// The aggregated run.
#[derive(Debug)]
pub(crate) struct Report<'r> {
    pub(crate) run: &'r Run,
    cells: HashMap<(&'static str, Workload), Cell>,
}

impl<'r> Report<'r> {
    pub(crate) fn new(run: &'r Run) -> Report<'r> {
        let mut cells = HashMap::new();
        for (&key, samples) in &run.samples {
            let mut ns: Vec<f64> = samples.iter().map(|s| s.ns_per_op).collect();
            let mut calls: Vec<f64> = samples.iter().map(|s| s.calls_per_op).collect();
            let mut rss: Vec<f64> = samples.iter().map(|s| s.rss_kib as f64).collect();
            let lats: Vec<_> = samples.iter().filter_map(|s| s.latency).collect();
            let latency = (!lats.is_empty())
                .then(|| (combine(lats.iter().map(|l| l.0).collect()), combine(lats.iter().map(|l| l.1).collect())));
            let series: Vec<Series> = samples.iter().filter_map(|s| s.series.clone()).collect();
            let (min, max) = ns.iter().fold((f64::MAX, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            let cell = Cell {
                median: median(&mut ns),
                min,
                max,
                ratio_base: f64::NAN,
                rss_kib: median(&mut rss) as u64,
                calls_per_op: median(&mut calls),
                latency,
                series: Series::median(&series),
            };
            cells.insert(key, cell);
        }
        let base_medians: HashMap<Workload, f64> =
            cells.iter().filter(|((imp, w), _)| *imp == w.baseline()).map(|((_, w), c)| (*w, c.median)).collect();
        for ((_, w), cell) in cells.iter_mut() {
            cell.ratio_base = base_medians.get(w).map_or(f64::NAN, |b| cell.median / b);
        }
        Report { run, cells }
    }

    pub(crate) fn cell(&self, imp: &str, w: Workload) -> Option<&Cell> {
        self.run.impls.iter().find(|&&i| i == imp).and_then(|&i| self.cells.get(&(i, w)))
    }

    /// The groups measured, in report order.
    pub(crate) fn groups(&self) -> Vec<&'static str> {
        let mut groups: Vec<&'static str> = self.run.workloads.iter().map(|w| w.group()).collect();
        groups.dedup();
        groups
    }

    /// The workloads of `group`, in order.
    pub(crate) fn workloads(&self, group: &str) -> Vec<Workload> {
        self.run.workloads.iter().copied().filter(|w| w.group() == group).collect()
    }

    /// The implementations measured on `w`, fastest first.
    pub(crate) fn ranked(&self, w: Workload) -> Vec<(&'static str, &Cell)> {
        let mut rows: Vec<_> = self.run.impls.iter().filter_map(|&i| Some((i, self.cells.get(&(i, w))?))).collect();
        rows.sort_by(|a, b| a.1.median.total_cmp(&b.1.median));
        rows
    }

    pub(crate) fn markdown(&self) -> String {
        let r = self.run;
        let mut md = String::new();
        let _ = writeln!(md, "# magpool bench report\n");
        let _ = writeln!(
            md,
            "{} UTC, {} cores, load average {} before and {} after; {} rounds of {} measurements ({} \
             implementations, {} workloads), {} ms per measurement, each in its own process; {:.0} s in all{}.\n",
            utc(r.started),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            r.load_before,
            r.load_after,
            r.rounds,
            r.workloads.iter().map(|w| self.ranked(*w).len()).sum::<usize>(),
            r.impls.len(),
            r.workloads.len(),
            r.ms,
            r.elapsed.as_secs_f64(),
            r.magazine_bytes.map_or(String::new(), |b| format!("; magpool with magazine_bytes({b}), not the default")),
        );
        let _ = writeln!(
            md,
            "ns/op: median over rounds of the time per get+release (all threads together: wall time of the \
             timed section over every thread's ops); min–max: over rounds; × vec: over the system `Vec`'s \
             median (freeze: × bytesmut, over `BytesMut` on the system allocator); RSS: peak resident set of \
             the measuring process (median over rounds); allocator calls: per op, in one more steady-state run \
             with a counting allocator.\n"
        );
        md += &crate::targets::markdown(self);
        for group in self.groups() {
            let _ = writeln!(md, "\n## {group}: {}\n", describe(group));
            if group == "burst_idle" {
                md += &crate::idle_report::markdown(self);
                continue;
            }
            let base = self.workloads(group).first().map_or("vec", |w| w.baseline());
            let _ = writeln!(
                md,
                "| {} | implementation | {} | min–max | × {base} | peak RSS | allocator calls/op |",
                param_name(group),
                unit(group)
            );
            let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|");
            for w in self.workloads(group) {
                for (imp, c) in self.ranked(w) {
                    let name = if imp == "magpool" { "**magpool**".to_string() } else { imp.to_string() };
                    let _ = writeln!(
                        md,
                        "| {} | {name} | {} | {}–{} | {:.2} | {:.1} MiB | {} |",
                        w.param(),
                        ns(c.median),
                        ns(c.min),
                        ns(c.max),
                        c.ratio_base,
                        c.rss_kib as f64 / 1024.0,
                        calls(c.calls_per_op),
                    );
                }
            }
            if let Some(note) = note(group) {
                let _ = writeln!(md, "\n{note}");
            }
            for w in self.workloads(group).into_iter().filter(|w| w.has_latency()) {
                self.latency_table(&mut md, w);
            }
        }
        md
    }

    fn latency_table(&self, md: &mut String, w: Workload) {
        let _ = writeln!(
            md,
            "\n{} latency per call, ns (each call timed with two `Instant` reads, ~{} ns, included; max of \
             all rounds, other percentiles median over rounds):\n",
            w.key(),
            self.run.timer_ns
        );
        let _ = writeln!(md, "| implementation | get p50 | get p99 | get p99.9 | get max | release p50 | release p99 | release p99.9 | release max |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (imp, c) in self.ranked(w) {
            if let Some((g, r)) = c.latency {
                let _ = writeln!(
                    md,
                    "| {imp} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    g.p50, g.p99, g.p999, g.max, r.p50, r.p99, r.p999, r.max
                );
            }
        }
    }

    pub(crate) fn csv(&self) -> String {
        let mut csv = String::from(
            "workload,param,implementation,median_ns,min_ns,max_ns,baseline,ratio_baseline,peak_rss_kib,\
             allocator_calls_per_op,get_p50,get_p99,get_p999,get_max,release_p50,release_p99,release_p999,release_max\n",
        );
        for &w in &self.run.workloads {
            if w == Workload::BurstIdle {
                continue; // memory over time: burst_idle.csv
            }
            for (imp, c) in self.ranked(w) {
                let _ = write!(
                    csv,
                    "{},{},{imp},{:.2},{:.2},{:.2},{},{:.4},{},{:.4}",
                    w.group(),
                    w.param(),
                    c.median,
                    c.min,
                    c.max,
                    w.baseline(),
                    c.ratio_base,
                    c.rss_kib,
                    c.calls_per_op
                );
                match c.latency {
                    Some((g, r)) => {
                        for p in [g, r] {
                            let _ = write!(csv, ",{},{},{},{}", p.p50, p.p99, p.p999, p.max);
                        }
                        csv.push('\n');
                    }
                    None => csv.push_str(",,,,,,,,\n"),
                }
            }
        }
        csv
    }
}

/// Per percentile, the median over rounds; the max of the maxima.
fn combine(ps: Vec<Percentiles>) -> Percentiles {
    let med = |f: fn(&Percentiles) -> u64| median(&mut ps.iter().map(|p| f(p) as f64).collect::<Vec<_>>()) as u64;
    Percentiles {
        p50: med(|p| p.p50),
        p99: med(|p| p.p99),
        p999: med(|p| p.p999),
        max: ps.iter().map(|p| p.max).max().unwrap_or(0),
    }
}

/// What one op of `group` is.
pub(crate) fn describe(group: &str) -> String {
    match group {
        "hot" => format!("one thread, get(len) → write {TOUCH} bytes → drop"),
        "full_write" => "one thread, get(len) → write all len bytes → drop".into(),
        "writer" => format!("one thread, with_capacity(len) → append {TOUCH} bytes → drop"),
        "mixed" => format!(
            "one thread, get(len) → write {TOUCH} bytes into a FIFO window of {WINDOW} live buffers, the oldest \
             dropped; len 60% 100–1000 B, 30% 1–16 KiB, 9% 16–256 KiB, 1% 1 MiB (seeded)"
        ),
        "parallel" => format!("{THREADS:?} threads, each running mixed on its own window"),
        "producer_consumer" => format!(
            "n producers get (mixed lengths) and write {TOUCH} bytes, a bounded channel ({CHANNEL}) carries the \
             buffers, n consumers drop them: every release cross-thread"
        ),
        "burst" => format!("one thread, get {} buffers of {} bytes, then drop them all", BURST.0, BURST.1),
        "freeze" => format!(
            "one thread, with_capacity(len) → write {TOUCH} bytes → freeze into `bytes::Bytes` → clone → drop \
             both; `-jemalloc`, `-mimalloc`: with that allocator as the process's global allocator"
        ),
        "object_batch" => format!(
            "get a pooled `Vec<u64>` → push {} → read → release; 1t: one thread; 1to1: a producer fills, a \
             bounded channel ({CHANNEL}) carries, a consumer reads and releases",
            objects::BATCH
        ),
        "thread_exit" => format!(
            "spawn a thread that gets {} buffers of each of {:?} bytes, writes {TOUCH} bytes into each and \
             releases them, then exits; join: process CPU time (all threads) per thread's life",
            thread_exit::HELD,
            thread_exit::SIZES
        ),
        "burst_idle" => format!(
            "a worker thread gets {} buffers of {} bytes, writes them, releases them and idles; reclaim_idle \
             every {} ms: memory over time",
            idle::BURST.0,
            idle::BURST.1,
            idle::INTERVAL.as_millis()
        ),
        _ => String::new(),
    }
}

/// What a reader of `group`'s table needs beyond its one-line description.
fn note(group: &str) -> Option<&'static str> {
    match group {
        "freeze" => Some(
            "`Buf::freeze` needs a `Buf<'static>`: magpool has no `Arc`-owned pool handle, so the pool here is \
             leaked (`Pool::new().leak()`; `magpool::global()` is the other way), and there is no `Arc`-handle \
             variant to measure. magpool's 2 allocator calls per op are the box `Bytes::from_owner` puts the owner \
             in, and its free (from the global allocator: glibc, jemalloc or mimalloc by the row's suffix); \
             `BytesMut`'s 4 are its buffer, the shared header its first clone makes, and their frees.",
        ),
        _ => None,
    }
}

/// The time column's name.
pub(crate) fn unit(group: &str) -> &'static str {
    match group {
        "thread_exit" => "CPU ns/thread",
        _ => "ns/op",
    }
}

fn param_name(group: &str) -> &'static str {
    match group {
        "hot" | "full_write" | "writer" | "freeze" => "len",
        "parallel" => "threads",
        "producer_consumer" => "pairs",
        _ => "shape",
    }
}

/// A time in ns with three significant digits, in ns or µs.
pub(crate) fn ns(x: f64) -> String {
    match x {
        x if x >= 10_000.0 => format!("{:.1} µs", x / 1000.0),
        x if x >= 1000.0 => format!("{:.2} µs", x / 1000.0),
        x if x >= 100.0 => format!("{x:.0} ns"),
        x => format!("{x:.1} ns"),
    }
}

fn calls(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("{x:.3}")
    }
}

fn load_average() -> String {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    s.split_whitespace().next().unwrap_or("?").to_string()
}

/// `YYYY-MM-DD HH:MM` in UTC (civil-from-days, Hinnant).
fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00");
        assert_eq!(utc(UNIX_EPOCH + Duration::from_secs(1_709_210_096)), "2024-02-29 12:34");
    }

    #[test]
    fn ns_units() {
        assert_eq!(
            (ns(12.34), ns(123.4), ns(1234.0), ns(12_345.0)),
            ("12.3 ns".into(), "123 ns".into(), "1.23 µs".into(), "12.3 µs".into())
        );
    }
}
