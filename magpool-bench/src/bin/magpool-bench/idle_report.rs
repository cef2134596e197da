//! Burst→idle in the report: a table of memory at the points that matter
//! (before, held, released, after each reclaim) and the whole series as CSV.
//! Every value is the median over rounds of that point.

use std::fmt::Write as _;

use magpool_bench::idle::{Point, Series, INTERVALS};
use magpool_bench::workloads::Workload;

use crate::report::Report;

/// Intervals shown in the table (the chart shows them all).
const SHOWN: usize = 3;

/// Every implementation's median series, in table order.
pub(crate) fn series<'r>(r: &'r Report<'_>) -> Vec<(&'static str, &'r Series)> {
    r.run.impls.iter().filter_map(|&imp| Some((imp, r.cell(imp, Workload::BurstIdle)?.series.as_ref()?))).collect()
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn retained(p: Option<Point>) -> String {
    p.and_then(|p| p.retained_kib).map_or("—".into(), mib)
}

pub(crate) fn markdown(r: &Report<'_>) -> String {
    let all = series(r);
    let Some((_, first)) = all.first() else { return String::new() };
    let mut md = format!(
        "MiB; RSS: the process's resident set (`VmRSS`); retained: what the implementation says it keeps for \
         reuse (magpool's `Stats::retained_bytes`; — where it has no such count). *released*: right after the \
         release; *k×*: right after the k-th `reclaim_idle`, k × {} ms later. Medians over rounds; the whole \
         series ({} intervals) is in the chart and in `burst_idle.csv`.\n\n",
        first.interval_ms, INTERVALS
    );
    let intervals: String = (1..=SHOWN).map(|k| format!(" {k}× |")).collect();
    let _ = writeln!(
        md,
        "| implementation | RSS steady | RSS held | RSS released |{intervals} retained peak |{intervals}",
    );
    let _ = writeln!(md, "|---|{}", "---:|".repeat(4 + 2 * SHOWN));
    for (imp, s) in all {
        let name = if imp == "magpool" { "**magpool**".to_string() } else { imp.to_string() };
        let mut row = format!("| {name} | {} | {} |", mib(s.steady.rss_kib), mib(s.held.rss_kib));
        for k in 0..=SHOWN {
            let _ = write!(row, " {} |", s.after(k).map_or("—".into(), |p| mib(p.rss_kib)));
        }
        let _ = write!(row, " {} |", retained(Some(s.peak())));
        for k in 1..=SHOWN {
            let _ = write!(row, " {} |", retained(s.after(k)));
        }
        let _ = writeln!(md, "{row}");
    }
    md
}

/// Every point of every implementation's median series.
pub(crate) fn csv(r: &Report<'_>) -> String {
    let mut csv = String::from("implementation,phase,t_ms,rss_kib,retained_kib\n");
    for (imp, s) in series(r) {
        let phases = [("steady", &s.steady), ("held", &s.held)].into_iter().chain(s.idle.iter().map(|p| ("idle", p)));
        for (phase, p) in phases {
            let ret = p.retained_kib.map_or(String::new(), |k| k.to_string());
            let _ = writeln!(csv, "{imp},{phase},{:.1},{},{ret}", p.t_ms, p.rss_kib);
        }
    }
    csv
}
