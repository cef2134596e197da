//! The measuring side of the bench report: one process runs one workload on
//! one implementation and prints one [`Sample`] line. The report re-executes
//! a binary of this package with `--child IMPL WORKLOAD` for every
//! measurement, so each starts from a fresh heap, a fresh pool and no other
//! implementation's threads or caches, and its peak RSS is its own.
//!
//! # Which binary
//!
//! The report binary (`magpool-bench`) has the system allocator as its
//! global allocator. The freeze workload measures `bytes::BytesMut`, which
//! allocates through the global allocator, on jemalloc and mimalloc too: those
//! measurements run in `magpool-bench-jemalloc` and `magpool-bench-mimalloc`,
//! two tiny binaries that install that allocator (behind the counting
//! wrapper) and call [`sibling_main`]. [`Global::of`] says which binary an
//! implementation needs, from its name; a child refuses an implementation
//! whose allocator is not its own.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::idle::{self, Series};
use crate::peers::Magpool;
use crate::workloads::{ImplBench, Workload};
use crate::{count, visit_impl, with_bench, Bench, Impl, Visitor};

// === impl Global ===

/// The global allocator of a child process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    /// `std::alloc::System` (glibc's malloc here): the report binary.
    System,
    /// tikv-jemallocator: `magpool-bench-jemalloc`.
    Jemalloc,
    /// mimalloc: `magpool-bench-mimalloc`.
    Mimalloc,
}

impl Global {
    /// The global allocator that implementation `imp` runs on: names ending
    /// in `-jemalloc` or `-mimalloc` run on that allocator (`bytesmut-jemalloc`
    /// is `BytesMut` with jemalloc as the global allocator), every other on
    /// the system allocator (the `jemalloc` and `mimalloc` byte buffers call
    /// their allocators directly, whatever the global one is).
    pub fn of(imp: &str) -> Global {
        if imp.ends_with("-jemalloc") {
            Global::Jemalloc
        } else if imp.ends_with("-mimalloc") {
            Global::Mimalloc
        } else {
            Global::System
        }
    }

    /// The binary of this package whose global allocator this is.
    pub fn binary(self) -> &'static str {
        match self {
            Global::System => "magpool-bench",
            Global::Jemalloc => "magpool-bench-jemalloc",
            Global::Mimalloc => "magpool-bench-mimalloc",
        }
    }
}

// === impl Sample ===

/// Latency percentiles of one kind of call, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

/// What one child measured.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Median over the child's timed runs of ns per op.
    pub ns_per_op: f64,
    /// Allocator calls per op in the count pass.
    pub calls_per_op: f64,
    /// Peak resident set (VmHWM), KiB.
    pub rss_kib: u64,
    /// For mixed and producer→consumer: (get, release).
    pub latency: Option<(Percentiles, Percentiles)>,
    /// For burst→idle: memory over time (no time per op).
    pub series: Option<Series>,
}

const PREFIX: &str = "magpool-bench-sample";

impl Sample {
    /// The line a child prints.
    pub fn to_line(&self) -> String {
        let mut line = format!("{PREFIX} ns={} calls={} rss={}", self.ns_per_op, self.calls_per_op, self.rss_kib);
        if let Some((g, r)) = self.latency {
            for (k, p) in [("get", g), ("rel", r)] {
                line += &format!(" {k}={},{},{},{}", p.p50, p.p99, p.p999, p.max);
            }
        }
        if let Some(series) = &self.series {
            line += &format!(" idle={}", series.to_field());
        }
        line
    }

    /// Parses the line a child printed, among its other output.
    pub fn parse(out: &str) -> Option<Sample> {
        let line = out.lines().find(|l| l.starts_with(PREFIX))?;
        let mut s = Sample::default();
        let (mut get, mut rel) = (None, None);
        for field in line.split_whitespace().skip(1) {
            let (k, v) = field.split_once('=')?;
            match k {
                "ns" => s.ns_per_op = v.parse().ok()?,
                "calls" => s.calls_per_op = v.parse().ok()?,
                "rss" => s.rss_kib = v.parse().ok()?,
                "get" => get = Some(parse_percentiles(v)?),
                "rel" => rel = Some(parse_percentiles(v)?),
                "idle" => s.series = Some(Series::parse_field(v)?),
                _ => return None,
            }
        }
        s.latency = get.zip(rel);
        Some(s)
    }
}

