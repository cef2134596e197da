//! `sizes`: arbitrary lengths (0, class edges, huge, `usize::MAX`) through
//! `try_get`, `try_with_capacity` and `get` on the default and a custom pool.
//! Each call returns `Err` or a buffer of exactly the right length and class;
//! `try_*` never panics; the pool's counters stay exact throughout.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use magpool::{Error, Pool};

/// Larger successful allocations would trip libFuzzer's malloc limit: such
/// sizes are only tried where they must fail (past `isize::MAX`).
const MAX_REAL: usize = 64 << 20;

#[derive(Arbitrary, Debug)]
enum Len {
    Small(u16),
    Edge { class: u8, delta: i8 },
    Any(usize),
    Huge { below_max: u16 },
}

fn custom() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::builder().size_classes([3, 100, 1000, 65537]).magazine_capacity(3).build().unwrap())
}

fn resolve(pool: &Pool, len: &Len) -> usize {
    match *len {
        Len::Small(n) => n as usize,
        Len::Edge { class, delta } => {
            let classes = pool.size_classes();
            classes[class as usize % classes.len()].saturating_add_signed(delta as isize)
        }
        Len::Any(n) => n,
        Len::Huge { below_max } => usize::MAX - below_max as usize,
    }
}

fn check(pool: &Pool, len: usize, with_capacity: bool) {
    let before = pool.stats();
    let result = if with_capacity { pool.try_with_capacity(len) } else { pool.try_get(len) };
    match result {
        Ok(buf) => {
            let expected_len = if with_capacity { 0 } else { len };
            assert_eq!(buf.len(), expected_len);
            let class = pool.size_classes().iter().copied().find(|&c| c >= len);
            match (len, class) {
                (0, _) => assert_eq!(buf.capacity(), 0),
                (_, Some(c)) => assert_eq!((buf.capacity(), buf.is_oversized()), (c, false)),
                (_, None) => assert_eq!((buf.capacity(), buf.is_oversized()), (len, true)),
            }
            assert!(buf.iter().all(|&b| b == 0), "a fresh or reused buffer is zeroed");
            let counted = u64::from(len > 0);
            assert_eq!(pool.stats().gets, before.gets + counted);
            drop(buf);
            assert_eq!(pool.stats().puts, before.puts + counted);
        }
        Err(Error::CapacityOverflow { requested }) => {
            assert_eq!(requested, len);
            assert!(len > isize::MAX as usize - 15, "{len} is a possible size");
            assert_eq!(pool.stats(), before, "a refused size leaves the pool as it was");
        }
        Err(e) => panic!("unexpected error for {len}: {e}"),
    }
}

fuzz_target!(|lens: Vec<(bool, bool, Len)>| {
    for (custom_pool, with_capacity, len) in &lens {
        let pool = if *custom_pool { custom() } else { magpool::global() };
        let len = resolve(pool, len);
        if len > MAX_REAL && len <= isize::MAX as usize - 15 {
            continue; // possible, but too large for the fuzzer's memory limit
        }
        check(pool, len, *with_capacity);
        if len <= MAX_REAL {
            // `get` agrees with `try_get` wherever it cannot panic.
            assert_eq!(pool.get(len).len(), len);
        }
    }
});
