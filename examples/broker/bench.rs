//! The comparison, the example's default command: each round starts one
//! server per buffer mode, each in its own process, warms them up (the
//! write tests, not measured), then drives them in turn with `redis-benchmark`
//! through one test per value size of the segment log's mix (`SET`, `GET`,
//! then a stream's `XADD` and `XRANGE`), the mode that goes first
//! alternating from test to test. Around each test it reads the server's
//! allocator calls (`INFO`) and page faults (`/proc`); at the end, its pool
//! counters and peak RSS. Then it prints the modes side by side
//! (`report.rs`).
//!
//! # Invariants
//!
//! - Every server process is killed and reaped at the end of its round,
//!   also when a test fails (`Server`'s drop), and its logs live in the
//!   run's temporary directory, removed at the end.
//! - A test's allocator calls and requests are the differences of `INFO`'s
//!   counters around it: the server's own threads, nothing of the client.
//!
//! Called by `main.rs` when no subcommand is given.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::loadgen::{self, Load, Measured};
use crate::openloop::{self, OpenLoop};
use crate::records::{human, SizeMix, DEFAULT_MIX};
use crate::report::{self, ServerRun, TestRun};
use crate::ModeArg;

/// The comparison's flags (the default command).
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct BenchArgs {
    /// Rounds; each runs every mode once, in alternating order.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) rounds: u32,
    /// Requests of the mix's SET and GET tests together; each size gets its
    /// share (at least --min-requests, or --large-requests past 64 KiB).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) requests: u64,
    /// Fewest requests of one test of values under 64 KiB.
    #[arg(long, default_value_t = 5_000)]
    pub(crate) min_requests: u64,
    /// Requests of one test of values of 64 KiB or more.
    #[arg(long, default_value_t = 200)]
    pub(crate) large_requests: u64,
    /// Value sizes, the segment log's mix: one SET and one GET test per
    /// bucket, with the bucket's middle size (`-d`).
    #[arg(long, default_value = DEFAULT_MIX, value_parser = SizeMix::parse)]
    pub(crate) sizes: SizeMix,
    /// Connections (`-c`), for values under 64 KiB.
    #[arg(long, default_value_t = 50)]
    pub(crate) clients: u32,
    /// Requests in flight per connection (`-P`), for values under 64 KiB.
    #[arg(long, default_value_t = 16)]
    pub(crate) pipeline: u32,
    /// Connections for values of 64 KiB or more (one request in flight each).
    #[arg(long, default_value_t = 4)]
    pub(crate) large_clients: u32,
    /// Keys (`-r`).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) keyspace: u64,
    /// redis-benchmark's threads (`--threads`).
    #[arg(long, default_value_t = 1)]
    pub(crate) client_threads: u32,
    /// Requests of the stream tests (XADD, XRANGE ... COUNT 10); 0: none.
    #[arg(long, default_value_t = 30_000)]
    pub(crate) stream_requests: u64,
    /// The open-loop generator's rate, requests per second (a mix of SET
    /// and GET, sizes from --sizes).
    #[arg(long, default_value_t = 4_000)]
    pub(crate) open_loop_rate: u64,
    /// The open-loop generator's requests; 0: none.
    #[arg(long, default_value_t = 16_000)]
    pub(crate) open_loop_requests: u64,
    /// The open-loop generator's connections.
    #[arg(long, default_value_t = 8)]
    pub(crate) open_loop_connections: u32,
    /// Which modes to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["magpool", "bytesmut"])]
    pub(crate) modes: Vec<ModeArg>,
    /// The client.
    #[arg(long, default_value = "redis-benchmark")]
    pub(crate) redis_benchmark: String,
    /// Server runtime worker threads.
    #[arg(long, default_value_t = 2)]
    pub(crate) workers: u16,
    /// Server batch size (k, m suffixes).
    #[arg(long, default_value = "16k")]
    pub(crate) batch_size: String,
    /// fsync every batch (default: never, as Kafka).
    #[arg(long)]
    pub(crate) fsync_batches: bool,
    /// Serve the magpool server's pools at http://ADDR/metrics while it
    /// runs (each round's server in turn), e.g. 127.0.0.1:9091.
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_addr: Option<SocketAddr>,
}

/// Values of at least this many bytes get `--large-*` clients and requests.
const LARGE: usize = 64 << 10;

/// One test of the plan: a label, what drives it, and payload bytes per
/// request.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// `SET 562 B`, ...
    pub(crate) label: String,
    /// What sends the requests.
    pub(crate) driver: Driver,
    /// Requests in all.
    pub(crate) requests: u64,
    /// Value bytes one request carries (for MB/s).
    pub(crate) bytes: usize,
}

/// What sends a test's requests.
#[derive(Debug, Clone)]
pub(crate) enum Driver {
    /// `redis-benchmark`.
    Bench(Load),
    /// The open-loop generator.
    Open(OpenLoop),
}

impl Planned {
    fn bench(label: String, load: Load, bytes: usize) -> Planned {
        Planned { label, requests: load.requests, driver: Driver::Bench(load), bytes }
    }

