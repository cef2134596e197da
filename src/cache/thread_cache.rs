//! [`ThreadCache`]: one thread's magazines for every class of one pool: the
//! owner-only cell, its hot path, and the pure moves the slow paths make
//! inside it. The exchanges with the depot (`exchange.rs`) run outside it.
//!
//! Per class the owner holds a *loaded* and a *previous* magazine, and an
//! empty *spare* (see [`Mags`]). Gets pop the loaded one and releases push
//! onto it (the hot path: a length check and a move). When the loaded
//! magazine is empty (get) or full (release), the slow path first swaps in
//! the previous one ([`swap_pop`](ThreadCache::swap_pop),
//! [`swap_push`](ThreadCache::swap_push)); only when that cannot help does it
//! [`take`](ThreadCache::take) the class's magazines out of the cache, trade
//! with the depot, and [`put`](ThreadCache::put) the result back.
//!
//! # Invariants
//!
//! - **Owner-only.** Only one thread at a time touches `mags`, `cold` and
//!   `charged`: the owner, inside an *owner access* (`caches.rs`), or the
//!   reclaimer once it holds the cache exclusively (`owner.rs`). Each
//!   accessor's first access happens after the previous one's last (the
//!   caller guarantees it; see the `# Safety` sections).
//! - **No user code inside.** Every method that touches those cells makes
//!   only moves of items and magazines: no item is dropped or made and no
//!   allocator is called while a cell is borrowed, so a `Drop` that uses the
//!   pool again, or an allocator, cannot alias a borrow. Debug builds check
//!   that owner accesses never nest (`owner.rs`).
//! - **Budget.** `charged` is the weight of the capacity of every class's
//!   `loaded` and `previous` magazines (`capacity × weight`, summed), and
//!   never exceeds `budget`: since a magazine holds at most its capacity,
//!   the items a thread caches never weigh more than `budget`. The hot path
//!   changes no capacity, so it needs no check; [`put`](ThreadCache::put)
//!   refuses what would exceed it.
//! - Every real magazine of class `c` has a capacity of at least 1; a
//!   placeholder has capacity 0. A class whose spec is not `pooled` is never
//!   cached: its items are made on every get and dropped on every release.
//! - Counters are written only by the owner (plain load/store) and read by
//!   anyone.
//!
//! Called by the layer's front (`caches.rs`), by the exchanges
//! (`exchange.rs`) and by the loom models. Items are opaque.

use std::mem;
use std::ptr::NonNull;

use crate::cache::counters::ClassCounters;
use crate::cache::exchange::{Growth, Out, Taken};
use crate::cache::magazine::Magazine;
use crate::sync::UnsafeCell;

/// What the layer knows of a class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClassSpec {
    /// What one item weighs against the depot's limit and a thread's budget.
    pub(crate) weight: usize,
    /// Magazine capacity a thread starts with; 0: the class is kept in the
    /// depot only (each get and release trades with it directly).
    pub(crate) base: usize,
    /// Most a thread's magazines of this class grow to (`>= base`).
    pub(crate) max: usize,
    /// `false`: never kept at all (items made and dropped: oversized).
    pub(crate) pooled: bool,
}

impl ClassSpec {
    /// A class that is never kept.
    pub(crate) const UNPOOLED: ClassSpec = ClassSpec { weight: 0, base: 0, max: 0, pooled: false };
}

/// One thread's magazines and counters for every class of a pool.
///
/// # Invariants
///
/// See the module docs.
#[derive(Debug)]
pub(crate) struct ThreadCache<T> {
    classes: Box<[ClassCache<T>]>,
    /// Owner-only: the weight of the capacity of every `loaded` and
    /// `previous` magazine held.
    charged: UnsafeCell<usize>,
    /// The most `charged` may be.
    budget: usize,
}

/// `repr(C)` and aligned to 128 bytes (as crossbeam's `CachePadded` on
/// x86_64, whose prefetcher pulls lines in pairs), so that the fields a get or
/// release touches share the first 64-byte line: `mags` (the loaded magazine
/// first), then the `gets` and `puts` counters. The slow paths' state and the
/// other counters follow on the next line; the const assertion below checks it.
#[derive(Debug)]
#[repr(C, align(128))]
struct ClassCache<T> {
    /// Owner-only.
    mags: UnsafeCell<Mags<T>>,
    /// Owner-written, readable by all.
    counters: ClassCounters,
    /// Owner-only: the slow paths' state.
    cold: UnsafeCell<Cold<T>>,
    spec: ClassSpec,
}

