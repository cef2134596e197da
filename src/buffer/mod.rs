//! The byte pool: items of the generic layer (`cache/`) are [`Block`]s of
//! bytes in size classes, handed to users as [`Buf`]s.
//!
//! ```text
//!  Pool        len → class (size_class.rs), then the layer's caches;
//!              zeroing; trim; stats (pool.rs, builder.rs)
//!  Buf         the RAII handle: a Vec-like view of a block (buf.rs);
//!              its traits and I/O (buf_io.rs); `bytes`' BufMut and
//!              freeze into Bytes (bufmut.rs, feature `bytes`)
//!  Block       an owned, aligned allocation and its dirty mark; the only
//!              caller of the global allocator (block.rs)
//! ```
//!
//! [`Block`]: block::Block

pub(crate) mod block;
pub(crate) mod buf;
mod buf_io;
#[cfg(feature = "bytes")]
mod bufmut;
pub(crate) mod builder;
pub(crate) mod pool;
pub(crate) mod size_class;
