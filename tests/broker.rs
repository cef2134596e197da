//! The broker example (`examples/broker/`) through real loopback sockets:
//! values written then read back byte for byte (both buffer modes), stream
//! ids from many concurrent writers dense and unique, pipelined requests
//! answered in order, and, after the clients leave, every network buffer
//! back in its pool while the server still answers. Every test is bounded:
//! fixed request counts, socket timeouts of 10 s.
#![cfg(unix)]

// The example's own files, included by path (one copy of the code).
#[allow(dead_code)]
#[path = "../examples/segment_log/bufs.rs"]
mod bufs;
#[allow(dead_code)]
#[path = "../examples/segment_log/codec.rs"]
mod codec;
#[allow(dead_code)]
#[path = "../examples/broker/commands.rs"]
mod commands;
#[allow(dead_code)]
#[path = "../examples/broker/conn.rs"]
mod conn;
#[allow(dead_code)]
#[path = "../examples/segment_log/counting.rs"]
mod counting;
#[allow(dead_code)]
#[path = "../examples/segment_log/index.rs"]
mod index;
#[allow(dead_code)]
#[path = "../examples/broker/netbuf.rs"]
mod netbuf;
#[allow(dead_code)]
#[path = "../examples/segment_log/reader.rs"]
mod reader;
#[allow(dead_code)]
#[path = "../examples/broker/resp.rs"]
mod resp;
#[allow(dead_code)]
#[path = "../examples/segment_log/segment.rs"]
mod segment;
#[allow(dead_code)]
#[path = "../examples/broker/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "../examples/broker/store.rs"]
mod store;
#[allow(dead_code)]
#[path = "../examples/broker/writer.rs"]
mod writer;

mod broker_support;

use std::collections::HashSet;

use broker_support::{assert_idle, encode, pattern, plain, pooled, Client, Reply, TestServer};
use netbuf::Mode;

/// Value sizes from empty to past the 1 MiB class, across class edges.
const SIZES: [usize; 10] = [0, 1, 100, 511, 512, 4097, 8704, 70_000, 1 << 20, (1 << 20) + 3];

/// SETs every size under its own key, then GETs each back, on two
/// connections; values hold every byte value, CR and LF included.
fn round_trip<M: Mode>(server: &TestServer<M>) {
    let mut writer = Client::connect(server.addr);
    for (i, &n) in SIZES.iter().enumerate() {
        let key = format!("key-{i}");
        assert_eq!(writer.call(&[b"SET", key.as_bytes(), &pattern(n, i as u8)]), Reply::ok(), "SET of {n} bytes");
    }
    let mut reader = Client::connect(server.addr);
    for (i, &n) in SIZES.iter().enumerate().rev() {
        let key = format!("key-{i}");
        let got = reader.call(&[b"GET", key.as_bytes()]);
        assert!(got == Reply::bulk(&pattern(n, i as u8)), "GET of the {n}-byte value differs");
    }
    // Overwrite one, read it on the writer's connection: the last SET wins.
    assert_eq!(writer.call(&[b"SET", b"key-3", b"newer"]), Reply::ok());
    assert_eq!(writer.call(&[b"GET", b"key-3"]), Reply::bulk(b"newer"));
    assert_eq!(reader.call(&[b"GET", b"missing"]), Reply::Bulk(None));
}

#[test]
fn round_trip_magpool() {
    let (server, mode) = pooled(4 << 20);
    round_trip(&server);
    assert_idle(&server, &mode);
    let store = mode.store.stats();
    assert!(store.gets > 0 && store.puts > 0, "records and fetches came from the store pool: {store:?}");
    server.running.stop();
}

#[test]
fn round_trip_bytesmut() {
    let server = plain(4 << 20);
    round_trip(&server);
    server.running.stop();
}

/// A log of many small batches and several segments (1 MiB each), read
/// back through the indexes in full and by range.
#[test]
fn streams_read_back_across_segments() {
    let (server, mode) = pooled(4 << 20);
    let mut client = Client::connect(server.addr);
    let n = 300;
    for i in 0..n {
        let value = pattern(5_000 + i % 7, i as u8);
        let reply = client.call(&[b"XADD", b"s", b"*", b"seq", i.to_string().as_bytes(), b"body", &value]);
        assert_eq!(reply, Reply::bulk(format!("{}-0", i + 1).as_bytes()), "entry {i}");
    }
    assert_eq!(client.call(&[b"XLEN", b"s"]), Reply::Int(n as i64));
    let Reply::Array(all) = client.call(&[b"XRANGE", b"s", b"-", b"+"]) else { panic!("XRANGE gives an array") };
    assert_eq!(all.len(), n);
    for (i, entry) in all.iter().enumerate() {
        let want = Reply::Array(vec![
            Reply::bulk(format!("{}-0", i + 1).as_bytes()),
            Reply::Array(vec![
                Reply::bulk(b"seq"),
                Reply::bulk(i.to_string().as_bytes()),
                Reply::bulk(b"body"),
                Reply::bulk(&pattern(5_000 + i % 7, i as u8)),
            ]),
        ]);
        assert!(entry == &want, "entry {i} read back differs");
    }
    let Reply::Array(some) = client.call(&[b"XRANGE", b"s", b"100", b"200-5", b"COUNT", b"3"]) else { panic!() };
    let ids: Vec<_> = some.iter().map(|e| if let Reply::Array(e) = e { e[0].clone() } else { panic!() }).collect();
    assert_eq!(ids, [Reply::bulk(b"100-0"), Reply::bulk(b"101-0"), Reply::bulk(b"102-0")]);
    assert_eq!(client.call(&[b"XRANGE", b"s", b"(1", b"+"]), Reply::Error(invalid_id()));
    assert_eq!(client.call(&[b"XRANGE", b"nothing", b"-", b"+"]), Reply::Array(vec![]));
    drop(client);
    assert_idle(&server, &mode);
    server.running.stop();
}

