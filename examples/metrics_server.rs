//! Serves the global pool's metrics over HTTP while a background workload runs
//! through it: a few threads, mixed sizes, cross-thread release, an
//! occasional `trim`.
//!
//! Run: `cargo run --release --example metrics_server -- [--addr HOST:PORT] [--seconds N]`
//! (default address 127.0.0.1:9090; without `--seconds` it runs until
//! killed), then `curl http://127.0.0.1:9090/metrics`.
//!
//! `GET /metrics` answers in the OpenMetrics text format, which is what
//! Prometheus asks for. A client whose `Accept` header names `text/plain` and
//! not `application/openmetrics-text` (promtool's linter reads only the older
//! format) gets the classic Prometheus text format 0.0.4 instead. Any other
//! path is a 404.

use std::collections::HashSet;
use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use tiny_http::{Header, Request, Response, Server};

const USAGE: &str = "usage: metrics_server [--addr HOST:PORT] [--seconds N]
  --addr HOST:PORT  where to listen (default 127.0.0.1:9090; port 0 picks a free one)
  --seconds N       stop by itself after N seconds (default: run until killed)";

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Threads that get buffers; one more thread releases what they send it.
const PRODUCERS: u64 = 2;
/// Buffer sizes the workload asks for: every class, and between classes.
const SIZES: [usize; 12] = [64, 300, 512, 1000, 4096, 9000, 16 << 10, 50_000, 64 << 10, 200_000, 1 << 20, 3 << 20];

struct Args {
    addr: SocketAddr,
    seconds: Option<u64>,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("metrics_server: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::http(args.addr) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("metrics_server: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let pool = magpool::global();
    let mut registry = Registry::default();
    pool.register_metrics(&mut registry);

    let listening = server.server_addr().to_ip().map_or_else(|| args.addr.to_string(), |a| a.to_string());
    println!("metrics_server: serving http://{listening}/metrics");
    std::io::stdout().flush().ok(); // scripts wait for this line

    let stop = AtomicBool::new(false);
    let deadline = args.seconds.map(|s| Instant::now() + Duration::from_secs(s));
    thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<magpool::Buf<'static>>(256);
        s.spawn(move || rx.into_iter().for_each(drop)); // cross-thread release
        for seed in 1..=PRODUCERS {
            let (tx, stop) = (tx.clone(), &stop);
            s.spawn(move || workload(pool, seed, &tx, stop));
        }
        drop(tx);
        serve(&server, &registry, deadline);
        stop.store(true, Relaxed);
    });

    let stats = pool.stats();
    println!(
        "metrics_server: stopped; gets {} puts {} allocations {} discarded {} oversized {}",
        stats.gets, stats.puts, stats.allocations, stats.discarded, stats.oversized
    );
    ExitCode::SUCCESS
}

/// `Ok(None)` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args { addr: SocketAddr::from(([127, 0, 0, 1], 9090)), seconds: None };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => {
                let addr = value()?;
                parsed.addr = addr
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut all| all.next())
                    .ok_or(format!("--addr wants HOST:PORT, got {addr:?}"))?;
            }
            "--seconds" => {
                let n = value()?;
                parsed.seconds = Some(n.parse().map_err(|_| format!("--seconds wants a whole number, got {n:?}"))?);
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(parsed))
}

/// Answers requests until `deadline` (or forever).
fn serve(server: &Server, registry: &Registry, deadline: Option<Instant>) {
    while deadline.is_none_or(|d| Instant::now() < d) {
        match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(request)) => respond(request, registry),
            Ok(None) => {}
            Err(e) => {
                eprintln!("metrics_server: the server stopped accepting: {e}");
                return;
            }
        }
    }
}

fn respond(request: Request, registry: &Registry) {
    let path = request.url().split('?').next().unwrap_or_default();
    let response = if path == "/metrics" {
        let mut body = String::new();
        encode(&mut body, registry).expect("encoding into a String cannot fail");
        let (body, content_type) =
            if wants_classic(&request) { (to_classic(&body), CLASSIC) } else { (body, OPENMETRICS) };
        Response::from_string(body).with_header(header("Content-Type", content_type))
    } else {
        Response::from_string("not found; metrics are at /metrics\n").with_status_code(404)
    };
    if let Err(e) = request.respond(response) {
        eprintln!("metrics_server: reply failed: {e}");
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name, value).expect("a static ASCII header")
}

/// Whether the client asked for the classic text format and not for
/// OpenMetrics. (No q-value ranking: Prometheus lists OpenMetrics first and
/// gets it; `curl` sends `*/*` and gets it too.)
fn wants_classic(request: &Request) -> bool {
    request.headers().iter().filter(|h| h.field.equiv("Accept")).any(|h| {
        let accept = h.value.as_str();
        accept.contains("text/plain") && !accept.contains("application/openmetrics-text")
    })
}

/// The classic Prometheus text format (0.0.4) from prometheus-client's
/// OpenMetrics text, for the counters and gauges magpool exports: a counter
/// family takes its samples' `_total` name in `# HELP` and `# TYPE`, and the
/// OpenMetrics-only `# UNIT` and `# EOF` lines go. Sample lines are the same
/// in both formats.
fn to_classic(openmetrics: &str) -> String {
    let counters: HashSet<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut classic = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].into_iter().find_map(|keyword| {
            let (name, rest) = line.strip_prefix(keyword)?.split_once(' ')?;
            counters.contains(name).then(|| format!("{keyword}{name}_total {rest}"))
        });
        classic.push_str(renamed.as_deref().unwrap_or(line));
        classic.push('\n');
    }
    classic
}

/// Gets buffers of mixed sizes, keeps a few, sends every fourth to the
/// releasing thread, and trims now and then (thread 1), in small batches with
/// pauses so as to leave the machine's cores to others.
fn workload(
    pool: &'static magpool::Pool,
    seed: u64,
    release: &mpsc::SyncSender<magpool::Buf<'static>>,
    stop: &AtomicBool,
) {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift64: enough variety for a demo, no dependency.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut kept: Vec<magpool::Buf<'static>> = Vec::new();
    let mut last_trim = Instant::now();
    while !stop.load(Relaxed) {
        for _ in 0..200 {
            let r = next();
            let mut buf = if r % 500 == 0 {
                pool.with_capacity(17 << 20) // oversized: above the 16 MiB class
            } else {
                pool.with_capacity(SIZES[(r % SIZES.len() as u64) as usize])
            };
            buf.extend_from_slice(&r.to_le_bytes());
            match r % 8 {
                // If the releasing thread is behind, the buffer comes back
                // inside the error and is released here.
                0 | 1 => drop(release.try_send(buf)),
                2 => kept.push(buf),
                _ => drop(buf),
            }
            if kept.len() > 64 {
                kept.drain(..32);
            }
        }
        if seed == 1 && last_trim.elapsed() > Duration::from_secs(3) {
            pool.trim();
            last_trim = Instant::now();
        }
        thread::sleep(Duration::from_millis(5));
    }
}
