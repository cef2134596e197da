//! The generic layer's files that the models drive, at the paths they have
//! in magpool (`crate::cache::…`), so that their `use` lines resolve here too.

#[path = "../../../src/cache/counters.rs"]
pub(crate) mod counters;
#[path = "../../../src/cache/depot.rs"]
pub(crate) mod depot;
#[path = "../../../src/cache/exchange.rs"]
pub(crate) mod exchange;
#[path = "../../../src/cache/magazine.rs"]
pub(crate) mod magazine;
#[path = "../../../src/cache/owner.rs"]
pub(crate) mod owner;
#[path = "../../../src/cache/slots.rs"]
pub(crate) mod slots;
#[path = "../../../src/cache/stack.rs"]
pub(crate) mod stack;
#[path = "../../../src/cache/thread_cache.rs"]
pub(crate) mod thread_cache;