fn invalid_id() -> String {
    "ERR Invalid stream ID specified as stream command argument".into()
}

/// 8 connections, each on its own thread, XADD 250 entries to one stream:
/// the ids they get back are exactly 1..=2000, each connection's rising,
/// and every entry reads back with the payload its writer sent.
#[test]
fn concurrent_writers_get_dense_unique_ids() {
    let (server, mode) = pooled(1 << 20);
    let (writers, per) = (8usize, 250usize);
    let addr = server.addr;
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut ids = Vec::with_capacity(per);
                for i in 0..per {
                    let payload = format!("writer {w} entry {i}");
                    let Reply::Bulk(Some(id)) = client.call(&[b"XADD", b"shared", b"*", b"p", payload.as_bytes()])
                    else {
                        panic!("XADD replies with the id")
                    };
                    let id = String::from_utf8(id).unwrap();
                    let ms: u64 = id.strip_suffix("-0").expect("ids end in -0").parse().unwrap();
                    ids.push((ms, payload));
                }
                ids
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        let ids = t.join().unwrap();
        assert!(ids.windows(2).all(|w| w[0].0 < w[1].0), "one connection's ids rise");
        all.extend(ids);
    }
    let unique: HashSet<u64> = all.iter().map(|(ms, _)| *ms).collect();
    assert_eq!(unique.len(), writers * per, "unique");
    assert_eq!(unique, (1..=(writers * per) as u64).collect(), "dense: exactly 1..=n");
    let mut client = Client::connect(addr);
    for (ms, payload) in all.iter().step_by(37) {
        let id = format!("{ms}-0");
        let got = client.call(&[b"XRANGE", b"shared", id.as_bytes(), id.as_bytes()]);
        let want = Reply::Array(vec![Reply::Array(vec![
            Reply::bulk(id.as_bytes()),
            Reply::Array(vec![Reply::bulk(b"p"), Reply::bulk(payload.as_bytes())]),
        ])]);
        assert_eq!(got, want, "entry {id}");
    }
    drop(client);
    assert_idle(&server, &mode);
    server.running.stop();
}

/// 300 requests of every kind sent in one write: 300 replies, in order.
#[test]
fn pipelined_requests_answered_in_order() {
    let (server, mode) = pooled(4 << 20);
    let mut client = Client::connect(server.addr);
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for i in 0..60usize {
        let key = format!("p{}", i % 7);
        let value = pattern(i * 97 % 3000, i as u8);
        requests.extend(encode(&[b"SET", key.as_bytes(), &value]));
        expected.push(Reply::ok());
        requests.extend(encode(&[b"GET", key.as_bytes()]));
        expected.push(Reply::bulk(&value)); // sees the SET just before it
        requests.extend(encode(&[b"XADD", b"ps", b"*", b"i", i.to_string().as_bytes()]));
        expected.push(Reply::bulk(format!("{}-0", i + 1).as_bytes()));
        requests.extend(encode(&[b"ECHO", i.to_string().as_bytes()]));
        expected.push(Reply::bulk(i.to_string().as_bytes()));
        requests.extend(b"PING\r\n"); // inline, as telnet sends it
        expected.push(Reply::Simple("PONG".into()));
    }
    client.send_raw(&requests);
    for (i, want) in expected.iter().enumerate() {
        let got = client.reply().unwrap();
        assert!(&got == want, "reply {i}: got {got:?}, want {want:?}");
    }
    assert_eq!(client.call(&[b"XLEN", b"ps"]), Reply::Int(60));
    drop(client);
    assert_idle(&server, &mode);
    server.running.stop();
}

/// What `redis-benchmark` and `redis-cli` ask before they start.
#[test]
fn client_handshakes() {
    let (server, mode) = pooled(1 << 20);
    let mut client = Client::connect(server.addr);
    let save = Reply::Array(vec![Reply::bulk(b"save"), Reply::bulk(b"")]);
    assert_eq!(client.call(&[b"CONFIG", b"GET", b"save"]), save);
    let appendonly = Reply::Array(vec![Reply::bulk(b"appendonly"), Reply::bulk(b"no")]);
    assert_eq!(client.call(&[b"config", b"get", b"appendonly"]), appendonly);
    assert_eq!(client.call(&[b"COMMAND", b"DOCS"]), Reply::Array(vec![]));
    let Reply::Bulk(Some(info)) = client.call(&[b"INFO"]) else { panic!("INFO is a bulk string") };
    let info = String::from_utf8(info).unwrap();
    assert!(info.contains("broker_mode:magpool") && info.contains("net_in_use:"), "{info}");
    assert_eq!(client.call(&[b"QUIT"]), Reply::ok());
    assert!(client.closed_by_server(), "QUIT closes");
    assert_idle(&server, &mode);
    server.running.stop();
}
