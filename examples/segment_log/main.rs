//! A small append-only log, the job magpool was built for: records encoded
//! into pooled buffers on producer threads, appended in CRC-framed batches to
//! rolling segment files with sparse offset and time indexes, read back
//! through the indexes and checked byte for byte. The same run is made with
//! magpool buffers and with plain `Vec<u8>`s, each in its own child process,
//! and the two are compared: throughput, latency percentiles, allocator calls
//! per record, peak RSS, and the pool's counters.
//!
//! Run: `cargo run --release --example segment_log` (`-- --help` for flags).
//!
//! The log lives in the sibling modules, which the tests include too:
//! `codec.rs` (format), `index.rs`, `segment.rs` (writer, recovery),
//! `reader.rs`, `records.rs` (what is written), `workload.rs` (threads),
//! `report.rs` (output), `bufs.rs` (pool or `Vec`), `counting.rs`.
//!
//! Exit codes: 0 on success, 2 for a usage error, 1 for a runtime error.

mod bufs;
mod codec;
mod counting;
mod index;
#[cfg(feature = "metrics")]
mod metrics;
mod reader;
mod records;
mod report;
mod segment;
mod workload;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::bufs::{Buffers, Heap};
use crate::records::{SizeMix, DEFAULT_MIX};
use crate::report::ModeReport;
use crate::segment::{Fsync, LogConfig};
use crate::workload::RunConfig;

/// The command line.
#[derive(Parser, Debug)]
#[command(name = "segment_log", about = "An append-only log on magpool buffers, compared with Vec<u8>.")]
struct Cli {
    /// Records to write and read back, per mode.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    records: u64,
    /// Value sizes, as MIN[-MAX]:WEIGHT,... (sizes take k or m).
    #[arg(long, default_value = DEFAULT_MIX, value_parser = SizeMix::parse)]
    sizes: SizeMix,
    /// Producer threads (one writer thread besides).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    producers: u16,
    /// Where to put the logs (DIR/magpool, DIR/none; created, must hold no
    /// log). Default: a fresh temporary directory, removed at the end.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Segment size (k, m suffixes), 64k to 2g.
    #[arg(long, default_value = "64m", value_parser = parse_segment_size)]
    segment_size: u64,
    /// When to fsync.
    #[arg(long, value_enum, default_value_t = FsyncArg::Batch)]
    fsync: FsyncArg,
    /// Which buffers to run with.
    #[arg(long, value_enum, default_value_t = PoolArg::Both)]
    pool: PoolArg,
    /// Seed of every record.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Serve the magpool run's pool at http://ADDR/metrics (OpenMetrics)
    /// while it runs, e.g. 127.0.0.1:9090.
    #[cfg(feature = "metrics")]
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Close a batch at this many bytes (k, m suffixes).
    #[arg(long, default_value = "256k", value_parser = parse_batch_size)]
    batch_size: u64,
    /// Internal: run one mode in this process, in this directory.
    #[arg(long, hide = true, requires = "child_dir")]
    child: Option<Mode>,
    /// Internal: the child's log directory.
    #[arg(long, hide = true)]
    child_dir: Option<PathBuf>,
}

/// `--fsync` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FsyncArg {
    /// fsync the segment and its indexes after every batch.
    Batch,
    /// Never fsync (the OS writes back when it likes).
    None,
}

/// `--pool` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PoolArg {
    /// Plain `Vec<u8>` buffers only.
    None,
    /// magpool buffers only.
    Magpool,
    /// Both, one after the other.
    Both,
}

/// One kind of buffer, run in one child process.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// magpool buffers.
    Magpool,
    /// `Vec<u8>` buffers.
    None,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Magpool => "magpool",
            Mode::None => "none",
        }
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, unit) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        _ => (&lower[..], 1),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{text:?} is not a size (e.g. 64m, 256k, 1g)"))?;
    n.checked_mul(unit).ok_or_else(|| format!("{text:?} is too large"))
}

fn parse_segment_size(text: &str) -> Result<u64, String> {
    let n = parse_size(text)?;
    (64 << 10..=2 << 30).contains(&n).then_some(n).ok_or_else(|| format!("{text}: segments must be 64k to 2g"))
}

