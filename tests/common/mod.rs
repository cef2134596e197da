//! Helpers shared by the integration tests (`mod common;` in each file).

/// A tiny xorshift generator: seeded, deterministic, allocation-free, so a
/// workload is the same every run and can run inside a counting allocator.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    #[allow(dead_code)] // not every test file draws ranges
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
