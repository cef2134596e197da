//! The implementations of [`Impl`](crate::Impl): magpool, the allocator
//! baselines (`alloc.rs`) and the peer pools (`pools.rs`), plus the size-class
//! table the peer pools share with magpool's defaults.

mod alloc;
mod pools;

pub use alloc::{Direct, RawBuf, SystemVec};
pub use pools::{
    ArrayQueueStash, LfBuf, LockfreeObjectPool, Magpool, MutexStash, ObjectPool, OpBuf, PoolVec, QueuePool,
    ShardedSlab, SlabBuf, Stash, TlsStash,
};

use magpool::DEFAULT_SIZE_CLASSES;

/// Class index for lengths above the largest class: never pooled.
pub const OVERSIZED: usize = DEFAULT_SIZE_CLASSES.len();

/// The smallest default class that holds `len` (`OVERSIZED` above 16 MiB), in
/// O(1) like magpool's own lookup: the classes are powers of two, so a table
/// indexed by ⌈log2 len⌉ answers.
#[inline]
pub fn class_of(len: usize) -> usize {
    const TABLE: [u8; 65] = {
        let mut t = [OVERSIZED as u8; 65];
        let mut bits = 0;
        while bits < 65 {
            let mut c = 0;
            while c < DEFAULT_SIZE_CLASSES.len() {
                if bits < 64 && (1usize << bits) <= DEFAULT_SIZE_CLASSES[c] {
                    t[bits] = c as u8;
                    break;
                }
                c += 1;
            }
            bits += 1;
        }
        t
    };
    let bits = (usize::BITS - len.saturating_sub(1).leading_zeros()) as usize;
    TABLE[bits] as usize
}

/// Size in bytes of `class` (`len` itself when oversized).
#[inline]
pub fn class_size(class: usize, len: usize) -> usize {
    DEFAULT_SIZE_CLASSES.get(class).copied().unwrap_or(len)
}

/// How many buffers of `class` a bounded peer pool keeps: magpool's default
/// depot limit (128 MiB) in buffers, at most 4096 slots per class.
pub fn retained_per_class(class: usize) -> usize {
    (magpool::DEFAULT_MAX_RETAINED_BYTES / DEFAULT_SIZE_CLASSES[class]).clamp(8, 4096)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{for_each_impl, Impl, Visitor};

    #[test]
    fn classes_match_magpool() {
        let pool = magpool::Pool::new();
        for len in (1..70_000).chain([1 << 20, (1 << 20) + 1, 16 << 20, (16 << 20) + 1]) {
            let c = class_of(len);
            let want = pool.with_capacity(len).capacity();
            let got = if c == OVERSIZED { len } else { DEFAULT_SIZE_CLASSES[c] };
            assert_eq!(got, want, "len {len}");
        }
    }

    struct Check;
    impl Visitor for Check {
        fn visit<I: Impl>(&mut self, imp: &I) {
            for len in [1, 100, 512, 513, 4096, 70_000, 1 << 20] {
                for _ in 0..3 {
                    let mut b = imp.get(len);
                    assert_eq!(b.as_mut().len(), len, "{}", imp.name());
                    assert!(b.as_mut().iter().all(|&x| x == 0), "{} get({len}) is zeroed", imp.name());
                    b.as_mut().fill(0xff);
                }
                let mut w = imp.with_capacity(len);
                assert!(w.as_mut().is_empty());
                I::extend(&mut w, &[7; 64][..len.min(64)]);
                assert_eq!(w.as_mut(), &[7; 64][..len.min(64)], "{}", imp.name());
                let moved = std::thread::scope(|s| s.spawn(move || w.as_mut().len()).join().unwrap());
                assert_eq!(moved, len.min(64));
            }
        }
    }

    #[test]
    fn every_impl_hands_out_what_it_promises() {
        for_each_impl(&mut Check);
    }
}
