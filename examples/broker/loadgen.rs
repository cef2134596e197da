//! The load: Debian's `redis-benchmark` (from `redis-tools`), a client
//! nobody here wrote, run as a child process against the broker; and the
//! parser of what it prints: throughput, its own latency summary, and its
//! percentile distribution, from which p99.9 is read exactly.
//!
//! ```text
//! ====== SET ======
//!   20000 requests completed in 0.25 seconds
//! Latency by percentile distribution:
//! 99.805% <= 5.383 milliseconds (cumulative count 19961)
//! Summary:
//!   throughput summary: 78740.16 requests per second
//!   latency summary (msec):
//!           avg       min       p50       p95       p99       max
//!         0.995     0.120     0.855     1.695     5.279     5.383
//! ```
//!
//! # Invariants
//!
//! - A [`Result`] is only made from a test whose every request completed
//!   ([`parse`] checks the count) and a client that exited with success
//!   and printed no server error ([`run`] checks both).
//!
//! Used by `bench.rs` and by CI's smoke run (through the same binary).

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest one test may take: a server that stops answering fails the
/// comparison instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(300);

/// One `redis-benchmark` test: what to send and how.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    /// The test (`set`, `get`), or empty for a custom command.
    pub(crate) test: &'static str,
    /// A custom command and its arguments (with `__rand_int__`).
    pub(crate) command: Vec<String>,
    /// Requests in all (`-n`).
    pub(crate) requests: u64,
    /// Connections (`-c`).
    pub(crate) clients: u32,
    /// Requests in flight per connection (`-P`).
    pub(crate) pipeline: u32,
    /// Value bytes of SET/GET (`-d`).
    pub(crate) value: usize,
    /// Keys used (`-r`).
    pub(crate) keyspace: u64,
    /// Client threads (`--threads`).
    pub(crate) threads: u32,
}

impl Load {
    /// The command line's arguments, past the address.
    pub(crate) fn args(&self) -> Vec<String> {
        let mut args = vec![
            "-n".into(),
            self.requests.to_string(),
            "-c".into(),
            self.clients.to_string(),
            "-P".into(),
            self.pipeline.to_string(),
            "-d".into(),
            self.value.to_string(),
            "-r".into(),
            self.keyspace.to_string(),
            "--precision".into(),
            "3".into(),
        ];
        if self.threads > 1 {
            args.extend(["--threads".into(), self.threads.to_string()]);
        }
        match self.command.is_empty() {
            true => args.extend(["-t".into(), self.test.into()]),
            false => args.extend(self.command.iter().cloned()),
        }
        args
    }
}

/// What `redis-benchmark` measured for one test.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Measured {
    /// The test's name as it printed it (`SET`, `XADD bench * f ...`).
    pub(crate) name: String,
    /// Requests completed.
    pub(crate) requests: u64,
    /// Requests per second.
    pub(crate) rps: f64,
    /// Latency percentiles in ms: p50, p99 (its summary), p99.9 (its
    /// distribution), max.
    pub(crate) p50: f64,
    /// 99th percentile, ms.
    pub(crate) p99: f64,
    /// 99.9th percentile, ms.
    pub(crate) p999: f64,
    /// Largest latency, ms.
    pub(crate) max: f64,
}

/// Runs `load` with `exe` against `addr`; the measurement of its one test.
///
/// # Errors
///
/// When the client cannot start, fails, reports a server error, or did
/// not complete every request.
pub(crate) fn run(exe: &str, addr: SocketAddr, load: &Load) -> Result<Measured, String> {
    let mut child = Command::new(exe)
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(load.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {exe}: {e} (Debian: apt-get install redis-tools)"))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            text
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        match child.try_wait().map_err(|e| format!("waiting for {exe}: {e}"))? {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{exe} {} did not finish in {} s", load.args().join(" "), DEADLINE.as_secs()));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let (stdout, stderr) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    let (stdout, stderr) = (String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    if !status.success() || stderr.contains("Error") || stdout.contains("Error from server") {
        let tail: String = stderr.lines().chain(stdout.lines()).filter(|l| l.contains("rror")).take(5).collect();
        return Err(format!("{exe} {} failed ({status}): {tail}", load.args().join(" ")));
    }
    let measured = parse(&stdout)?;
    if measured.requests < load.requests {
        return Err(format!("{}: {} of {} requests completed", measured.name, measured.requests, load.requests));
    }
    Ok(measured)
}

/// Parses the report of one test (the last one, if there are several).
///
/// # Errors
///
/// Naming what is missing.
pub(crate) fn parse(text: &str) -> Result<Measured, String> {
    let mut m = Measured::default();
    let mut percentiles = Vec::new();
    let mut summary_next = false;
    // Progress lines end in CR, not LF: split on both.
    for line in text.split(['\r', '\n']).map(str::trim) {
        if let Some(name) = line.strip_prefix("====== ").and_then(|l| l.strip_suffix(" ======")) {
            (m, percentiles) = (Measured { name: name.to_string(), ..Measured::default() }, Vec::new());
        } else if let Some(n) = line.split_once(" requests completed").and_then(|(n, _)| n.parse().ok()) {
            m.requests = n;
        } else if let Some(p) = percentile_line(line) {
            percentiles.push(p);
        } else if let Some(rps) = line.strip_prefix("throughput summary: ").and_then(|l| l.split(' ').next()) {
            m.rps = rps.parse().map_err(|_| format!("bad throughput line {line:?}"))?;
        } else if line.starts_with("avg") && line.contains("p99") {
            summary_next = true;
        } else if summary_next {
            summary_next = false;
            let v: Vec<f64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            let [_avg, _min, p50, _p95, p99, max] = v[..] else { return Err(format!("bad summary {line:?}")) };
            (m.p50, m.p99, m.max) = (p50, p99, max);
        }
    }
    if m.name.is_empty() || m.rps == 0.0 || m.max == 0.0 {
        return Err(format!("no test report in redis-benchmark's output: {:?}", text.get(..300).unwrap_or(text)));
    }
    // p99.9: the first latency at which the cumulative count reaches 99.9%.
    let want = (m.requests as f64 * 0.999).ceil() as u64;
    m.p999 = percentiles.iter().find(|&&(_, count)| count >= want).map_or(m.max, |&(ms, _)| ms);
    Ok(m)
}

/// `99.805% <= 5.383 milliseconds (cumulative count 19961)` → `(5.383, 19961)`.
fn percentile_line(line: &str) -> Option<(f64, u64)> {
    let (_, rest) = line.split_once("% <= ")?;
    let (ms, rest) = rest.split_once(" milliseconds (cumulative count ")?;
    Some((ms.parse().ok()?, rest.strip_suffix(')')?.parse().ok()?))
}

/// `redis-benchmark --version`, or why it cannot run.
///
/// # Errors
///
/// When it is not installed.
pub(crate) fn version(exe: &str) -> Result<String, String> {
    let out = Command::new(exe).arg("--version").output().map_err(|e| {
        format!(
            "cannot run {exe}: {e}; install it (Debian: apt-get install redis-tools) or give --redis-benchmark PATH"
        )
    })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
