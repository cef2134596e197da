//! The broker example against bad input, through real loopback sockets: a
//! bad type byte, bulk lengths over the maximum, negative and absurd array
//! lengths, truncated requests, unknown commands, wrong arities, clients
//! that leave mid-request. Each gets a clear error reply (and, for a
//! protocol error, a closed connection, as Redis does); meanwhile another
//! client keeps being served, no untrusted length is ever allocated, and no
//! buffer is lost: the net pool's `in_use` returns to 0.
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

use std::time::Duration;

use broker_support::{assert_idle, pooled, wait_in_use_zero, Client, Reply};
use netbuf::Pooled;

/// Requests may take at most this much in these tests.
const MAX_REQUEST: usize = 64 << 10;

/// Sends `bytes` on a fresh connection; expects the protocol error
/// `message` and the connection closed. Meanwhile `bystander` still gets
/// its answers.
fn protocol_error(addr: std::net::SocketAddr, bystander: &mut Client, bytes: &[u8], message: &str) {
    let mut client = Client::connect(addr);
    client.send_raw(bytes);
    let want = Reply::Error(format!("ERR Protocol error: {message}"));
    assert_eq!(client.reply().unwrap(), want, "for {:?}", String::from_utf8_lossy(bytes));
    assert!(client.closed_by_server(), "a protocol error closes the connection");
    assert_eq!(bystander.call(&[b"GET", b"kept"]), Reply::bulk(b"value"), "the bystander is still served");
}

fn setup() -> (broker_support::TestServer<Pooled>, Pooled, Client) {
    let (server, mode) = pooled(MAX_REQUEST);
    let mut bystander = Client::connect(server.addr);
    assert_eq!(bystander.call(&[b"SET", b"kept", b"value"]), Reply::ok());
    (server, mode, bystander)
}

/// No request buffer of the net pool ever grew past what `MAX_REQUEST`
/// (plus one read's room) can need: untrusted lengths were not allocated.
fn assert_no_big_buffer(mode: &Pooled) {
    let s = mode.net.stats();
    let big: u64 = s.classes.iter().filter(|c| c.size > 4 * MAX_REQUEST).map(|c| c.gets).sum();
    assert_eq!((big, s.oversized), (0, 0), "a buffer past 256 KiB was handed out: {s:?}");
}

#[test]
fn bad_type_byte() {
    let (server, mode, mut bystander) = setup();
    protocol_error(server.addr, &mut bystander, b"$3\r\nfoo\r\n", "unexpected request type byte '$'");
    protocol_error(server.addr, &mut bystander, b"\x00\x01\x02", "unexpected request type byte '\\x00'");
    protocol_error(server.addr, &mut bystander, b"*1\r\n:5\r\n", "expected '$', got ':'");
    protocol_error(server.addr, &mut bystander, b"*1\r\n$3\r\nfooXY", "bulk string not terminated by CRLF");
    drop(bystander);
    assert_idle(&server, &mode);
    server.running.stop();
}

#[test]
fn lengths_are_checked_before_anything_is_awaited() {
    let (server, mode, mut bystander) = setup();
    let cases: [(&[u8], &str); 8] = [
        (b"*2\r\n$3\r\nGET\r\n$1073741824\r\n", "invalid bulk length"),
        (b"*2\r\n$3\r\nGET\r\n$99999999999999999999999\r\n", "invalid bulk length"),
        (b"*1\r\n$-5\r\n", "invalid bulk length"),
        (b"*1\r\n$abc\r\n", "invalid bulk length"),
        (b"*-1\r\n", "invalid multibulk length"),
        (b"*99999999999\r\n", "invalid multibulk length"),
        (b"*1x\r\n", "invalid multibulk length"),
        // Each length under the maximum, together over it.
        (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$65530\r\n", "request larger than the maximum of 65536 bytes"),
    ];
    for (bytes, message) in cases {
        protocol_error(server.addr, &mut bystander, bytes, message);
    }
    // A count line that never ends.
    protocol_error(server.addr, &mut bystander, &[b'*'; 40], "invalid multibulk length");
    // An inline command past 64 KiB (the maximum here too) with no newline.
    let long = vec![b'a'; MAX_REQUEST + 10];
    protocol_error(server.addr, &mut bystander, &long, "too big inline request");
    drop(bystander);
    assert_idle(&server, &mode);
    assert_no_big_buffer(&mode);
    server.running.stop();
}

#[test]
fn unknown_commands_and_wrong_arities_keep_the_connection() {
    let (server, mode, mut bystander) = setup();
    let mut client = Client::connect(server.addr);
    let unknown = "ERR unknown command 'FLUSHALL', with args beginning with: 'now' ";
    assert_eq!(client.call(&[b"FLUSHALL", b"now"]), Reply::Error(unknown.into()));
    let quoted = "ERR unknown command 'x?y', with args beginning with: ";
    assert_eq!(client.call(&[b"x\ry"]), Reply::Error(quoted.into()), "CR never reaches the reply line");
    let arity = |c: &str| Reply::Error(format!("ERR wrong number of arguments for '{c}' command"));
    assert_eq!(client.call(&[b"GET"]), arity("get"));
    assert_eq!(client.call(&[b"SET", b"k"]), arity("set"));
    assert_eq!(client.call(&[b"XADD", b"s", b"*", b"f"]), arity("xadd"));
    assert!(matches!(client.call(&[b"SET", b"k", b"v", b"EX", b"10"]), Reply::Error(e) if e.starts_with("ERR syntax")));
    assert!(matches!(client.call(&[b"XADD", b"s", b"5-0", b"f", b"v"]), Reply::Error(_)), "ids are assigned");
    let wrongtype = Reply::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into());
    assert_eq!(client.call(&[b"XADD", b"kept", b"*", b"f", b"v"]), wrongtype);
    assert_eq!(client.call(&[b"XADD", b"st", b"*", b"f", b"v"]), Reply::bulk(b"1-0"));
    assert_eq!(client.call(&[b"GET", b"st"]), wrongtype);
    assert_eq!(client.call(&[b"SET", b"st", b"v"]), wrongtype);
    let too_many = client.call(&[b"XRANGE", b"st", b"-", b"+", b"COUNT", b"x"]);
    assert_eq!(too_many, Reply::Error("ERR value is not an integer or out of range".into()));
    // All of it on one connection, which still works.
    assert_eq!(client.call(&[b"PING"]), Reply::Simple("PONG".into()));
    assert_eq!(bystander.call(&[b"GET", b"kept"]), Reply::bulk(b"value"));
    drop((client, bystander));
    assert_idle(&server, &mode);
    server.running.stop();
}

