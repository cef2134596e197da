//! `init_global` after the global pool's first use is an error, and leaves
//! the pool that `magpool::get` created in place. (Its own test binary: the
//! global pool is the process's.)

use magpool::{Error, Pool, DEFAULT_SIZE_CLASSES};

#[test]
fn init_global_after_first_use() {
    drop(magpool::get(10));
    let err = magpool::init_global(Pool::builder().size_classes([64])).unwrap_err();
    assert_eq!(err, Error::GlobalAlreadyInitialized);
    assert_eq!(magpool::global().size_classes(), &DEFAULT_SIZE_CLASSES);
    assert_eq!(magpool::get(10).capacity(), 512);
}
