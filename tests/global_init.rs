//! `init_global` before the global pool's first use: it configures the pool
//! every later `magpool::get` uses, and a second call says the pool exists.
//! (One test per file: the global pool is the process's.)

use magpool::{Error, Pool};

#[test]
fn init_global_before_first_use() {
    let bad = magpool::init_global(Pool::builder().size_classes([]));
    assert_eq!(bad.unwrap_err(), Error::NoSizeClasses, "a bad builder is its own error, and sets nothing");
    let pool = magpool::init_global(Pool::builder().size_classes([1024, 8192]).max_retained_bytes(1 << 20)).unwrap();
    assert!(std::ptr::eq(pool, magpool::global()));
    let buf = magpool::get(2000);
    assert_eq!(buf.capacity(), 8192, "magpool::get uses the configured classes");
    drop(buf);
    let again = magpool::init_global(Pool::builder()).unwrap_err();
    assert_eq!(again, Error::GlobalAlreadyInitialized);
    assert!(again.to_string().contains("init_global must run before"), "{again}");
    assert_eq!(magpool::global().size_classes(), &[1024, 8192], "the existing pool is unchanged");
    assert_eq!(magpool::global().stats().gets, 1);
}
