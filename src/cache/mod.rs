//! The generic layer: moves opaque items between per-thread caches and a
//! shared depot. Nothing here knows what an item is; the pools above
//! (`buffer/`, the byte pool) give items a meaning, a class and a weight.
//!
//! ```text
//!  Caches<T>        one pool's layer: slots, depot, shared counters (caches.rs)
//!   ├─ Slots        one slot per thread that used the pool (slots.rs)
//!   │   └─ ThreadCache   per class: loaded + previous Magazine, a spare,
//!   │                    counters (thread_cache.rs, magazine.rs, counters.rs)
//!   └─ Depot        per class: lock-free stacks of full and empty magazines
//!                   on crossbeam-epoch (depot.rs, stack.rs)
//!  local.rs         thread serials, the slot hint, the thread-exit hook,
//!                   the registry of live pools
//! ```
//!
//! # What the layer promises
//!
//! - **Owner-only caches.** A thread cache's magazines are touched only by
//!   the thread that owns its slot; a get or release served there takes no
//!   lock and makes no atomic read-modify-write.
//! - **Whole-magazine exchange.** Threads trade with the depot a magazine at
//!   a time (refill, spill); the depot keeps at most its retention limit of
//!   item weight in full magazines and hands back what would exceed it.
//! - **Exit flush.** When a thread exits, what it caches goes to the depot
//!   and its slot is free for the next thread.
//!
//! Dependencies point one way: the pools use this layer, this layer uses
//! `sync.rs`, and nothing here names a pool.

mod caches;
mod counters;
mod depot;
pub(crate) mod local;
mod magazine;
mod slots;
mod stack;
mod thread_cache;

pub(crate) use caches::Caches;
#[cfg(test)]
pub(crate) use counters::ClassCounters;
pub(crate) use counters::Reading;
pub(crate) use local::LivePool;

#[cfg(loom)]
pub(crate) use {depot::Depot, magazine::Magazine, slots::Slots, thread_cache::ThreadCache};