    /// A write test of redis-benchmark (SET, XADD): run once more, first,
    /// as the warm-up. (Measured cold, XADD's first use of its stream came
    /// out 0.85-0.94x in magpool's throughput; warm, level or ahead.)
    fn warms_up(&self) -> bool {
        match &self.driver {
            Driver::Bench(load) => load.test == "set" || load.command.first().is_some_and(|c| c == "XADD"),
            Driver::Open(_) => false,
        }
    }
}

/// The tests of one server run, in order.
pub(crate) fn plan(args: &BenchArgs) -> Vec<Planned> {
    let mut tests = Vec::new();
    for bucket in args.sizes.buckets() {
        let value = (bucket.min + bucket.max) / 2;
        let large = value >= LARGE;
        let share = (args.requests as f64 * args.sizes.share(bucket) / 2.0) as u64;
        let requests = if large { args.large_requests } else { share.max(args.min_requests) };
        let (clients, pipeline) = if large { (args.large_clients, 1) } else { (args.clients, args.pipeline) };
        for test in ["set", "get"] {
            let load = Load {
                test,
                command: Vec::new(),
                requests,
                clients,
                pipeline,
                value,
                // Each SET writes ~98% of its keys: the GET after it reads
                // values of its own size.
                keyspace: args.keyspace.min(requests / 4).max(1),
                threads: args.client_threads,
            };
            tests.push(Planned::bench(format!("{} {}", test.to_uppercase(), human(value)), load, value));
        }
    }
    if args.stream_requests > 0 {
        let value = args.sizes.buckets().first().map_or(100, |b| (b.min + b.max) / 2);
        let base = Load {
            test: "",
            command: Vec::new(),
            requests: args.stream_requests,
            clients: args.clients,
            pipeline: args.pipeline,
            value,
            keyspace: args.stream_requests,
            threads: args.client_threads,
        };
        let xadd = ["XADD", "bench-stream", "*", "payload"].map(String::from).into_iter().chain([".".repeat(value)]);
        let xrange = ["XRANGE", "bench-stream", "__rand_int__", "+", "COUNT", "10"].map(String::from);
        tests.push(Planned::bench(
            format!("XADD {}", human(value)),
            Load { command: xadd.collect(), ..base.clone() },
            value,
        ));
        tests.push(Planned::bench("XRANGE x10".into(), Load { command: xrange.into(), ..base }, 10 * value));
    }
    if args.open_loop_requests > 0 {
        let load = OpenLoop {
            rate: args.open_loop_rate,
            requests: args.open_loop_requests,
            connections: args.open_loop_connections,
            keyspace: 1000,
            mix: args.sizes.clone(),
            seed: 1,
        };
        tests.push(Planned {
            label: format!("open loop, mix, {}/s", args.open_loop_rate),
            requests: load.requests,
            driver: Driver::Open(load),
            bytes: args.sizes.mean() as usize,
        });
    }
    tests
}

/// Runs the comparison and prints it.
///
/// # Errors
///
/// When the client is missing, a server cannot start, or a test fails.
pub(crate) fn main(args: &BenchArgs) -> Result<(), String> {
    let started = std::time::Instant::now();
    let version = loadgen::version(&args.redis_benchmark)?;
    let tests = plan(args);
    let temp = tempfile::Builder::new().prefix("broker-bench-").tempdir().map_err(|e| format!("temp dir: {e}"))?;
    report::preamble(args, &version, &tests);
    let warmups = tests.iter().filter(|t| t.warms_up()).count();
    let steps = u64::from(args.rounds) * args.modes.len() as u64 * (tests.len() + warmups) as u64;
    let progress = progress_bar(steps);
    let mut runs: Vec<ServerRun> = Vec::new();
    for round in 0..args.rounds {
        progress.set_message(format!("round {}/{}", round + 1, args.rounds));
        runs.extend(round_run(args, round, temp.path(), &tests, &progress)?);
    }
    progress.finish_and_clear();
    print!("{}", report::table(args, &tests, &runs));
    println!(
        "{} rounds in {:.0} s; machine after: {}",
        args.rounds,
        started.elapsed().as_secs_f64(),
        report::machine()
    );
    Ok(())
}

