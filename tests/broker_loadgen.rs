//! The broker comparison's reading of `redis-benchmark`'s output
//! (`examples/broker/loadgen.rs`, included by path), on text captured from
//! Debian's redis-benchmark 7.0.15: throughput, its summary percentiles, and
//! p99.9 read exactly from its cumulative counts.

#[allow(dead_code)]
#[path = "../examples/broker/loadgen.rs"]
mod loadgen;

/// One test's report, as redis-benchmark prints it (progress lines end in
/// CR), trimmed to what matters.
const SET_REPORT: &str = "SET: rps=0.0 (overall: 0.0) avg_msec=-nan (overall: -nan)\r\
SET: rps=78520.0 (overall: 78520.0) avg_msec=0.990 (overall: 0.990)\r                                   \r\
====== SET ======
  20000 requests completed in 0.25 seconds
  32 parallel clients
  512 bytes payload
  keep alive: 1

Latency by percentile distribution:
0.000% <= 0.127 milliseconds (cumulative count 16)
50.000% <= 0.855 milliseconds (cumulative count 10048)
99.219% <= 5.319 milliseconds (cumulative count 19856)
99.609% <= 5.375 milliseconds (cumulative count 19952)
99.805% <= 5.381 milliseconds (cumulative count 19979)
99.902% <= 5.382 milliseconds (cumulative count 19980)
100.000% <= 5.383 milliseconds (cumulative count 20000)

Cumulative distribution of latencies:
0.000% <= 0.103 milliseconds (cumulative count 0)
99.990% <= 5.103 milliseconds (cumulative count 19998)
100.000% <= 6.103 milliseconds (cumulative count 20000)

Summary:
  throughput summary: 78740.16 requests per second
  latency summary (msec):
          avg       min       p50       p95       p99       max
        0.995     0.120     0.855     1.695     5.279     5.383
";

#[test]
fn reads_a_report() {
    let m = loadgen::parse(SET_REPORT).unwrap();
    assert_eq!(m.name, "SET");
    assert_eq!(m.requests, 20_000);
    assert_eq!(m.rps, 78_740.16);
    assert_eq!((m.p50, m.p99, m.max), (0.855, 5.279, 5.383));
    // 99.9% of 20,000 is 19,980: the 99.902% line, not the 99.805% one
    // (19,979), nor the coarser distribution after it.
    assert_eq!(m.p999, 5.382);
}

#[test]
fn reads_the_last_of_several_tests() {
    let two = format!("{}{}", SET_REPORT.replace("SET", "PING_INLINE"), SET_REPORT.replace("78740.16", "1000.5"));
    let m = loadgen::parse(&two).unwrap();
    assert_eq!((m.name.as_str(), m.rps), ("SET", 1000.5));
}

#[test]
fn refuses_a_report_without_its_summary() {
    let cut = &SET_REPORT[..SET_REPORT.find("Summary:").unwrap()];
    assert!(loadgen::parse(cut).is_err());
    assert!(loadgen::parse("").is_err());
    assert!(loadgen::parse("Error from server: ERR unknown command").is_err());
    let bad = SET_REPORT.replace("        0.995     0.120", "        0.995");
    assert!(loadgen::parse(&bad).is_err(), "a summary line missing numbers");
}

#[test]
fn command_line() {
    let load = loadgen::Load {
        test: "",
        command: vec!["XADD".into(), "s".into(), "*".into(), "f".into(), "v".into()],
        requests: 10,
        clients: 2,
        pipeline: 4,
        value: 3,
        keyspace: 7,
        threads: 2,
    };
    let args = load.args().join(" ");
    assert_eq!(args, "-n 10 -c 2 -P 4 -d 3 -r 7 --precision 3 --threads 2 XADD s * f v");
    let set = loadgen::Load { test: "set", command: Vec::new(), threads: 1, ..load };
    assert!(set.args().join(" ").ends_with("--precision 3 -t set"));
}
