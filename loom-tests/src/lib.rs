//! magpool's cache/depot machinery, compiled from the crate's own sources so
//! that loom models can drive it directly.
//!
//! Run the models with
//! `RUSTFLAGS="--cfg loom --cfg crossbeam_loom" cargo test -p loom-tests --release`.
//! The modules below are the very files in `../src/cache` and `../src/sync.rs` (by `#[path]`): no copy to
//! drift, and their `pub(crate)` items are reachable from the models in
//! `src/models/`, which is why the models live in this crate rather than in
//! `tests/`. Only the machinery that loom checks is included: `Pool` finds its
//! per-thread caches through process-wide state (`local.rs`: a registry of
//! live pools, thread serials) that loom cannot reset between executions, so
//! the models drive explicit per-thread caches against a shared depot.
#![cfg(loom)] // nothing to build or test without loom
#![deny(unsafe_op_in_unsafe_fn)]
// The included modules are written for magpool's own use; not all of their
// items are used by the models.
#![allow(dead_code, unreachable_pub)]

mod cache;
#[allow(unused_imports)] // the models need no thread_local!
#[path = "../../src/sync.rs"]
mod sync;

#[cfg(test)]
mod models;