/// One round: a server per mode, each in its own process, side by side;
/// a warm-up of each, then every test on each in turn, the mode that goes
/// first alternating from test to test and round to round, so that the
/// machine's slow spells fall on both.
fn round_run(
    args: &BenchArgs,
    round: u32,
    root: &Path,
    tests: &[Planned],
    progress: &ProgressBar,
) -> Result<Vec<ServerRun>, String> {
    let mut servers = Vec::new();
    for &mode in &args.modes {
        servers.push(Server::start(args, mode, &root.join(format!("{}-{round}", mode.name())))?);
    }
    // Warm-up, not measured: every key and stream exists and every buffer
    // cache has seen its sizes, as in a server that has been up a while.
    for server in &servers {
        for test in tests.iter().filter(|t| t.warms_up()) {
            drive(args, server, test)
                .map_err(|e| format!("{} server, warm-up {}: {e}", server.mode.name(), test.label))?;
            progress.inc(1);
        }
    }
    let mut runs: Vec<ServerRun> = servers
        .iter()
        .map(|s| ServerRun { mode: s.mode, tests: Vec::new(), peak_rss_kib: 0, info: HashMap::new() })
        .collect();
    for (i, test) in tests.iter().enumerate() {
        let mut order: Vec<usize> = (0..servers.len()).collect();
        if (round as usize + i) % 2 == 1 {
            order.reverse();
        }
        for k in order {
            runs[k].tests.push(measure(args, &servers[k], test)?);
            progress.inc(1);
        }
    }
    std::thread::sleep(Duration::from_millis(200)); // let the connections close
    for (run, server) in runs.iter_mut().zip(&servers) {
        run.info = info(server.addr)?;
        run.peak_rss_kib = server.proc_status("VmHWM:");
    }
    Ok(runs)
}

/// Runs `test` on `server`, with the server's counters around it.
fn measure(args: &BenchArgs, server: &Server, test: &Planned) -> Result<TestRun, String> {
    let (before, faults) = (info(server.addr)?, server.minor_faults());
    let measured =
        drive(args, server, test).map_err(|e| format!("{} server, {}: {e}", server.mode.name(), test.label))?;
    let (after, faults) = (info(server.addr)?, server.minor_faults().saturating_sub(faults));
    let delta = |key: &str| number(&after, key).saturating_sub(number(&before, key));
    Ok(TestRun {
        measured,
        alloc_calls: delta("allocator_calls"),
        commands: delta("total_commands_processed"),
        minor_faults: faults,
    })
}

/// Sends `test`'s requests to `server`.
fn drive(args: &BenchArgs, server: &Server, test: &Planned) -> Result<Measured, String> {
    match &test.driver {
        Driver::Bench(load) => loadgen::run(&args.redis_benchmark, server.addr, load),
        Driver::Open(load) => openloop::run(server.addr, load),
    }
}

/// A server child process, killed and reaped when dropped.
struct Server {
    child: Child,
    mode: ModeArg,
    addr: SocketAddr,
}

impl Server {
    /// Starts `serve` in `mode` on a loopback port the kernel picks, its
    /// logs in `dir`, and waits for its address.
    fn start(args: &BenchArgs, mode: ModeArg, dir: &Path) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--mode", mode.name(), "--dir"]).arg(dir);
        cmd.args(["--workers", &args.workers.to_string(), "--batch-size", &args.batch_size]);
        cmd.args(["--fsync", if args.fsync_batches { "batch" } else { "never" }]);
        if let (Some(addr), ModeArg::Magpool) = (args.metrics_addr, mode) {
            cmd.args(["--metrics-addr", &addr.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the {} server: {e}", mode.name()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut server = Server { child, mode, addr: SocketAddr::from(([127, 0, 0, 1], 0)) };
        // `broker: metrics at ...` may come first; then the address.
        let mut line = String::new();
        let mut stdout = BufReader::new(stdout);
        for _ in 0..2 {
            line.clear();
            stdout.read_line(&mut line).map_err(|e| format!("the server's stdout: {e}"))?;
            if let Some(metrics) = line.strip_prefix("broker: metrics at ") {
                eprintln!("broker: the magpool server serves its pools at {}", metrics.trim_end());
                continue;
            }
            break;
        }
        server.addr = line
            .strip_prefix("broker: listening on ")
            .and_then(|l| l.split(' ').next())
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("the {} server did not start: {line:?}", mode.name()))?;
        Ok(server)
    }

    /// A `kB` line of the child's `/proc/PID/status` (`VmHWM:`: peak RSS), KiB.
    fn proc_status(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// The child's minor page faults so far (`/proc/PID/stat`, field 10).
    fn minor_faults(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // The name (field 2) may hold spaces: count from after its ')'.
        let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        rest.split_whitespace().nth(7).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `INFO` over a fresh connection: its `key:value` lines.
pub(crate) fn info(addr: SocketAddr) -> Result<HashMap<String, String>, String> {
    let fail = |e: std::io::Error| format!("INFO from {addr}: {e}");
    let mut stream = TcpStream::connect(addr).map_err(fail)?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(fail)?;
    stream.write_all(b"*1\r\n$4\r\nINFO\r\n").map_err(fail)?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header).map_err(fail)?;
    let len: usize = header
        .strip_prefix('$')
        .and_then(|l| l.trim_end().parse().ok())
        .ok_or_else(|| format!("INFO from {addr}: unexpected reply {header:?}"))?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).map_err(fail)?;
    let text = String::from_utf8_lossy(&body);
    Ok(text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect())
}

/// A number from `INFO`, 0 if absent.
pub(crate) fn number(info: &HashMap<String, String>, key: &str) -> u64 {
    info.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// A bar on stderr counting tests (hidden when stderr is not a terminal).
fn progress_bar(steps: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("broker [{bar:40}] {pos}/{len} tests, {msg} ({elapsed})")
        .expect("a valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