/// Bonwick's two magazines of one class, `loaded` first (see [`ClassCache`]).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Mags<T> {
    pub(crate) loaded: Magazine<T>,
    pub(crate) previous: Magazine<T>,
}

/// What the owner's slow paths keep for one class, off the hot line.
#[derive(Debug)]
struct Cold<T> {
    /// Always empty (or a placeholder). A refill keeps the magazine it
    /// emptied here instead of returning it to the depot, and the next spill
    /// takes it instead of fetching an empty one: a thread whose refills and
    /// spills alternate makes one depot operation per exchange, not two. Not
    /// charged: it holds no item.
    spare: Magazine<T>,
    growth: Growth,
}

// The hot fields in one line (loom's cells are larger; its models don't care).
#[cfg(not(loom))]
const _: () = {
    type C = ClassCache<u64>;
    assert!(std::mem::offset_of!(C, mags) == 0 && std::mem::offset_of!(Mags<u64>, loaded) == 0);
    let counter = std::mem::size_of::<crate::cache::counters::Counter>();
    assert!(std::mem::offset_of!(C, counters.gets) + counter <= 64);
    assert!(std::mem::offset_of!(C, counters.puts) + counter <= 64);
};

/// A pointer to a cache's per-class table, for its owner's hot path: the
/// thread's slot hint holds one, so that a get or release reaches the
/// class's magazines without first loading the table's address out of the
/// `ThreadCache` (one dependent load less on every op).
///
/// # Invariants
///
/// Points at the first entry of the `classes` table of a live `ThreadCache`
/// (its `Box<[_]>` never moves); the `unsafe` methods state what else a use
/// needs.
pub(crate) struct Hot<T>(NonNull<ClassCache<T>>);

impl<T> Clone for Hot<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Hot<T> {}

impl<T: Send + 'static> Hot<T> {
    /// The address, to keep where a type cannot go (the slot hint).
    #[inline]
    pub(crate) fn addr(self) -> *const () {
        self.0.as_ptr().cast_const().cast()
    }

    /// Rebuilds a handle from [`addr`](Self::addr).
    ///
    /// # Safety
    ///
    /// `addr` came from `Hot::<T>::addr` of a cache that is still alive.
    #[inline(always)]
    pub(crate) unsafe fn from_addr(addr: *const ()) -> Self {
        // SAFETY: a non-null address of a live table (the caller's promise).
        Hot(unsafe { NonNull::new_unchecked(addr.cast_mut().cast()) })
    }

    /// Pops the loaded magazine of `class` and counts the get.
    ///
    /// # Safety
    ///
    /// The cache is alive, the caller is inside an owner access of it, and
    /// `class` is below its number of classes.
    #[inline(always)]
    pub(crate) unsafe fn pop(self, class: usize) -> Option<T> {
        // SAFETY: in bounds of a live table (the caller's promise).
        let c = unsafe { &*self.0.as_ptr().add(class) };
        // SAFETY: the caller has exclusive access; the closure only moves.
        let item = c.mags.with_mut(|m| unsafe { &mut *m }.loaded.pop())?;
        c.counters.gets.bump_local(1);
        Some(item)
    }

    /// Pushes onto the loaded magazine of `class` and counts the put, or hands
    /// the item back when it is full.
    ///
    /// # Safety
    ///
    /// As [`pop`](Self::pop).
    #[inline(always)]
    pub(crate) unsafe fn push(self, class: usize, item: T) -> Result<(), T> {
        // SAFETY: in bounds of a live table (the caller's promise).
        let c = unsafe { &*self.0.as_ptr().add(class) };
        // SAFETY: the caller has exclusive access; the closure only moves.
        c.mags.with_mut(|m| unsafe { &mut *m }.loaded.push(item))?;
        c.counters.puts.bump_local(1);
        Ok(())
    }
}

/// Readers on other threads only load the atomic counters; the cells are
/// touched by one accessor at a time (see `# Safety` on the owner methods).
// SAFETY: `&ThreadCache` offers other threads only `counters()` and `spec()`;
// every method that reaches a cell is `unsafe` and requires exclusive access.
unsafe impl<T: Send> Sync for ThreadCache<T> {}