fn parse_percentiles(v: &str) -> Option<Percentiles> {
    let n: Vec<u64> = v.split(',').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    match n[..] {
        [p50, p99, p999, max] => Some(Percentiles { p50, p99, p999, max }),
        _ => None,
    }
}

// === measuring ===

/// How long a child measures.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// About this much wall time, calibrated (the report).
    Time(Duration),
    /// Exactly this many iterations, after as many to warm up (profiling).
    Iters(u64),
}

/// Measures `workload` on `imp` within `budget` in this process, whose
/// global allocator is `global`. `magazine_bytes` configures magpool on the
/// byte-pool workloads (the parent has checked that it builds).
///
/// # Errors
///
/// An unknown implementation or workload, an implementation that does not
/// run that workload, or one that needs another global allocator.
pub fn measure(
    imp: &str,
    workload: &str,
    budget: Budget,
    magazine_bytes: Option<usize>,
    global: Global,
) -> Result<Sample, String> {
    let w = Workload::parse(workload).ok_or_else(|| format!("unknown workload {workload}"))?;
    if Global::of(imp) != global {
        return Err(format!("{imp} runs in {}, not here", Global::of(imp).binary()));
    }
    if !w.impls().contains(&imp) {
        return Err(format!("{workload} has no implementation {imp}"));
    }
    let mut sample = None;
    if w == Workload::BurstIdle {
        let mut v = IdleSeries(None);
        visit_impl(imp, &mut v);
        sample = v.0.map(|series| Sample { series: Some(series), ..Sample::default() });
    } else if let (Some(bytes), "magpool", true) = (magazine_bytes, imp, w.on_impl()) {
        let pool = Magpool::with_magazine_bytes(bytes).map_err(|e| format!("--magazine-bytes: {e}"))?;
        sample = Some(time(&mut ImplBench { imp: &pool, workload: w }, w, budget));
    } else {
        with_bench(imp, w, &mut |b| sample = Some(time(b, w, budget)));
    }
    let mut sample = sample.ok_or_else(|| format!("{workload} has no implementation {imp}"))?;
    sample.rss_kib = peak_rss_kib();
    Ok(sample)
}

/// Runs [`idle::series`] on the implementation visited.
struct IdleSeries(Option<Series>);

impl Visitor for IdleSeries {
    fn visit<I: Impl>(&mut self, imp: &I) {
        self.0 = Some(idle::series(imp));
    }
}

/// Calibrates, times, counts and (where the workload has them) records
/// latencies: one [`Sample`], but for its RSS.
fn time(b: &mut dyn Bench, w: Workload, budget: Budget) -> Sample {
    let ops = |iters: u64| (iters * w.ops_per_iter()) as f64;
    let budget = match budget {
        Budget::Time(t) => t,
        Budget::Iters(n) => {
            b.run(n);
            let ns = b.run(n).as_nanos() as f64 / ops(n);
            return Sample { ns_per_op: ns, ..Sample::default() };
        }
    };
    let began = Instant::now();
    // Calibrate (and warm up): grow a run to a tenth of the budget. A
    // multi-thread run starts at 2048 ops per thread, so that one slow
    // wake-up at a barrier on a loaded machine cannot stop the growth at
    // a run of a few ops, all thread start-up and scheduling.
    let slice = budget / 10;
    let mut iters = if w.threads() > 1 { 2048 } else { 1 };
    loop {
        let t = b.run(iters);
        if t >= slice || iters >= 1 << 32 {
            break;
        }
        let grow = slice.as_secs_f64() / t.as_secs_f64().max(1e-9);
        iters = (iters as f64 * grow.clamp(2.0, 16.0)).ceil() as u64;
    }
    // Measure: runs of `iters` until the budget (wall time) is spent.
    let mut per_op = Vec::new();
    while per_op.len() < 3 || began.elapsed() < budget {
        per_op.push(b.run(iters).as_nanos() as f64 / ops(iters));
    }
    // Count: one more run with the counting allocator on.
    count::arm(true);
    b.run(iters);
    let calls = count::calls();
    count::arm(false);
    // Latency: three runs' worth of ops, each call timed.
    let latency = b.latency(3 * iters).map(|l| {
        let p = |h: &hdrhistogram::Histogram<u64>| Percentiles {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        };
        (p(&l.get), p(&l.release))
    });
    Sample { ns_per_op: median(&mut per_op), calls_per_op: calls as f64 / ops(iters), latency, ..Sample::default() }
}

