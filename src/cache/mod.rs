//! The generic layer: moves opaque items between per-thread caches and a
//! shared depot. Nothing here knows what an item is; the pools above
//! (`buffer/`, the byte pool) give items a meaning, a class and a weight.
//!
//! ```text
//!  Caches<T>        one pool's layer: slots, depot, shared counters,
//!   │               reclaim (caches.rs)
//!   ├─ Slots        one slot per thread that used the pool (slots.rs)
//!   │   ├─ Owner    who may touch the cache: owner or reclaimer (owner.rs)
//!   │   └─ ThreadCache   per class: loaded + previous Magazine, a spare,
//!   │                    counters (thread_cache.rs, magazine.rs, counters.rs)
//!   │                    exchanges with the depot (exchange.rs)
//!   └─ Depot        per class: lock-free stacks of full and empty magazines
//!                   on crossbeam-epoch (depot.rs, stack.rs)
//!  local.rs         thread serials, the thread's access flag and slot hint,
//!                   the thread-exit hook, the registry of live pools
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
//! - **Bounded.** One thread's magazines, all classes together, weigh at
//!   most the pool's budget; the depot at most its limit.
//! - **Exit flush.** When a thread exits, what it caches goes to the depot
//!   and its slot is free for the next thread.
//! - **Reclaim.** What the depot did not need since the last reclaim, and
//!   the caches of threads idle since then, go back to the allocator.
//! - **No re-entry.** No item is made or dropped, and no allocator called,
//!   while a cache's cell is borrowed.
//!
//! Dependencies point one way: the pools use this layer, this layer uses
//! `sync.rs`, and nothing here names a pool.

mod caches;
mod counters;
mod depot;
mod exchange;
pub(crate) mod local;
mod magazine;
mod owner;
pub(crate) mod reclaim;
mod slots;
mod stack;
mod thread_cache;

pub(crate) use caches::Caches;
#[cfg(test)]
pub(crate) use counters::ClassCounters;
pub(crate) use counters::Reading;
pub(crate) use local::LivePool;
pub(crate) use thread_cache::ClassSpec;
