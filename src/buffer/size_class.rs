//! The class table: which class serves a length, in a few instructions.
//!
//! # Invariants
//!
//! - `sizes[..len]` is non-empty, strictly increasing, has at most
//!   [`MAX_CLASSES`] entries, and every size fits an allocation (checked by
//!   the builder); `sizes[len..]` are `usize::MAX`, so the lookup's scan stops
//!   at `len` with no bounds check of its own.
//! - `first[b]` is the index of the first class that can hold some length in
//!   the power-of-two bucket `b`, that is lengths in `(2^(b-1), 2^b]`; it is
//!   `sizes.len()` (oversized) when no class can.
//!
//! Pure: no unsafe, no atomics. Called by the pool on every `get`.
#![forbid(unsafe_code)]

/// The most size classes a pool supports.
pub const MAX_CLASSES: usize = 64;

/// Number of power-of-two buckets: lengths 1..=usize::MAX need 0..=64 bits.
const BUCKETS: usize = usize::BITS as usize + 1;

/// A validated, sorted table of size classes with an O(1) lookup, held
/// inline (no pointer to follow: a pool keeps it in its handle, so a get
/// reaches it with no dependent load).
#[derive(Clone, Debug)]
pub(crate) struct SizeClasses {
    /// `first[b]`: first class index worth checking for a length in bucket `b`.
    first: [u8; BUCKETS],
    /// Number of classes.
    len: u8,
    /// Class sizes in bytes, strictly increasing, then `usize::MAX`.
    sizes: [usize; MAX_CLASSES + 1],
}

impl SizeClasses {
    /// Builds the lookup table. `sizes` must already be validated.
    pub(crate) fn new(sizes: &[usize]) -> Self {
        debug_assert!(!sizes.is_empty() && sizes.len() <= MAX_CLASSES);
        debug_assert!(sizes.windows(2).all(|w| w[0] < w[1]) && sizes[0] > 0);
        let mut first = [0u8; BUCKETS];
        for (b, slot) in first.iter_mut().enumerate() {
            // The smallest length in bucket b: 1 for b == 0, else 2^(b-1) + 1.
            let lowest = if b == 0 { 1 } else { (1usize << (b - 1)) + 1 };
            let index = sizes.iter().position(|&s| s >= lowest).unwrap_or(sizes.len());
            *slot = index as u8; // MAX_CLASSES < 256
        }
        let mut table = [usize::MAX; MAX_CLASSES + 1];
        table[..sizes.len()].copy_from_slice(sizes);
        SizeClasses { first, len: sizes.len() as u8, sizes: table }
    }

    /// Class sizes in bytes, smallest first.
    #[inline]
    pub(crate) fn sizes(&self) -> &[usize] {
        &self.sizes[..self.len()]
    }

    /// Number of classes; also the index that means "oversized".
    #[inline]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Size of class `index` in bytes.
    #[inline]
    pub(crate) fn size(&self, index: usize) -> usize {
        self.sizes[index]
    }

    /// Index of the smallest class that holds `len` bytes, or [`len`](Self::len)
    /// when none does (oversized). `len == 0` maps to [`len`](Self::len) too:
    /// an empty buffer needs no block, and the pool's slow path makes none.
    ///
    /// Cost: one `lzcnt`, one table load, and for non-power-of-two class lists
    /// a short scan within one power-of-two bucket.
    #[inline]
    pub(crate) fn class_of(&self, len: usize) -> usize {
        // `len - 1` wraps for 0 into the top bucket, which no class reaches
        // (classes are below isize::MAX): 0 maps to "no class" for free.
        let bucket = (usize::BITS - len.wrapping_sub(1).leading_zeros()) as usize;
        let mut index = self.first[bucket] as usize;
        // Stops at `len()` at the latest: the sentinel is `usize::MAX`.
        while self.sizes[index] < len {
            index += 1;
        }
        index
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn naive(sizes: &[usize], len: usize) -> usize {
        match len {
            0 => sizes.len(),
            _ => sizes.iter().position(|&s| s >= len).unwrap_or(sizes.len()),
        }
    }

    fn check(sizes: &[usize]) {
        let table = SizeClasses::new(sizes);
        let mut probes = vec![0, 1, 2, 3, usize::MAX, usize::MAX - 1, isize::MAX as usize];
        for &s in sizes {
            probes.extend([s - 1, s, s + 1]);
        }
        let bits =
            if cfg!(miri) { (0..usize::BITS).step_by(7).collect::<Vec<_>>() } else { (0..usize::BITS).collect() };
        for b in bits {
            let p = 1usize << b;
            probes.extend([p - 1, p, p.wrapping_add(1)]);
        }
        for len in probes {
            assert_eq!(table.class_of(len), naive(sizes, len), "len {len} in {sizes:?}");
        }
    }

    #[test]
    fn default_classes() {
        check(&[512, 1024, 4096, 16384, 65536, 262144, 1 << 20, 4 << 20, 16 << 20]);
    }

    #[test]
    fn odd_classes() {
        check(&[1]);
        check(&[3, 5, 6, 7, 100, 1000, 1001, 3000, 4095, 4097]);
        check(&[usize::MAX / 4]);
        let dense: Vec<usize> = (1..=MAX_CLASSES).collect();
        check(&dense);
    }

    #[test]
    fn exhaustive_small() {
        // Every class list drawn from subsets of 1..=12 agrees with a linear scan
        // (under miri, a strided sample: the table logic has no unsafe).
        let step = if cfg!(miri) { 97 } else { 1 };
        for mask in (1u32..(1 << 12)).step_by(step) {
            let sizes: Vec<usize> = (0..12).filter(|b| mask & (1 << b) != 0).map(|b| b + 1).collect();
            let table = SizeClasses::new(&sizes);
            for len in 0..20 {
                assert_eq!(table.class_of(len), naive(&sizes, len));
            }
        }
    }
}
