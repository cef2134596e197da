//! magpool's cache/depot machinery, compiled from the crate's own sources so
//! that loom models can drive it directly.
//!
//! The models live in `tests/`; run them with
//! `RUSTFLAGS="--cfg loom --cfg crossbeam_loom" cargo test -p loom-tests --release`.
//! The modules below are the very files in `../src`: no copy to drift. Only the
//! machinery that loom checks is included (no `Pool`, whose per-thread lookup
//! goes through the `thread_local` crate, which loom cannot see).
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(dead_code, unreachable_pub)] // the included modules are written for magpool's own use

#[path = "../../src/depot.rs"]
mod depot;
#[path = "../../src/magazine.rs"]
mod magazine;
#[path = "../../src/stats.rs"]
mod stats;
#[path = "../../src/sync.rs"]
mod sync;
#[path = "../../src/thread_cache.rs"]
mod thread_cache;
