//! [`Recycle`]: how an object pool makes and resets its objects, and the
//! ready policies: [`Clear`] for the standard collections, and a pair of
//! closures for anything else.
//!
//! Pure: no unsafe, no atomics. Called by the object pool, on the thread
//! that gets (`new_object`) or releases (`recycle`) an object, always outside
//! the pool's owner-only cells.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hash};

/// How an [`ObjectPool`](crate::ObjectPool) makes and resets its objects.
///
/// Both methods run on the calling thread, outside the pool's own state, so
/// they may do anything, including get and release objects of the same pool
/// (or any other). A `recycle` that panics drops the object; the pool stays
/// consistent and counts it as discarded.
pub trait Recycle<T> {
    /// A new object, made when no thread cache or depot has one to reuse.
    fn new_object(&self) -> T;

    /// Makes `object` ready for its next user, on release; returns `false`
    /// to drop it instead of keeping it (for instance, when it grew too large
    /// to be worth keeping).
    fn recycle(&self, object: &mut T) -> bool;
}

/// Closures: `(make, reset)`, where `reset` returns whether to keep the
/// object.
///
/// ```
/// let pool = magpool::ObjectPool::new((
///     || String::with_capacity(64),
///     |s: &mut String| { s.clear(); s.capacity() <= 4096 },
/// ));
/// let mut s = pool.get();
/// s.push_str("reused");
/// ```
impl<T, N, C> Recycle<T> for (N, C)
where
    N: Fn() -> T,
    C: Fn(&mut T) -> bool,
{
    fn new_object(&self) -> T {
        (self.0)()
    }

    fn recycle(&self, object: &mut T) -> bool {
        (self.1)(object)
    }
}

/// The policy for collections: new ones are made with `capacity`, released
/// ones are cleared and kept unless their capacity has grown past
/// `max_capacity` (then they are dropped, so that one outsized batch does
/// not stay in the pool for good).
///
/// Implemented for `Vec`, `VecDeque`, `String`, `HashMap` and `HashSet`.
///
/// ```
/// use magpool::{Clear, ObjectPool, Recycle};
///
/// let pool = ObjectPool::new(Clear::new(16, 1024));
/// let mut batch: magpool::Pooled<'_, Vec<u64>> = pool.get();
/// batch.extend(0..10);
/// assert!(batch.capacity() >= 16);
/// assert!(!Clear::new(0, 8).recycle(&mut vec![0u8; 100]), "too large to keep");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clear {
    /// Capacity of a new collection.
    pub capacity: usize,
    /// Largest capacity a released collection may have and be kept.
    pub max_capacity: usize,
}

impl Clear {
    /// New collections of `capacity`; released ones kept up to `max_capacity`.
    pub const fn new(capacity: usize, max_capacity: usize) -> Self {
        Clear { capacity, max_capacity }
    }
}

impl Default for Clear {
    /// Empty new collections (no allocation until used), kept after use up
    /// to a capacity of 64 Ki elements.
    fn default() -> Self {
        Clear::new(0, 64 << 10)
    }
}

/// Implements [`Recycle`] through `with_capacity`, `clear` and `capacity`.
macro_rules! clear_collection {
    ($(impl<$($p:ident),*> for $t:ty $(where $($w:tt)*)?;)*) => {$(
        impl<$($p),*> Recycle<$t> for Clear $(where $($w)*)? {
            fn new_object(&self) -> $t {
                <$t>::with_capacity(self.capacity)
            }

            fn recycle(&self, object: &mut $t) -> bool {
                object.clear();
                object.capacity() <= self.max_capacity
            }
        }
    )*};
}

clear_collection! {
    impl<T> for Vec<T>;
    impl<T> for VecDeque<T>;
    impl<> for String;
}

impl<K, V, S> Recycle<HashMap<K, V, S>> for Clear
where
    K: Eq + Hash,
    S: BuildHasher + Default,
{
    fn new_object(&self) -> HashMap<K, V, S> {
        HashMap::with_capacity_and_hasher(self.capacity, S::default())
    }

    fn recycle(&self, object: &mut HashMap<K, V, S>) -> bool {
        object.clear();
        object.capacity() <= self.max_capacity
    }
}

impl<T, S> Recycle<HashSet<T, S>> for Clear
where
    T: Eq + Hash,
    S: BuildHasher + Default,
{
    fn new_object(&self) -> HashSet<T, S> {
        HashSet::with_capacity_and_hasher(self.capacity, S::default())
    }

    fn recycle(&self, object: &mut HashSet<T, S>) -> bool {
        object.clear();
        object.capacity() <= self.max_capacity
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn clear_keeps_what_stayed_small() {
        let c = Clear::new(4, 16);
        let mut v: Vec<u8> = c.new_object();
        assert!(v.capacity() >= 4);
        v.extend([1, 2, 3]);
        assert!(c.recycle(&mut v) && v.is_empty());
        v.extend([0; 100]);
        assert!(!c.recycle(&mut v), "grew past the bound");
        let mut m: HashMap<u32, u32> = c.new_object();
        m.insert(1, 2);
        assert!(c.recycle(&mut m) && m.is_empty());
        let mut s: String = c.new_object();
        s.push_str("abc");
        assert!(c.recycle(&mut s) && s.is_empty());
    }

    #[test]
    fn closures() {
        let r = (|| 7u32, |x: &mut u32| *x < 10);
        assert_eq!(r.new_object(), 7);
        assert!(r.recycle(&mut 3) && !r.recycle(&mut 30));
    }
}
