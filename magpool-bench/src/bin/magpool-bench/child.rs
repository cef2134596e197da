//! The measuring side: one process runs one workload on one implementation
//! and prints one [`Sample`] line. The parent re-executes this binary with
//! `--child IMPL WORKLOAD` for every measurement, so each starts from a fresh
//! heap, a fresh pool and no other implementation's threads or caches, and
//! its peak RSS is its own.

use std::time::{Duration, Instant};

use magpool_bench::peers::Magpool;
use magpool_bench::workloads::{latency, run, Workload};
use magpool_bench::{count, visit_impl, Impl, Visitor};

/// Latency percentiles of one kind of call, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Percentiles {
    pub(crate) p50: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
}

/// What one child measured.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sample {
    /// Median over the child's timed runs of ns per op.
    pub(crate) ns_per_op: f64,
    /// Allocator calls per op in the count pass.
    pub(crate) calls_per_op: f64,
    /// Peak resident set (VmHWM), KiB.
    pub(crate) rss_kib: u64,
    /// For mixed and producer→consumer: (get, release).
    pub(crate) latency: Option<(Percentiles, Percentiles)>,
}

const PREFIX: &str = "magpool-bench-sample";

impl Sample {
    /// The line a child prints.
    fn to_line(&self) -> String {
        let mut line = format!("{PREFIX} ns={} calls={} rss={}", self.ns_per_op, self.calls_per_op, self.rss_kib);
        if let Some((g, r)) = self.latency {
            for (k, p) in [("get", g), ("rel", r)] {
                line += &format!(" {k}={},{},{},{}", p.p50, p.p99, p.p999, p.max);
            }
        }
        line
    }

    /// Parses the line a child printed, among its other output.
    pub(crate) fn parse(out: &str) -> Option<Sample> {
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

/// How long a child measures.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Budget {
    /// About this much wall time, calibrated (the report).
    Time(Duration),
    /// Exactly this many iterations, after as many to warm up (profiling).
    Iters(u64),
}

/// Measures `workload` on `imp` within `budget` and prints the sample line;
/// `false` when either name is unknown. `magazine_bytes` configures magpool
/// (the parent has checked that it builds).
pub(crate) fn main(imp: &str, workload: &str, budget: Budget, magazine_bytes: Option<usize>) -> bool {
    let Some(workload) = Workload::parse(workload) else { return false };
    let mut m = Measure { workload, budget, sample: None };
    match (imp, magazine_bytes) {
        ("magpool", Some(bytes)) => m.visit(&Magpool::with_magazine_bytes(bytes).expect("checked by the parent")),
        _ if !visit_impl(imp, &mut m) => return false,
        _ => {}
    }
    let mut sample = m.sample.expect("visited");
    sample.rss_kib = peak_rss_kib();
    println!("{}", sample.to_line());
    true
}

struct Measure {
    workload: Workload,
    budget: Budget,
    sample: Option<Sample>,
}

impl Visitor for Measure {
    fn visit<I: Impl>(&mut self, imp: &I) {
        let w = self.workload;
        let ops = |iters: u64| (iters * w.ops_per_iter()) as f64;
        let budget = match self.budget {
            Budget::Time(t) => t,
            Budget::Iters(n) => {
                run(imp, w, n);
                let ns = run(imp, w, n).as_nanos() as f64 / ops(n);
                self.sample = Some(Sample { ns_per_op: ns, ..Sample::default() });
                return;
            }
        };
        let began = Instant::now();
        // Calibrate (and warm up): grow a run to a tenth of the budget. A
        // multi-thread run starts at 2048 ops per thread, so that one slow
        // wake-up at a barrier on a loaded machine cannot stop the growth at
        // a run of a few ops, all thread start-up and scheduling.
        let slice = budget / 10;
        let mut iters = if w.ops_per_iter() > 1 && w != Workload::Burst { 2048 } else { 1 };
        loop {
            let t = run(imp, w, iters);
            if t >= slice || iters >= 1 << 32 {
                break;
            }
            let grow = slice.as_secs_f64() / t.as_secs_f64().max(1e-9);
            iters = (iters as f64 * grow.clamp(2.0, 16.0)).ceil() as u64;
        }
        // Measure: runs of `iters` until the budget (wall time) is spent.
        let mut per_op = Vec::new();
        while per_op.len() < 3 || began.elapsed() < budget {
            per_op.push(run(imp, w, iters).as_nanos() as f64 / ops(iters));
        }
        // Count: one more run with the counting allocator on.
        count::arm(true);
        run(imp, w, iters);
        let calls = count::calls();
        count::arm(false);
        // Latency: three runs' worth of ops, each call timed.
        let latency = latency(imp, w, 3 * iters).map(|l| {
            let p = |h: &hdrhistogram::Histogram<u64>| Percentiles {
                p50: h.value_at_quantile(0.5),
                p99: h.value_at_quantile(0.99),
                p999: h.value_at_quantile(0.999),
                max: h.max(),
            };
            (p(&l.get), p(&l.release))
        });
        self.sample = Some(Sample {
            ns_per_op: median(&mut per_op),
            calls_per_op: calls as f64 / ops(iters),
            rss_kib: 0,
            latency,
        });
    }
}

/// The median of `xs` (the mean of the middle two for an even count).
pub(crate) fn median(xs: &mut [f64]) -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_line_round_trips() {
        let p = |n| Percentiles { p50: n, p99: n * 10, p999: n * 100, max: n * 1000 };
        let s = Sample { ns_per_op: 12.5, calls_per_op: 0.25, rss_kib: 4096, latency: Some((p(3), p(7))) };
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
}
