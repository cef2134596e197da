//! The server: a tokio multi-threaded runtime accepting connections on a
//! loopback (or any) address, the writer thread, and the state they share.
//! [`start`] returns a [`Running`] server that the command line and the
//! tests stop the same way.
//!
//! # Invariants
//!
//! - Every runtime worker thread and the writer thread are armed for the
//!   counting allocator: `allocator_calls` in `INFO` is the server's own.
//! - At most `max_clients` connections are served; one more gets Redis'
//!   error and is closed.
//! - [`Running::stop`] stops accepting, cancels the connections, lets the
//!   writer thread append what it was sent, and joins it: afterwards no
//!   buffer of the server is held anywhere.
//!
//! Used by `main.rs` (`serve`) and by the tests.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, Notify};

use crate::bufs::Buffers;
use crate::conn;
use crate::counting;
use crate::netbuf::{self, Mode};
use crate::store::Store;
use crate::writer::{self, Append, WriterConfig};

/// How a server runs.
#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    /// Where to listen (port 0: the kernel picks).
    pub(crate) addr: SocketAddr,
    /// Where the logs go (`kv/`, `stream-NNN/`).
    pub(crate) dir: PathBuf,
    /// The most bytes one request may take; longer ones are refused
    /// before any of their bytes are awaited.
    pub(crate) max_request: usize,
    /// Connections served at once.
    pub(crate) max_clients: usize,
    /// Streams that may exist.
    pub(crate) max_streams: usize,
    /// Entries one `XRANGE` may return.
    pub(crate) max_range: u64,
    /// Runtime worker threads.
    pub(crate) workers: usize,
    /// Batching and log layout.
    pub(crate) writer: WriterConfig,
}

/// Records in flight from the connections to the writer thread.
const APPEND_QUEUE: usize = 4096;

/// What every connection shares.
pub(crate) struct Shared<M: Mode> {
    /// Where buffers come from.
    pub(crate) mode: M,
    /// The logs and maps.
    pub(crate) store: Arc<Store<M::Store>>,
    /// To the writer thread.
    pub(crate) appends: mpsc::Sender<Append<StoreBuf<M>>>,
    /// The configuration.
    pub(crate) config: ServerConfig,
    /// Requests executed.
    pub(crate) commands: AtomicU64,
    /// Connections open now.
    pub(crate) clients: AtomicUsize,
}

/// The storage buffer of mode `M`.
pub(crate) type StoreBuf<M> = <<M as Mode>::Store as Buffers>::Buf<'static>;

/// A server that is running; [`stop`](Running::stop) it (dropping it stops
/// it too).
pub(crate) struct Running<M: Mode> {
    addr: SocketAddr,
    shared: Option<Arc<Shared<M>>>,
    runtime: Option<Runtime>,
    stop: Arc<Notify>,
    writer: Option<JoinHandle<()>>,
}

/// Starts a server in `mode`: binds, starts the writer thread and the
/// runtime, and returns once it accepts connections.
///
/// # Errors
///
/// When the address cannot be bound or a thread cannot be started.
pub(crate) fn start<M: Mode>(mode: M, config: ServerConfig) -> io::Result<Running<M>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers.max(1))
        .thread_name("broker-worker")
        .on_thread_start(counting::arm)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(TcpListener::bind(config.addr))?;
    let addr = listener.local_addr()?;
    let config = ServerConfig { addr, ..config };
    let store = Arc::new(Store::new(&config.dir, mode.store(), config.max_streams));
    let (appends, rx) = mpsc::channel(APPEND_QUEUE);
    let writer = {
        let (store, cfg) = (store.clone(), config.writer);
        std::thread::Builder::new().name("broker-writer".into()).spawn(move || writer::run(store, rx, cfg))?
    };
    let shared =
        Arc::new(Shared { mode, store, appends, config, commands: AtomicU64::new(0), clients: AtomicUsize::new(0) });
    let stop = Arc::new(Notify::new());
    runtime.spawn(accept_loop(listener, shared.clone(), stop.clone()));
    Ok(Running { addr, shared: Some(shared), runtime: Some(runtime), stop, writer: Some(writer) })
}

impl<M: Mode> Running<M> {
    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, cancels every connection, waits for the writer
    /// thread to append what it holds.
    #[cfg_attr(not(test), allow(dead_code, reason = "the tests stop their servers; `serve` runs until killed"))]
    pub(crate) fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.notify_one();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
        drop(self.shared.take()); // the last sender to the writer thread
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl<M: Mode> Drop for Running<M> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept_loop<M: Mode>(listener: TcpListener, shared: Arc<Shared<M>>, stop: Arc<Notify>) {
    loop {
        let accepted = tokio::select! {
            _ = stop.notified() => return,
            accepted = listener.accept() => accepted,
        };
        let mut socket = match accepted {
            Ok((socket, _)) => socket,
            Err(e) => {
                // Out of descriptors, most likely: wait a little, go on.
                eprintln!("broker: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if shared.clients.fetch_add(1, Relaxed) >= shared.config.max_clients {
            shared.clients.fetch_sub(1, Relaxed);
            tokio::spawn(async move {
                let _ = socket.write_all(b"-ERR max number of clients reached\r\n").await;
            });
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            conn::serve(socket, shared.clone()).await;
            shared.clients.fetch_sub(1, Relaxed);
        });
    }
}

/// The `INFO` text: Redis' `key:value` lines in `# Section`s, with the
/// broker's own numbers and its pools' counters.
pub(crate) fn info<M: Mode>(shared: &Shared<M>) -> String {
    let mut s = String::with_capacity(1024);
    let _ = write!(
        s,
        "# Server\r\nbroker_mode:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\n",
        shared.mode.name(),
        std::process::id(),
        shared.config.addr.port()
    );
    let _ = write!(s, "# Clients\r\nconnected_clients:{}\r\n", shared.clients.load(Relaxed));
    let _ = write!(
        s,
        "# Stats\r\ntotal_commands_processed:{}\r\nallocator_calls:{}\r\n",
        shared.commands.load(Relaxed),
        counting::calls()
    );
    if let Some((net, store)) = netbuf::pool_stats(&shared.mode) {
        s.push_str("# Pools\r\n");
        for (name, st) in [("net", net), ("store", store)] {
            let _ = write!(
                s,
                "{name}_gets:{}\r\n{name}_puts:{}\r\n{name}_in_use:{}\r\n{name}_allocations:{}\r\n\
                 {name}_discarded:{}\r\n{name}_oversized:{}\r\n{name}_retained_bytes:{}\r\n",
                st.gets, st.puts, st.in_use, st.allocations, st.discarded, st.oversized, st.retained_bytes
            );
            for c in st.classes.iter().filter(|c| c.gets > 0) {
                let _ = write!(
                    s,
                    "{name}_class_{}:gets={},allocations={},discarded={},refills={},spills={}\r\n",
                    c.size, c.gets, c.allocations, c.discarded, c.refills, c.spills
                );
            }
        }
    }
    s
}
