//! The bench report of issue 7, and of issues 16, 18 and 19: every workload
//! on each of its implementations, interleaved over several rounds, one
//! table per workload (median ns per op, min–max over rounds, ratio to the
//! workload's baseline, peak RSS, allocator calls per op), get/release
//! latency percentiles for mixed and producer→consumer, memory over time for
//! burst→idle, the targets checked, a chart per workload. Writes `report.md`,
//! `report.csv`, `burst_idle.csv` and one SVG per workload.
//!
//! ```text
//! cargo run --release -p magpool-bench              # about 5 minutes
//! cargo run --release -p magpool-bench -- --quick   # about a minute
//! ```
//!
//! # Isolation
//!
//! Every measurement (one implementation, one workload, one round) runs in a
//! process of its own: this binary re-executed with a hidden `--child`. The
//! process's global allocator is the system allocator behind a counting
//! wrapper (off while timing: one relaxed load per call); for the byte
//! buffers, mimalloc and jemalloc are called directly through their
//! `GlobalAlloc` impls. The freeze workload's `BytesMut` on jemalloc and
//! mimalloc runs in `magpool-bench-jemalloc` and `magpool-bench-mimalloc`
//! instead, whose global allocator that is (built beside this binary: with
//! `cargo run`, this binary builds them itself when they are missing or
//! older than it). Rounds interleave the implementations, in a rotating
//! order, so a noisy neighbour on a shared machine spreads over all of them
//! instead of landing on one.

mod chart;
mod idle_chart;
mod idle_report;
mod report;
mod siblings;
mod targets;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use magpool_bench::child::{self, Global};
use magpool_bench::count::CountingAlloc;
use magpool_bench::workloads::{timer_overhead_ns, Workload};

use crate::report::{Report, Run};

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc(std::alloc::System);

/// magpool beside its peers, on this machine.
#[derive(Parser, Debug)]
#[command(name = "magpool-bench", version, about)]
struct Args {
    /// Fewer rounds, shorter measurements: under a minute.
    #[arg(long)]
    quick: bool,
    /// Rounds over every implementation and workload [default: 5, quick 3].
    #[arg(long)]
    rounds: Option<usize>,
    /// Wall time of one measurement, ms [default: 130, quick 25].
    #[arg(long)]
    ms: Option<u64>,
    /// Only these implementations (comma-separated; each workload's baseline,
    /// `vec` or `bytesmut`, is always added).
    #[arg(long, value_delimiter = ',')]
    impls: Vec<String>,
    /// Only these workloads, as `group` or `group/param` (comma-separated).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// magpool's per-magazine byte budget (`Builder::magazine_bytes`), to
    /// measure its trade-off [default: the crate's, 1 MiB].
    #[arg(long)]
    magazine_bytes: Option<usize>,
    /// Where to write report.md, report.csv and the SVG charts.
    #[arg(long, default_value = "target/bench-report")]
    out: PathBuf,
    /// Internal: measure IMPL on WORKLOAD in this process, print one line.
    #[arg(long, hide = true, num_args = 2, value_names = ["IMPL", "WORKLOAD"])]
    child: Option<Vec<String>>,
    /// With --child: run exactly N iterations (after as many to warm up)
    /// instead of a timed budget, for perf and callgrind.
    #[arg(long, hide = true, requires = "child")]
    iters: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let ms = args.ms.unwrap_or(if args.quick { 25 } else { 130 });
    if let Some(child) = &args.child {
        let budget = match args.iters {
            Some(n) => child::Budget::Iters(n),
            None => child::Budget::Time(Duration::from_millis(ms)),
        };
        return child::print_sample(&child[0], &child[1], budget, args.magazine_bytes, Global::System);
    }
    match parent(&args, ms) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("magpool-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Selects, runs every round, reports.
fn parent(args: &Args, ms: u64) -> Result<(), String> {
    let rounds = args.rounds.unwrap_or(if args.quick { 3 } else { 5 }).max(1);
    let chosen =
        |w: &Workload, imp: &str| args.impls.is_empty() || imp == w.baseline() || args.impls.iter().any(|a| a == imp);
    let plan: Vec<(Workload, Vec<&'static str>)> = Workload::all()
        .into_iter()
        .filter(|w| args.workloads.is_empty() || args.workloads.iter().any(|a| *a == w.group() || *a == w.key()))
        .map(|w| (w, w.impls().iter().copied().filter(|imp| chosen(&w, imp)).collect::<Vec<_>>()))
        .filter(|(_, impls)| impls.len() >= 2)
        .collect();
    if plan.is_empty() {
        return Err(format!("nothing to compare: implementations {:?}, workloads {:?}", args.impls, args.workloads));
    }
    if let Some(bytes) = args.magazine_bytes {
        magpool_bench::peers::Magpool::with_magazine_bytes(bytes).map_err(|e| format!("--magazine-bytes: {e}"))?;
    }
    let exes = siblings::Executables::find(plan.iter().flat_map(|(_, impls)| impls.iter().map(|i| Global::of(i))))?;
    let mut impls: Vec<&'static str> = Vec::new();
    for imp in plan.iter().flat_map(|(_, impls)| impls) {
        if !impls.contains(imp) {
            impls.push(imp);
        }
    }
    let workloads: Vec<Workload> = plan.iter().map(|(w, _)| *w).collect();
    let mut run = Run::new(rounds, ms, &impls, &workloads, timer_overhead_ns());
    run.magazine_bytes = args.magazine_bytes;
    let total = (rounds * plan.iter().map(|(_, impls)| impls.len()).sum::<usize>()) as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {pos}/{len} {msg} (eta {eta})")
            .expect("a valid template"),
    );
    let began = Instant::now();
    for round in 0..rounds {
        for (wi, (w, impls)) in plan.iter().enumerate() {
            for k in 0..impls.len() {
                let imp = impls[(k + round + wi) % impls.len()];
                bar.set_message(format!("round {}/{rounds} {} {imp}", round + 1, w.key()));
                let global = Global::of(imp);
                let exe = exes.get(global);
                let mut cmd = Command::new(exe);
                cmd.args(["--child", imp, &w.key(), "--ms", &ms.to_string()]);
                if let (Some(bytes), Global::System) = (args.magazine_bytes, global) {
                    cmd.args(["--magazine-bytes", &bytes.to_string()]);
                }
                let out = cmd.output().map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
                let stdout = String::from_utf8_lossy(&out.stdout);
                let sample = child::Sample::parse(&stdout).filter(|_| out.status.success()).ok_or_else(|| {
                    format!(
                        "{imp} on {} failed ({}): {}",
                        w.key(),
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    )
                })?;
                run.add(imp, *w, sample);
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    run.finish(began.elapsed());
    let report = Report::new(&run);
    let markdown = report.markdown();
    print!("{markdown}");
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let write = |name: &str, text: &str| {
        let path = args.out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("report.md", &markdown)?;
    write("report.csv", &report.csv())?;
    if report.groups().contains(&"burst_idle") {
        write("burst_idle.csv", &idle_report::csv(&report))?;
    }
    for group in report.groups() {
        let path = args.out.join(format!("{group}.svg"));
        let drawn = match group {
            "burst_idle" => idle_chart::draw(&report, &path),
            _ => chart::draw(&report, group, &path),
        };
        drawn.map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!("\nwrote {}/report.md, report.csv and {} charts", args.out.display(), report.groups().len());
    Ok(())
}