#[test]
fn truncated_request_waits_for_the_rest() {
    let (server, mode, mut bystander) = setup();
    let mut client = Client::connect(server.addr);
    client.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc");
    client.read_timeout(Duration::from_millis(200));
    assert!(client.reply().is_err(), "no reply to half a request");
    assert_eq!(bystander.call(&[b"PING"]), Reply::Simple("PONG".into()), "others are served meanwhile");
    client.read_timeout(broker_support::IO_TIMEOUT);
    client.send_raw(b"defghij\r\n");
    assert_eq!(client.reply().unwrap(), Reply::ok());
    assert_eq!(client.call(&[b"GET", b"k"]), Reply::bulk(b"abcdefghij"));
    drop((client, bystander));
    assert_idle(&server, &mode);
    server.running.stop();
}

#[test]
fn clients_that_leave_mid_request_lose_nothing() {
    let (server, mode, mut bystander) = setup();
    for cut in [1, 5, 20, 60_000] {
        let mut client = Client::connect(server.addr);
        // A SET of a 60,000-byte value, cut after `cut` bytes.
        let mut request = b"*3\r\n$3\r\nSET\r\n$4\r\nleft\r\n$60000\r\n".to_vec();
        request.resize(request.len() + 60_000, b'x');
        client.send_raw(&request[..cut]);
        assert_eq!(bystander.call(&[b"PING"]), Reply::Simple("PONG".into()));
        drop(client); // gone mid-request
    }
    // Half-closed after a whole request: answered, then closed.
    let mut client = Client::connect(server.addr);
    client.send(&[b"GET", b"kept"]);
    client.shutdown_write();
    assert_eq!(client.reply().unwrap(), Reply::bulk(b"value"));
    assert!(client.closed_by_server());
    wait_in_use_zero_but(&mode, 2); // the bystander's request and reply buffers
    assert_eq!(bystander.call(&[b"GET", b"left"]), Reply::Bulk(None), "no cut-off SET was applied");
    drop(bystander);
    assert_idle(&server, &mode);
    server.running.stop();
}

/// Waits until the net pool holds exactly `held` buffers out.
fn wait_in_use_zero_but(mode: &Pooled, held: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while mode.net.stats().in_use != held {
        assert!(std::time::Instant::now() < deadline, "net in_use {} != {held}", mode.net.stats().in_use);
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn max_clients_are_turned_away() {
    let mode = Pooled::new();
    let server = broker_support::start(mode, |dir| {
        let mut config = broker_support::config(dir, MAX_REQUEST);
        config.max_clients = 2;
        config
    });
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    assert_eq!(a.call(&[b"PING"]), Reply::Simple("PONG".into()));
    assert_eq!(b.call(&[b"PING"]), Reply::Simple("PONG".into()));
    let mut c = Client::connect(server.addr);
    assert_eq!(c.reply().unwrap(), Reply::Error("ERR max number of clients reached".into()));
    drop((a, c));
    // A place is free again once a client left.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = Client::connect(server.addr);
        d.send(&[b"PING"]);
        if d.reply().unwrap() == Reply::Simple("PONG".into()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no place freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(b);
    wait_in_use_zero(&mode);
    server.running.stop();
}

/// Every proper prefix of valid requests (TCP may cut anywhere) parses as
/// partial, needing more than it has and no more than the whole; the
/// whole parses to its arguments.
#[test]
fn every_prefix_is_partial() {
    let value = vec![b'\n'; 300];
    let requests: [Vec<u8>; 3] = [
        broker_support::encode(&[b"SET", b"key", &value]),
        broker_support::encode(&[b"XADD", b"s", b"*", b"", b"v"]),
        b"PING  hello\r\n".to_vec(),
    ];
    let mut args = Vec::new();
    for request in &requests {
        for cut in 0..request.len() {
            match resp::parse(&request[..cut], MAX_REQUEST, &mut args) {
                Ok(resp::Parsed::Partial { need }) => {
                    assert!(need > cut && need <= request.len(), "cut {cut}: need {need} of {}", request.len());
                }
                other => panic!("cut {cut} of {:?}: {other:?}", String::from_utf8_lossy(request)),
            }
        }
        let whole = resp::parse(request, MAX_REQUEST, &mut args).unwrap();
        assert_eq!(whole, resp::Parsed::Frame { len: request.len() });
    }
    let inline = b"PING  hello\r\n";
    resp::parse(inline, MAX_REQUEST, &mut args).unwrap();
    let words: Vec<&[u8]> = args.iter().map(|r| &inline[r.clone()]).collect();
    assert_eq!(words, [&b"PING"[..], b"hello"]);
}
