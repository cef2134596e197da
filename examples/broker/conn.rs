//! One client connection: a read loop that reads requests into one network
//! buffer with `read_buf`, executes every whole request in it, and sends
//! the round's replies, frozen, to a writer task that writes and drops
//! them.
//!
//! ```text
//! socket ─read_buf─► request buffer ─parse─► Session::execute ─► reply buffer
//!                                                                   │ freeze
//! socket ◄─write_all_buf── writer task (drops the Bytes) ◄─channel──┘
//! ```
//!
//! # Invariants
//!
//! - The request buffer holds at most one partial request after a round,
//!   and grows only to what a request's parsed headers prove it needs,
//!   never past `--max-request` (plus one read's room).
//! - A protocol error is answered, after the replies before it, and ends
//!   the connection, as in Redis. A client that leaves mid-request loses
//!   only that request; every buffer is dropped as the tasks end.
//!
//! Spawned by `server.rs`, once per accepted connection.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::commands::{Flow, Session};
use crate::netbuf::{Mode, NetBuf};
use crate::resp::{self, Parsed};
use crate::server::Shared;

/// A request buffer starts with room for this much.
const REQUEST_START: usize = 16 << 10;
/// Fewest bytes of room a read gets.
const READ_MIN: usize = 16 << 10;
/// An empty request buffer larger than this is given back, for a small one.
const REQUEST_KEEP: usize = 64 << 10;
/// Frozen replies queued for the writer task.
const OUT_QUEUE: usize = 8;

/// Serves `socket` until the client leaves, sends `QUIT`, or breaks the
/// protocol.
pub(crate) async fn serve<M: Mode>(socket: TcpStream, shared: Arc<Shared<M>>) {
    let _ = socket.set_nodelay(true);
    let (mut rd, wr) = socket.into_split();
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let writer = tokio::spawn(write_loop(wr, out_rx));
    let mut session = Session::new(&shared, out_tx);
    let mut req = shared.mode.net(REQUEST_START);
    let mut args = Vec::new();
    loop {
        let (consumed, need, flow) = round(&mut session, &req, &mut args, shared.config.max_request).await;
        req.consume(consumed);
        let mut open = flow == Flow::Continue;
        if open {
            if req.is_empty() && req.capacity() > REQUEST_KEEP {
                req = shared.mode.net(REQUEST_START);
            }
            let room = need.saturating_sub(req.len()).max(READ_MIN);
            if req.capacity() - req.len() < room {
                req.reserve(room);
            }
            // What the client has sent already joins this round's replies:
            // one frozen reply (and one write) for all of it.
            if session.can_coalesce() {
                match rd.try_read_buf(&mut req) {
                    Ok(0) => open = false,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => open = false,
                }
            }
        }
        let sent = session.settle().await && session.flush().await == Flow::Continue;
        if !(open && sent) {
            break;
        }
        match rd.read_buf(&mut req).await {
            Ok(0) | Err(_) => break, // gone, perhaps mid-request: nothing to answer
            Ok(_) => {}
        }
    }
    drop(session); // the last sender: the writer task ends after the queued replies
    let _ = writer.await;
}

/// Executes the whole requests at the start of `req`. Returns the bytes
/// they took, what the partial request after them needs in all (0 if
/// none), and whether to go on.
async fn round<M: Mode>(
    session: &mut Session<'_, M>,
    req: &[u8],
    args: &mut Vec<Range<usize>>,
    max_request: usize,
) -> (usize, usize, Flow) {
    let mut at = 0;
    loop {
        match resp::parse(&req[at..], max_request, args) {
            Ok(Parsed::Frame { len }) => {
                let flow = session.execute(&req[at..at + len], args).await;
                at += len;
                if flow == Flow::Close {
                    return (at, 0, Flow::Close);
                }
            }
            Ok(Parsed::Partial { need }) => return (at, need, Flow::Continue),
            Err(e) => {
                if session.settle().await {
                    session.protocol_error(&e);
                }
                return (at, 0, Flow::Close);
            }
        }
    }
}

/// Writes each frozen reply and drops it here, on this task's thread.
async fn write_loop(mut wr: OwnedWriteHalf, mut replies: mpsc::Receiver<Bytes>) {
    while let Some(mut reply) = replies.recv().await {
        if wr.write_all_buf(&mut reply).await.is_err() {
            break; // the client is gone; the queued replies drop with `replies`
        }
    }
    let _ = wr.shutdown().await;
}
