//! The comparison's output: a preamble saying what runs, then per test the
//! two modes side by side (median over rounds, with min–max), the totals
//! (allocator calls per request, the server's peak RSS), the issue's
//! targets checked on these numbers, and the pools' counters.
//!
//! # Invariants
//!
//! - Every number is the server's or the client's own: latencies and
//!   throughput from `redis-benchmark`, allocator calls and pool counters
//!   from the server's `INFO`, peak RSS from the server process's `/proc`.
//!
//! Used by `bench.rs`.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::bench::{number, BenchArgs, Driver, Planned};
use crate::loadgen::Measured;
use crate::records::human;
use crate::ModeArg;

/// One test's numbers in one server run.
#[derive(Debug, Clone)]
pub(crate) struct TestRun {
    /// What the client measured.
    pub(crate) measured: Measured,
    /// The server's allocator calls during the test.
    pub(crate) alloc_calls: u64,
    /// Requests the server executed during the test.
    pub(crate) commands: u64,
    /// The server's minor page faults during the test.
    pub(crate) minor_faults: u64,
}

/// One server process's numbers.
#[derive(Debug, Clone)]
pub(crate) struct ServerRun {
    /// Its buffer mode.
    pub(crate) mode: ModeArg,
    /// Its tests, in plan order.
    pub(crate) tests: Vec<TestRun>,
    /// VmHWM at the end, KiB.
    pub(crate) peak_rss_kib: u64,
    /// `INFO` at the end.
    pub(crate) info: HashMap<String, String>,
}

impl ServerRun {
    /// Allocator calls per request over the tests `which` picks (by index).
    fn calls_per_request(&self, which: &dyn Fn(usize) -> bool) -> f64 {
        let picked = || self.tests.iter().enumerate().filter(|(i, _)| which(*i)).map(|(_, t)| t);
        let calls: u64 = picked().map(|t| t.alloc_calls).sum();
        let commands: u64 = picked().map(|t| t.commands).sum();
        calls as f64 / commands.max(1) as f64
    }
}

/// Whether test `i` is driven by redis-benchmark (not the open loop).
fn is_bench(tests: &[Planned], i: usize) -> bool {
    matches!(tests[i].driver, Driver::Bench(_))
}

/// Prints what is about to run.
pub(crate) fn preamble(args: &BenchArgs, version: &str, tests: &[Planned]) {
    println!(
        "broker: {version} against the broker in each buffer mode, {} rounds (modes interleaved, order alternating), \
         each mode's server in its own process",
        args.rounds
    );
    println!(
        "  values: the segment log's mix, {}; one SET and one GET test per bucket, -d its middle size",
        args.sizes
    );
    println!(
        "  client: -c {} -P {} -r {} --threads {} (values of 64 KiB and more: -c {} -P 1)",
        args.clients, args.pipeline, args.keyspace, args.client_threads, args.large_clients
    );
    println!(
        "  server: {} tokio workers + 1 writer thread, {} batches, {}, every request and reply buffer from the mode",
        args.workers,
        args.batch_size,
        if args.fsync_batches { "fsync per batch" } else { "no fsync (page cache, Kafka's default)" }
    );
    let list: Vec<String> = tests.iter().map(|t| format!("{} x{}", t.label, t.requests)).collect();
    println!("  tests per run: {}", list.join(", "));
    println!("  machine: {}", machine());
}

/// Cores and load average, as the run starts.
pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cores} cores, load average {}", load.join(" "))
}

/// Median, min and max of `values` (not empty).
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
    (median, values[0], values[n - 1])
}

/// `f` over the runs of `mode`.
fn over(runs: &[ServerRun], mode: ModeArg, f: impl Fn(&ServerRun) -> f64) -> Option<(f64, f64, f64)> {
    let values: Vec<f64> = runs.iter().filter(|r| r.mode == mode).map(f).collect();
    (!values.is_empty()).then(|| spread(values))
}

/// A row: a label, a cell per mode (median and min–max), and the ratio of
/// the first mode's median to the second's.
fn row(out: &mut String, label: &str, cells: &[Option<(f64, f64, f64)>], fmt: fn(f64) -> String) {
    let _ = write!(out, "{label:<28}");
    for cell in cells {
        let text = cell.map_or("-".into(), |(m, lo, hi)| format!("{} ({}–{})", fmt(m), fmt(lo), fmt(hi)));
        let _ = write!(out, "{text:>30}");
    }
    if let [Some((a, _, _)), Some((b, _, _))] = cells {
        let ratio = a / b;
        let text = if ratio.is_finite() { format!("{ratio:.2}") } else { "-".into() };
        let _ = write!(out, "{text:>10}");
    }
    out.push('\n');
}

