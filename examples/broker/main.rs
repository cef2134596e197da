//! The main job as a service: a tokio server speaking the Redis protocol
//! (RESP2), storing `SET` values and stream entries in the segment log, with
//! every request, reply and storage buffer from magpool, or, for comparison,
//! from `BytesMut` and `Vec`.
//!
//! ```text
//! cargo run --release --example broker                 # both modes under redis-benchmark, side by side
//! cargo run --release --example broker -- serve        # one server on 127.0.0.1:6379; redis-cli works
//! cargo run --release --example broker -- open-loop    # our fixed-rate generator against 127.0.0.1:6379
//! ```
//!
//! The log is the segment log's own code (`../segment_log/`: codec,
//! segments, indexes, reader, counting allocator), included by path. The
//! broker's files: `resp.rs` (protocol), `netbuf.rs` (the two buffer
//! modes), `store.rs` (logs and maps), `writer.rs` (the writer thread),
//! `commands.rs`, `conn.rs`, `server.rs`, and for the comparison
//! `bench.rs`, `loadgen.rs` (redis-benchmark), `openloop.rs` (a
//! fixed-rate generator of our own) and `report.rs`.
//!
//! Exit codes: 0 on success, 2 for a usage error, 1 for a runtime error.

#[allow(dead_code)]
#[path = "../segment_log/bufs.rs"]
mod bufs;
#[allow(dead_code)]
#[path = "../segment_log/codec.rs"]
mod codec;
#[allow(dead_code)]
#[path = "../segment_log/counting.rs"]
mod counting;
#[allow(dead_code)]
#[path = "../segment_log/index.rs"]
mod index;
#[allow(dead_code)]
#[path = "../segment_log/metrics.rs"]
mod metrics;
#[allow(dead_code)]
#[path = "../segment_log/reader.rs"]
mod reader;
#[allow(dead_code)]
#[path = "../segment_log/records.rs"]
mod records;
#[allow(dead_code)]
#[path = "../segment_log/segment.rs"]
mod segment;

mod bench;
mod commands;
mod conn;
mod loadgen;
mod netbuf;
mod openloop;
mod report;
mod resp;
mod server;
mod store;
mod writer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::netbuf::{Mode, Plain, Pooled};
use crate::segment::{Fsync, LogConfig};
use crate::server::ServerConfig;
use crate::writer::WriterConfig;

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "broker",
    about = "A Redis-protocol broker on the segment log, magpool against BytesMut under redis-benchmark."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    bench: bench::BenchArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one server until killed (Ctrl-C).
    Serve(ServeArgs),
    /// Run the open-loop generator against a server (this broker, or any
    /// Redis) and print its latency percentiles.
    OpenLoop(OpenLoopArgs),
}

/// The open-loop generator by hand.
#[derive(Args, Debug, Clone)]
struct OpenLoopArgs {
    /// The server.
    #[arg(long, default_value = "127.0.0.1:6379")]
    addr: SocketAddr,
    /// Requests per second.
    #[arg(long, default_value_t = 4_000)]
    rate: u64,
    /// Requests in all.
    #[arg(long, default_value_t = 16_000)]
    requests: u64,
    /// Connections.
    #[arg(long, default_value_t = 8)]
    connections: u32,
    /// Keys (`ol:0` ...), set in a warm-up pass first.
    #[arg(long, default_value_t = 1000)]
    keyspace: u64,
    /// Value sizes, the segment log's mix by default.
    #[arg(long, default_value = records::DEFAULT_MIX, value_parser = records::SizeMix::parse)]
    sizes: records::SizeMix,
}

/// `--mode` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModeArg {
    /// magpool buffers (network and storage pools).
    Magpool,
    /// `BytesMut` on the network, `Vec<u8>` in the log.
    Bytesmut,
}

impl ModeArg {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ModeArg::Magpool => "magpool",
            ModeArg::Bytesmut => "bytesmut",
        }
    }
}

/// `--fsync` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FsyncArg {
    /// Never: appends reach the page cache (Kafka's default).
    Never,
    /// After every batch.
    Batch,
}

/// How one server runs.
#[derive(Args, Debug, Clone)]
pub(crate) struct ServeArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:6379")]
    pub(crate) addr: SocketAddr,
    /// Where buffers come from.
    #[arg(long, value_enum, default_value_t = ModeArg::Magpool)]
    pub(crate) mode: ModeArg,
    /// Where the logs go (created; must hold no earlier run's logs).
    /// Default: a fresh temporary directory, removed at exit.
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// The most bytes one request may take (k, m suffixes); a longer one is
    /// refused before any of it is read.
    #[arg(long, default_value = "4m", value_parser = parse_max_request)]
    pub(crate) max_request: usize,
    /// A batch closes at this many bytes (k, m suffixes); 16k is the Kafka
    /// producer's batch.size.
    #[arg(long, default_value = "16k", value_parser = parse_batch_size)]
    pub(crate) batch_size: usize,
    /// Segment size (k, m suffixes).
    #[arg(long, default_value = "64m", value_parser = parse_segment_size)]
    pub(crate) segment_size: u64,
    /// When appends are fsync'd.
    #[arg(long, value_enum, default_value_t = FsyncArg::Never)]
    pub(crate) fsync: FsyncArg,
    /// Connections served at once.
    #[arg(long, default_value_t = 1024)]
    pub(crate) max_clients: usize,
    /// Streams that may exist.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub(crate) max_streams: u16,
    /// Entries one XRANGE may return.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) max_range: u64,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) workers: u16,
    /// Serve the pools' metrics at http://ADDR/metrics (magpool mode).
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_addr: Option<SocketAddr>,
}

fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, unit) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        _ => (&lower[..], 1),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{text:?} is not a size (e.g. 16k, 4m)"))?;
    n.checked_mul(unit).ok_or_else(|| format!("{text:?} is too large"))
}

fn parse_max_request(text: &str) -> Result<usize, String> {
    let n = parse_size(text)?;
    (64..=1 << 30).contains(&n).then_some(n as usize).ok_or_else(|| format!("{text}: requests must be 64 to 1g"))
}

fn parse_batch_size(text: &str) -> Result<usize, String> {
    let n = parse_size(text)?;
    (1..=64 << 20).contains(&n).then_some(n as usize).ok_or_else(|| format!("{text}: batches must be 1 to 64m"))
}

fn parse_segment_size(text: &str) -> Result<u64, String> {
    let n = parse_size(text)?;
    (64 << 10..=2 << 30).contains(&n).then_some(n).ok_or_else(|| format!("{text}: segments must be 64k to 2g"))
}

impl ServeArgs {
    /// The server configuration, its logs in `dir`.
    pub(crate) fn config(&self, dir: PathBuf) -> ServerConfig {
        let fsync = match self.fsync {
            FsyncArg::Never => Fsync::Never,
            FsyncArg::Batch => Fsync::Batch,
        };
        ServerConfig {
            addr: self.addr,
            dir,
            max_request: self.max_request,
            max_clients: self.max_clients,
            max_streams: usize::from(self.max_streams),
            max_range: self.max_range,
            workers: usize::from(self.workers),
            writer: WriterConfig {
                batch_bytes: self.batch_size,
                log: LogConfig { segment_bytes: self.segment_size, index_interval: 4096, fsync },
            },
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors exit with code 2
    let result = match &cli.command {
        Some(Command::Serve(args)) => serve_main(args),
        Some(Command::OpenLoop(args)) => open_loop_main(args),
        None => bench::main(&cli.bench),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `open-loop`: the generator against `--addr`, its result on stdout.
fn open_loop_main(args: &OpenLoopArgs) -> Result<(), String> {
    let load = openloop::OpenLoop {
        rate: args.rate,
        requests: args.requests,
        connections: args.connections,
        keyspace: args.keyspace.max(1),
        mix: args.sizes.clone(),
        seed: 1,
    };
    let m = openloop::run(args.addr, &load)?;
    println!(
        "{}: {} requests, {:.0}/s; latency ms p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
        m.name, m.requests, m.rps, m.p50, m.p99, m.p999, m.max
    );
    Ok(())
}

/// `serve`: one server, in the mode asked for, until the process is killed.
/// Prints `broker: listening on ADDR (MODE)` on stdout once it accepts.
fn serve_main(args: &ServeArgs) -> Result<(), String> {
    let temp;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("broker-").tempdir().map_err(|e| format!("temp dir: {e}"))?;
            temp.path().to_path_buf()
        }
    };
    match args.mode {
        ModeArg::Magpool => run_forever(Pooled::new(), args, dir),
        ModeArg::Bytesmut => run_forever(Plain, args, dir),
    }
}

fn run_forever<M: Mode>(mode: M, args: &ServeArgs, dir: PathBuf) -> Result<(), String> {
    let endpoint = match (args.metrics_addr, mode.pools()) {
        (Some(addr), Some((net, store))) => {
            let mut registry = prometheus_client::registry::Registry::default();
            net.register_metrics(&mut registry);
            store.register_metrics(registry.sub_registry_with_prefix("store"));
            let endpoint = metrics::serve_registry(addr, registry)?;
            println!("broker: metrics at http://{}/metrics", endpoint.addr);
            Some(endpoint)
        }
        (Some(_), None) => return Err("--metrics-addr needs --mode magpool (the pools are what it serves)".into()),
        _ => None,
    };
    let name = mode.name();
    let server =
        server::start(mode, args.config(dir.clone())).map_err(|e| format!("cannot serve on {}: {e}", args.addr))?;
    println!("broker: listening on {} ({name}), logs in {}", server.addr(), dir.display());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _running = (server, endpoint, dir);
    loop {
        std::thread::park(); // until killed
    }
}
