//! The object pool: items of the generic layer (`cache/`) are constructed
//! objects of one type, made and reset by a [`Recycle`] policy: Bonwick's
//! object cache, beside the byte pool (`buffer/`) on the same machinery.
//!
//! ```text
//!  ObjectPool<T, R>   one class of T; get, stats, trim, reclaim (pool.rs)
//!  Pooled<T, R>       the RAII handle: recycle, then release (pooled.rs)
//!  Recycle            how objects are made and reset; Clear for the
//!                     standard collections, closures for the rest (recycle.rs)
//! ```

mod pool;
mod pooled;
mod recycle;

pub use pool::{ObjectPool, ObjectPoolBuilder};
pub use pooled::Pooled;
pub use recycle::{Clear, Recycle};