/// The median of `xs` (the mean of the middle two for an even count).
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// Peak resident set of this process, KiB (`VmHWM`), or 0 where
/// `/proc/self/status` does not say.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

// === the sibling binaries ===

/// The command line of `magpool-bench-jemalloc` and `magpool-bench-mimalloc`:
/// the report binary's hidden child options, nothing else.
#[derive(Parser, Debug)]
#[command(about = "A child of the magpool bench report, on another global allocator; run `magpool-bench` instead.")]
pub struct ChildArgs {
    /// Measure IMPL on WORKLOAD in this process, print one line.
    #[arg(long, required = true, num_args = 2, value_names = ["IMPL", "WORKLOAD"])]
    pub child: Vec<String>,
    /// Wall time of the measurement, ms.
    #[arg(long, default_value_t = 25)]
    pub ms: u64,
    /// Run exactly N iterations (after as many to warm up) instead of a
    /// timed budget, for perf and callgrind.
    #[arg(long)]
    pub iters: Option<u64>,
}

/// Prints `measure`'s sample line, or its error; the exit code says which.
pub fn print_sample(
    imp: &str,
    workload: &str,
    budget: Budget,
    magazine_bytes: Option<usize>,
    global: Global,
) -> ExitCode {
    match measure(imp, workload, budget, magazine_bytes, global) {
        Ok(sample) => {
            println!("{}", sample.to_line());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", global.binary());
            ExitCode::FAILURE
        }
    }
}

/// The whole `main` of a sibling binary whose global allocator is `global`.
pub fn sibling_main(global: Global) -> ExitCode {
    let args = ChildArgs::parse();
    let budget = match args.iters {
        Some(n) => Budget::Iters(n),
        None => Budget::Time(Duration::from_millis(args.ms)),
    };
    print_sample(&args.child[0], &args.child[1], budget, None, global)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_line_round_trips() {
        let p = |n| Percentiles { p50: n, p99: n * 10, p999: n * 100, max: n * 1000 };
        let s =
            Sample { ns_per_op: 12.5, calls_per_op: 0.25, rss_kib: 4096, latency: Some((p(3), p(7))), series: None };
        let back = Sample::parse(&format!("noise\n{}\n", s.to_line())).expect("parses");
        assert_eq!((back.ns_per_op, back.calls_per_op, back.rss_kib), (12.5, 0.25, 4096));
        let (g, r) = back.latency.expect("latency");
        assert_eq!((g.p50, g.max, r.p999), (3, 3000, 700));
        assert!(Sample::parse("magpool-bench-sample ns=1 what=2").is_none());
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn globals_by_name() {
        assert_eq!(Global::of("bytesmut-jemalloc"), Global::Jemalloc);
        assert_eq!(Global::of("magpool-mimalloc"), Global::Mimalloc);
        assert_eq!(Global::of("jemalloc"), Global::System, "the direct byte buffers run anywhere");
        assert_eq!(Global::of("bytesmut"), Global::System);
    }

    #[test]
    fn refuses_another_allocators_implementation() {
        let err = measure("bytesmut-jemalloc", "freeze/512B", Budget::Iters(1), None, Global::System);
        assert!(err.unwrap_err().contains("magpool-bench-jemalloc"));
        assert!(measure("bytesmut", "hot/512B", Budget::Iters(1), None, Global::System).is_err());
    }
}