fn parse_batch_size(text: &str) -> Result<u64, String> {
    let n = parse_size(text)?;
    (1..=64 << 20).contains(&n).then_some(n).ok_or_else(|| format!("{text}: batches must be 1 byte to 64m"))
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors exit with code 2
    let result = match (cli.child, &cli.child_dir) {
        (Some(mode), Some(dir)) => child_main(&cli, mode, dir),
        _ => parent_main(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

// === the parent: one child process per mode ===

/// Prepares the directories, runs each mode in a child process of this
/// executable (so each has its own allocator count and peak RSS), prints
/// the comparison.
fn parent_main(cli: &Cli) -> Result<(), String> {
    let modes: &[Mode] = match cli.pool {
        PoolArg::Both => &[Mode::Magpool, Mode::None],
        PoolArg::Magpool => &[Mode::Magpool],
        PoolArg::None => &[Mode::None],
    };
    let temp;
    let root = match &cli.dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("segment_log-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            temp.path().to_path_buf()
        }
    };
    for mode in modes {
        prepare_dir(&root.join(mode.name()))?;
    }
    print_preamble(cli, &root);
    let mut reports = Vec::new();
    for &mode in modes {
        reports.push(run_child(mode, &root.join(mode.name()))?);
    }
    print!("\n{}", report::table(&reports));
    Ok(())
}

/// Creates `dir` and checks it is writable and holds no log.
fn prepare_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
    let probe = dir.join(".segment_log-probe");
    std::fs::write(&probe, b"").map_err(|e| format!("log directory {} is not writable: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    let existing = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?.count();
    if existing > 0 {
        return Err(format!("{} is not empty; give --dir a directory without an earlier run's logs", dir.display()));
    }
    Ok(())
}

fn print_preamble(cli: &Cli, root: &Path) {
    let fsync = match cli.fsync {
        FsyncArg::Batch => "fsync after every batch",
        FsyncArg::None => "no fsync",
    };
    println!(
        "segment_log: {} records per mode, {} producer threads -> 1 writer thread, seed {}",
        cli.records, cli.producers, cli.seed
    );
    println!("  values: {} (mean {:.0} B)", cli.sizes, cli.sizes.mean());
    println!(
        "  log: {} segments, batches up to {}, index entry every 4 KiB, {fsync}",
        records::human(cli.segment_size as usize),
        records::human(cli.batch_size as usize)
    );
    println!(
        "  buffers: magpool Pool::builder().magazine_capacity({}), else defaults; Vec<u8>::with_capacity",
        bufs::MAGAZINE_CAPACITY
    );
    let place = if cli.dir.is_some() { "" } else { " (temporary, removed at exit)" };
    println!("  in {}{place}; each mode runs in its own child process", root.display());
    let _ = std::io::stdout().flush();
}

/// Runs `mode` in a child process writing to `dir`; its stderr (progress,
/// errors) passes through, its stdout is the report.
fn run_child(mode: Mode, dir: &Path) -> Result<ModeReport, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable to re-run it: {e}"))?;
    let output = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .args(["--child", mode.name()])
        .arg("--child-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start the {} run: {e}", mode.name()))?;
    if !output.status.success() {
        return Err(format!("the {} run failed ({})", mode.name(), output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    ModeReport::parse(&text).map_err(|e| format!("the {} run's report: {e}", mode.name()))
}

// === the child: one mode ===

/// Runs one mode here and prints its report on stdout. The pool (if any) is
/// built here and lives for the whole run, with its metrics endpoint.
fn child_main(cli: &Cli, mode: Mode, dir: &Path) -> Result<(), String> {
    let cfg = RunConfig {
        records: cli.records,
        producers: usize::from(cli.producers),
        mix: cli.sizes.clone(),
        seed: cli.seed,
        dir: dir.to_path_buf(),
        log: LogConfig {
            segment_bytes: cli.segment_size,
            index_interval: 4096,
            fsync: if cli.fsync == FsyncArg::Batch { Fsync::Batch } else { Fsync::Never },
        },
        batch_bytes: cli.batch_size as usize,
        channel: 256,
        record_hint: 1024,
    };
    let progress = progress_bar(mode, cli.records);
    let report = match mode {
        Mode::Magpool => {
            let pool = bufs::example_pool();
            #[cfg(feature = "metrics")]
            let endpoint = cli.metrics_addr.map(|addr| metrics::serve(addr, &pool)).transpose()?;
            let report = measure(mode, &pool, &cfg, &progress, || Some(pool.stats()))?;
            #[cfg(feature = "metrics")]
            drop(endpoint);
            drop(pool);
            report
        }
        Mode::None => measure(mode, &Heap, &cfg, &progress, || None)?,
    };
    progress.finish_and_clear();
    print!("{}", report.to_lines());
    Ok(())
}

/// Runs the workload with `bufs`, counting allocator calls around it.
fn measure<S: Buffers>(
    mode: Mode,
    bufs: &S,
    cfg: &RunConfig,
    progress: &ProgressBar,
    stats: impl FnOnce() -> Option<magpool::Stats>,
) -> Result<ModeReport, String> {
    let before = counting::calls();
    let run = workload::run(bufs, cfg, progress).map_err(|e| format!("{} run: {e}", mode.name()))?;
    let calls = counting::calls() - before;
    let stats = stats();
    Ok(ModeReport::new(mode.name(), &run, calls, peak_rss_kib(), stats.as_ref()))
}

/// A bar on stderr counting records written then read (hidden when stderr
/// is not a terminal).
fn progress_bar(mode: Mode, records: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(records * 2), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix:>8} [{bar:40}] {pos}/{len} records written+read ({elapsed})")
        .expect("a valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(mode.name());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The process's peak resident set (VmHWM), in KiB; 0 where /proc has none.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