fn thousands(x: f64) -> String {
    let digits = format!("{x:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && c != '-' {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(x: f64) -> String {
    format!("{x:.3}")
}

fn calls(x: f64) -> String {
    format!("{x:.3}")
}

fn one(x: f64) -> String {
    format!("{x:.1}")
}

/// The side-by-side table, the targets and the pool counters.
pub(crate) fn table(args: &BenchArgs, tests: &[Planned], runs: &[ServerRun]) -> String {
    let modes = &args.modes;
    let mut out = format!("\n{:<28}", "");
    for mode in modes {
        let _ = write!(out, "{:>30}", column(*mode));
    }
    if modes.len() == 2 {
        let _ = write!(out, "{:>10}", "ratio");
    }
    out.push('\n');
    for (i, test) in tests.iter().enumerate() {
        let per = |f: fn(&TestRun, &Planned) -> f64| -> Vec<Option<(f64, f64, f64)>> {
            modes.iter().map(|&m| over(runs, m, |r| f(&r.tests[i], test))).collect()
        };
        let _ = writeln!(out, "{} (x{})", test.label, test.requests);
        row(&mut out, "  requests/s", &per(|t, _| t.measured.rps), thousands);
        row(&mut out, "  MB/s", &per(|t, p| t.measured.rps * p.bytes as f64 / 1e6), one);
        row(&mut out, "  latency p50 ms", &per(|t, _| t.measured.p50), ms);
        row(&mut out, "  latency p99 ms", &per(|t, _| t.measured.p99), ms);
        row(&mut out, "  latency p99.9 ms", &per(|t, _| t.measured.p999), ms);
        row(&mut out, "  latency max ms", &per(|t, _| t.measured.max), ms);
        row(&mut out, "  allocator calls/request", &per(|t, _| t.alloc_calls as f64 / t.commands.max(1) as f64), calls);
        row(&mut out, "  page faults/request", &per(|t, _| t.minor_faults as f64 / t.commands.max(1) as f64), calls);
    }
    let _ = writeln!(out, "all redis-benchmark tests");
    let bench = |r: &ServerRun| r.calls_per_request(&|i| is_bench(tests, i));
    let totals: Vec<_> = modes.iter().map(|&m| over(runs, m, bench)).collect();
    row(&mut out, "  allocator calls/request", &totals, calls);
    let _ = writeln!(out, "the whole run");
    let rss: Vec<_> = modes.iter().map(|&m| over(runs, m, |r| r.peak_rss_kib as f64 / 1024.0)).collect();
    row(&mut out, "  server peak RSS MiB", &rss, one);
    if let [a, b] = modes[..] {
        out.push_str(&targets(runs, tests, a, b));
    }
    for run in runs.iter().rev().filter(|r| r.info.contains_key("net_gets")).take(1) {
        let _ = writeln!(out, "\npool counters at the end of the last {} run:", column(run.mode));
        for pool in ["net", "store"] {
            let n = |k: &str| number(&run.info, &format!("{pool}_{k}"));
            let _ = writeln!(
                out,
                "  {pool:>5}: gets {}  puts {}  in use {}  allocations {}  discarded {}  oversized {}  retained {}",
                n("gets"),
                n("puts"),
                n("in_use"),
                n("allocations"),
                n("discarded"),
                n("oversized"),
                human_bytes(n("retained_bytes"))
            );
            let mut classes: Vec<(u64, &String)> = run
                .info
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&format!("{pool}_class_"))?.parse().ok().map(|size| (size, v)))
                .collect();
            classes.sort();
            for (size, counters) in classes {
                let _ =
                    writeln!(out, "    {:>9}: {}", human(size as usize), counters.replace(',', "  ").replace('=', " "));
            }
        }
    }
    out.push_str(LEGEND);
    out
}

fn human_bytes(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / f64::from(1 << 20))
}

fn column(mode: ModeArg) -> &'static str {
    match mode {
        ModeArg::Magpool => "magpool",
        ModeArg::Bytesmut => "BytesMut",
    }
}

/// The targets, magpool (`a`) against BytesMut (`b`), per test on
/// the medians.
fn targets(runs: &[ServerRun], tests: &[Planned], a: ModeArg, b: ModeArg) -> String {
    let median = |m: ModeArg, f: &dyn Fn(&ServerRun) -> f64| over(runs, m, f).map_or(f64::NAN, |s| s.0);
    let mut out = format!("\ntargets ({} / {}, medians; met: ratio within the bound):\n", column(a), column(b));
    type Check = (&'static str, fn(&Measured) -> f64, f64, bool);
    let checks: [Check; 3] = [
        ("p99 latency at most 0.8x", |m| m.p99, 0.8, true),
        ("p99.9 latency at most 0.8x", |m| m.p999, 0.8, true),
        ("throughput no lower (at least 1.0x)", |m| m.rps, 1.0, false),
    ];
    for (what, f, bound, at_most) in checks {
        let mut met = Vec::new();
        let mut missed = Vec::new();
        for (i, test) in tests.iter().enumerate() {
            let ratio = median(a, &|r| f(&r.tests[i].measured)) / median(b, &|r| f(&r.tests[i].measured));
            let ok = if at_most { ratio <= bound } else { ratio >= bound };
            let entry = format!("{} {ratio:.2}", test.label);
            if ok {
                met.push(entry)
            } else {
                missed.push(entry)
            }
        }
        let _ = writeln!(out, "  {what}: met in {} of {} tests", met.len(), tests.len());
        if !missed.is_empty() {
            let _ = writeln!(out, "    missed: {}", missed.join(", "));
        }
    }
    for (what, pick) in [("redis-benchmark tests", true), ("open loop", false)] {
        let calls = |r: &ServerRun| r.calls_per_request(&|i| is_bench(tests, i) == pick);
        let ratio = median(b, &calls) / median(a, &calls);
        if ratio.is_finite() {
            let verdict = if ratio >= 20.0 { "met" } else { "missed" };
            let _ =
                writeln!(out, "  allocator calls per request at least 20x fewer, {what}: {ratio:.1}x fewer, {verdict}");
        }
    }
    out
}

/// What the rows measure.
const LEGEND: &str = "
requests/s, latencies: redis-benchmark's own (p50, p99 and max from its summary; p99.9 the
first latency at which its cumulative count reaches 99.9% of the requests); for the open
loop, the generator's: from each request's scheduled send time to its reply (corrected for
coordinated omission), in an hdrhistogram. MB/s: values carried (XRANGE: 10 entries per
request; open loop: the mix's mean). Allocator calls: every alloc, realloc and free by
the server's threads during the test, from its INFO, over the requests it executed; page
faults: the server process's minor faults (/proc/PID/stat). Peak RSS: VmHWM of the server
process. Each cell: median over rounds (min–max).
";
