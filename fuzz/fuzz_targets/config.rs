//! `config`: arbitrary builder input. `build()` returns `Ok` or an `Err` that
//! names the problem, never panics; every `Ok` pool serves gets and releases
//! of arbitrary sizes, including each class's edges, with exact counters.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use magpool::{Error, Pool};

/// Classes and requests above this are clamped so the fuzzer stays within
/// its memory limit (validation of huge classes is still reached below).
const MAX_REAL: usize = 1 << 20;

#[derive(Arbitrary, Debug)]
struct Input {
    classes: Vec<usize>,
    magazine_capacity: usize,
    magazine_bytes: usize,
    zero_on_release: bool,
    max_retained_bytes: usize,
    lens: Vec<u32>,
}

fn expected_error(input: &Input) -> Option<Error> {
    let c = &input.classes;
    if c.is_empty() {
        return Some(Error::NoSizeClasses);
    }
    for (index, &size) in c.iter().enumerate() {
        if size == 0 {
            return Some(Error::ZeroSizeClass { index });
        }
        if size > isize::MAX as usize - 15 {
            return Some(Error::SizeClassTooLarge { size });
        }
        if index > 0 && size == c[index - 1] {
            return Some(Error::DuplicateSizeClass { size });
        }
        if index > 0 && size < c[index - 1] {
            return Some(Error::UnsortedSizeClasses { index, previous: c[index - 1], size });
        }
    }
    if c.len() > magpool::MAX_CLASSES {
        return Some(Error::TooManySizeClasses { count: c.len(), max: magpool::MAX_CLASSES });
    }
    match input.magazine_capacity {
        0 => Some(Error::ZeroMagazineCapacity),
        n if n > magpool::MAX_MAGAZINE_CAPACITY => {
            Some(Error::MagazineCapacityTooLarge { capacity: n, max: magpool::MAX_MAGAZINE_CAPACITY })
        }
        _ if input.magazine_bytes == 0 => Some(Error::ZeroMagazineBytes),
        _ => None,
    }
}

fn exercise(pool: &Pool, lens: &[u32]) {
    let classes = pool.size_classes().to_vec();
    let edges = classes.iter().flat_map(|&c| [c - 1, c, c.saturating_add(1)]);
    let lens = edges.chain(lens.iter().map(|&l| l as usize)).filter(|&l| l <= MAX_REAL);
    let mut held = Vec::new();
    let mut expected = 0u64;
    for (i, len) in lens.enumerate() {
        let buf = pool.get(len);
        assert_eq!(buf.len(), len);
        match classes.iter().find(|&&c| c >= len) {
            _ if len == 0 => assert_eq!(buf.capacity(), 0),
            Some(&c) => assert_eq!(buf.capacity(), c),
            None => assert!(buf.is_oversized() && buf.capacity() == len),
        }
        if pool.zero_on_release() {
            assert!(buf.iter().all(|&b| b == 0));
        }
        expected += u64::from(len > 0);
        if i % 3 == 0 {
            held.push(buf);
        }
    }
    let s = pool.stats();
    let in_use = held.iter().filter(|b| b.capacity() > 0).count() as u64; // get(0) is never counted
    assert_eq!((s.gets, s.in_use), (expected, in_use));
    drop(held);
    assert_eq!(pool.stats().in_use, 0);
}

fuzz_target!(|input: Input| {
    let builder = Pool::builder()
        .size_classes(input.classes.iter().copied())
        .magazine_capacity(input.magazine_capacity)
        .magazine_bytes(input.magazine_bytes)
        .zero_on_release(input.zero_on_release)
        .max_retained_bytes(input.max_retained_bytes);
    match (builder.build(), expected_error(&input)) {
        (Ok(pool), None) => {
            if pool.size_classes().last().is_some_and(|&c| c <= MAX_REAL) {
                exercise(&pool, &input.lens);
            }
        }
        (Err(e), Some(expected)) => {
            assert_eq!(e, expected);
            assert!(!e.to_string().is_empty());
        }
        (got, expected) => panic!("build gave {got:?}, expected {expected:?} for {input:?}"),
    }
});
