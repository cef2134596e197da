//! `--metrics-addr`: serves the magpool run's pool at `/metrics`, in the
//! OpenMetrics text format, for as long as the run lasts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use tiny_http::{Header, Response, Server};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A running `/metrics` endpoint; stops when dropped.
pub(crate) struct Endpoint {
    /// Where it listens (the port the kernel chose, for port 0).
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Starts serving `pool`'s metrics on `addr`.
pub(crate) fn serve(addr: SocketAddr, pool: &magpool::Pool) -> Result<Endpoint, String> {
    let mut registry = Registry::default();
    pool.register_metrics(&mut registry);
    let endpoint = serve_registry(addr, registry)?;
    eprintln!("segment_log: serving the magpool run's metrics at http://{}/metrics", endpoint.addr);
    Ok(endpoint)
}

/// Starts serving everything in `registry` on `addr`.
pub(crate) fn serve_registry(addr: SocketAddr, registry: Registry) -> Result<Endpoint, String> {
    let server = Server::http(addr).map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    let addr = server.server_addr().to_ip().unwrap_or(addr);
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(100)) else { continue };
                let response = if request.url().split('?').next() == Some("/metrics") {
                    let mut body = String::new();
                    encode(&mut body, &registry).expect("encoding into a String cannot fail");
                    let header = Header::from_bytes("Content-Type", OPENMETRICS).expect("an ASCII header");
                    Response::from_string(body).with_header(header)
                } else {
                    Response::from_string("metrics are at /metrics\n").with_status_code(404)
                };
                let _ = request.respond(response); // a client that hung up is not our problem
            }
        })
    };
    Ok(Endpoint { addr, stop, thread: Some(thread) })
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
