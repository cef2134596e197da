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

/// Whether RSS says anything here: not under a sanitizer, whose shadow
/// memory and quarantine of freed blocks dwarf the pool (`.ci/run` sets
/// `MAGPOOL_SANITIZER` for those runs).
#[allow(dead_code)] // only the memory tests read RSS
pub(crate) fn rss_meaningful() -> bool {
    let meaningful = std::env::var_os("MAGPOOL_SANITIZER").is_none();
    if !meaningful {
        eprintln!("SKIP the RSS checks: a sanitizer's allocator holds the memory");
    }
    meaningful
}

/// Resident memory of this process, from `/proc/self/status`.
#[allow(dead_code)] // only the memory tests read RSS
pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number");
    kib << 10
}

/// Polls `f` every millisecond until it holds or `limit` passes.
#[allow(dead_code)] // only the reclaim tests wait
pub(crate) fn eventually(limit: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let began = std::time::Instant::now();
    while began.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    f()
}