impl<T: Send + 'static> ThreadCache<T> {
    /// A cache with no magazines yet, for classes of the given specs, whose
    /// magazines together may weigh at most `budget`. Allocates only the
    /// per-class table; magazines come on demand.
    pub(crate) fn new(specs: impl IntoIterator<Item = ClassSpec>, budget: usize) -> Self {
        let classes = specs
            .into_iter()
            .map(|spec| ClassCache {
                mags: UnsafeCell::new(Mags::none()),
                counters: ClassCounters::default(),
                cold: UnsafeCell::new(Cold { spare: Magazine::none(), growth: Growth::new(spec.base) }),
                spec,
            })
            .collect();
        ThreadCache { classes, charged: UnsafeCell::new(0), budget }
    }

    /// Number of classes.
    pub(crate) fn len(&self) -> usize {
        self.classes.len()
    }

    /// The counters of `class`: safe from any thread.
    #[inline]
    pub(crate) fn counters(&self, class: usize) -> &ClassCounters {
        &self.classes[class].counters
    }

    /// What the layer knows of `class`.
    #[inline]
    pub(crate) fn spec(&self, class: usize) -> ClassSpec {
        self.classes[class].spec
    }

    /// The accessor's shortcut to this cache's per-class table (see [`Hot`]).
    #[inline]
    pub(crate) fn hot(&self) -> Hot<T> {
        Hot(NonNull::from(&*self.classes).cast())
    }

    /// Runs `f` on the magazines of `class`, its cold state and the charge.
    ///
    /// # Safety
    ///
    /// The caller has exclusive access (module invariants), and `f` makes
    /// only moves (it drops no item, makes none, calls no allocator).
    #[inline(always)]
    unsafe fn with<R>(&self, class: usize, f: impl FnOnce(&mut Mags<T>, &mut Cold<T>, &mut usize) -> R) -> R {
        let c = &self.classes[class];
        c.mags.with_mut(|m| {
            c.cold.with_mut(|cold| {
                self.charged.with_mut(|ch| {
                    // SAFETY: exclusive access (the caller's promise), and `f`
                    // cannot re-enter: it runs no code of anyone else's. The
                    // three cells are distinct.
                    let (m, cold, ch) = unsafe { (&mut *m, &mut *cold, &mut *ch) };
                    f(m, cold, ch)
                })
            })
        })
    }

    /// A get's slow path, inside an owner access: pops the loaded magazine
    /// (the hint may have missed with items cached) or swaps in the previous
    /// one and pops that. Counts the get. `None`: both are empty (or
    /// placeholders), and only an exchange can help.
    ///
    /// # Safety
    ///
    /// Exclusive access (module invariants); `class` is in range.
    pub(crate) unsafe fn swap_pop(&self, class: usize) -> Option<T> {
        // SAFETY: forwarded; the closure only moves.
        let item = unsafe {
            self.with(class, |m, _, _| {
                if m.loaded.is_empty() && !m.previous.is_empty() {
                    mem::swap(&mut m.loaded, &mut m.previous);
                }
                m.loaded.pop()
            })
        }?;
        self.counters(class).gets.bump_local(1);
        Some(item)
    }

    /// A release's slow path, inside an owner access: pushes onto the loaded
    /// magazine, or swaps in an empty previous one and pushes onto that.
    /// Counts the put. Hands the item back when both are full (or
    /// placeholders).
    ///
    /// # Safety
    ///
    /// As [`swap_pop`](Self::swap_pop).
    pub(crate) unsafe fn swap_push(&self, class: usize, item: T) -> Result<(), T> {
        // SAFETY: forwarded; the closure only moves.
        unsafe {
            self.with(class, |m, _, _| {
                if m.loaded.is_full() && m.previous.is_empty() && m.previous.capacity() > 0 {
                    mem::swap(&mut m.loaded, &mut m.previous);
                }
                m.loaded.push(item)
            })
        }?;
        self.counters(class).puts.bump_local(1);
        Ok(())
    }

    /// Moves every magazine of `class` out of the cache, with its growth
    /// state, and releases their charge: the class is bare (placeholders,
    /// base growth) until [`put`](Self::put). Also says how much weight the
    /// class's magazines may have when put back.
    ///
    /// # Safety
    ///
    /// As [`swap_pop`](Self::swap_pop).
    pub(crate) unsafe fn take(&self, class: usize) -> Taken<T> {
        let spec = self.spec(class);
        // SAFETY: forwarded; the closure only moves.
        unsafe {
            self.with(class, |m, cold, charged| {
                let Mags { loaded, previous } = mem::replace(m, Mags::none());
                let spare = mem::replace(&mut cold.spare, Magazine::none());
                let growth = mem::replace(&mut cold.growth, Growth::new(spec.base));
                *charged -= charge(&loaded, &previous, spec.weight);
                let room = self.budget - *charged;
                Taken { loaded, previous, spare, growth, room, spec, out: Out::new() }
            })
        }
    }

    /// Puts back what [`take`](Self::take) moved out, if the class is still
    /// bare and the budget holds it; hands back what does not fit: `previous`
    /// first, then `loaded`, then everything when the class is no longer
    /// bare (a nested get or release re-filled it meanwhile).
    ///
    /// # Safety
    ///
    /// As [`swap_pop`](Self::swap_pop).
    pub(crate) unsafe fn put(&self, class: usize, mut taken: Taken<T>) -> Taken<T> {
        let weight = self.spec(class).weight;
        // SAFETY: forwarded; the closure only moves.
        unsafe {
            self.with(class, |m, cold, charged| {
                if m.loaded.capacity() != 0 || m.previous.capacity() != 0 {
                    return taken;
                }
                let room = self.budget - *charged;
                if charge(&taken.loaded, &taken.previous, weight) > room {
                    taken.shed_previous();
                }
                if charge(&taken.loaded, &taken.previous, weight) > room {
                    taken.shed_loaded();
                }
                *charged += charge(&taken.loaded, &taken.previous, weight);
                m.loaded = mem::replace(&mut taken.loaded, Magazine::none());
                m.previous = mem::replace(&mut taken.previous, Magazine::none());
                cold.growth = taken.growth;
                if cold.spare.capacity() == 0 {
                    cold.spare = mem::replace(&mut taken.spare, Magazine::none());
                }
                taken
            })
        }
    }

    /// Runs `f` while the cells of `class` are borrowed: only the loom
    /// mutant `drop_inside_access` does this (the bug of dropping items
    /// inside the cell, which `exchange.rs`'s three steps avoid).
    ///
    /// # Safety
    ///
    /// None: it exists to be caught.
    #[cfg(all(loom, magpool_mutant = "drop_inside_access"))]
    pub(crate) unsafe fn with_borrowed<R>(&self, class: usize, f: impl FnOnce() -> R) -> R {
        // SAFETY: none (see above).
        unsafe { self.with(class, |_, _, _| f()) }
    }

    /// Number of items cached for `class` (for tests and loom models).
    ///
    /// # Safety
    ///
    /// As [`swap_pop`](Self::swap_pop).
    #[allow(dead_code)] // used by unit tests and the loom models
    pub(crate) unsafe fn cached(&self, class: usize) -> usize {
        // SAFETY: forwarded; the closure only reads.
        unsafe { self.with(class, |m, _, _| m.loaded.len() + m.previous.len()) }
    }

    /// The weight charged against the budget now (for tests).
    ///
    /// # Safety
    ///
    /// As [`swap_pop`](Self::swap_pop).
    #[allow(dead_code)] // used by unit tests
    pub(crate) unsafe fn charged(&self) -> usize {
        // SAFETY: forwarded; the closure only reads.
        self.charged.with_mut(|c| unsafe { *c })
    }

    /// (growth capacity, loaded capacity, previous capacity) of `class`, for
    /// tests.
    ///
    /// # Safety
    ///
    /// As [`swap_pop`](Self::swap_pop).
    #[cfg(test)]
    pub(crate) unsafe fn capacities(&self, class: usize) -> (usize, usize, usize) {
        // SAFETY: forwarded; the closure only reads.
        unsafe { self.with(class, |m, cold, _| (cold.growth.cap(), m.loaded.capacity(), m.previous.capacity())) }
    }
}

/// The weight `loaded` and `previous` are charged: their capacities.
#[inline]
pub(crate) fn charge<T>(loaded: &Magazine<T>, previous: &Magazine<T>, weight: usize) -> usize {
    (loaded.capacity() + previous.capacity()).saturating_mul(weight)
}

impl<T> Mags<T> {
    /// Placeholders only: every access takes the slow path.
    const fn none() -> Self {
        Mags { loaded: Magazine::none(), previous: Magazine::none() }
    }
}
