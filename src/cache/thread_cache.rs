//! [`ThreadCache`]: one thread's magazines for every class of one pool, and the
//! refill/spill protocol with the [`Depot`] (Bonwick & Adams 2001, §3.2).
//!
//! Per class the owner holds a *loaded* and a *previous* magazine, and an
//! empty *spare* (see [`Mags`]). Gets pop the loaded one and releases push
//! onto it (the hot path: a length check and a move). When the loaded
//! magazine is empty (get) or full (release), the slow path first swaps in
//! the previous one, and only when that cannot help does it exchange a whole
//! magazine with the depot. A thread flapping around a magazine boundary
//! therefore never reaches the depot. Three departures from the paper: a
//! spill ships the magazine just filled, not the older one (see
//! `Mags::spill`); the spare saves an exchange its trip for an empty
//! magazine; and a thread's magazines of a class grow when its exchanges of
//! that class turn (see [`Cold`]), where the paper grows every thread's
//! magazines when the depot's lock is contended.
//!
//! # Invariants
//!
//! - Only the owner touches `mags`: one thread at a time, and each new owner's
//!   first access happens after the previous owner's last (the caller
//!   guarantees it; see the `# Safety` sections).
//! - Every real magazine of class `c` has a capacity between the class's base
//!   and its maximum (magazines pass between threads through the depot, so a
//!   thread may hold one that another grew); a placeholder has capacity 0. A
//!   class with base 0 is never cached: its items are made on every get and
//!   dropped on every release.
//! - Counters are written only by the owner (plain load/store) and read by
//!   anyone.
//!
//! Called by the pool (with the cache found through its thread-local slot) and
//! by the loom models (with explicit per-thread caches). Items are opaque.

use std::mem;
use std::ptr::NonNull;

use crate::cache::counters::ClassCounters;
use crate::cache::depot::Depot;
use crate::cache::magazine::Magazine;
use crate::sync::UnsafeCell;

/// One thread's magazines and counters for every class of a pool.
///
/// # Invariants
///
/// See the module docs.
#[derive(Debug)]
pub(crate) struct ThreadCache<T> {
    classes: Box<[ClassCache<T>]>,
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
    /// The class's base magazine capacity; 0 = never cached.
    cap: usize,
    /// Most a magazine of this class grows to (`>= cap`).
    max_cap: usize,
}

/// What the owner's slow paths keep for one class, off the hot line.
///
/// # Growth
///
/// A thread whose exchanges of a class change direction (a refill after a
/// spill, or a spill after a refill) both gets and releases that class in
/// swings wider than its two magazines: each turn doubles `cap`, up to the
/// class's maximum, and each slow path grows the two magazines it leaves
/// loaded to it. So the band of items it holds widens until its swings fit
/// and it stays out of the depot. A thread that only gets or only releases
/// a class (a producer or consumer in a cross-thread flow) never turns and
/// keeps the base: a bigger magazine would only make its buffers wait longer
/// between release and reuse, and come back colder. Two rules keep it there:
/// an empty magazine it takes to fill is fitted to its `cap` (magazines
/// grown elsewhere come back through the depot), and [`DECAY_RUN`]
/// exchanges in a row in one direction halve `cap` (down to the base), for
/// a thread that swung once and now flows one way.
#[derive(Debug)]
struct Cold<T> {
    /// Always empty (or a placeholder): see [`Mags`].
    spare: Magazine<T>,
    /// The capacity this thread fills magazines to: the magazines its slow
    /// paths leave loaded are grown to it, and the empties it takes are
    /// fitted to it. Between the base and the maximum.
    cap: usize,
    /// Direction of this thread's last exchange with the depot, if any.
    last: Option<Exchange>,
    /// Exchanges in a row in the direction of `last`.
    run: u32,
}

/// Exchanges in a row in one direction that halve a grown capacity (see
/// [`Cold`]). A thread whose swings fit its grown magazines makes none at
/// all; one whose swings are wider turns every few exchanges.
const DECAY_RUN: u32 = 8;

/// An exchange with the depot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exchange {
    /// A full magazine taken.
    Refill,
    /// A full magazine given.
    Spill,
}

impl<T> Cold<T> {
    /// State for a thread that has not exchanged yet.
    fn new(base: usize) -> Self {
        Cold { spare: Magazine::none(), cap: base, last: None, run: 0 }
    }

    /// Notes an exchange: a turn doubles `cap`, up to `max`; [`DECAY_RUN`]
    /// in a row one way halve it, down to `base`.
    fn exchanged(&mut self, now: Exchange, base: usize, max: usize) {
        if self.last.is_some_and(|last| last != now) {
            self.cap = self.cap.saturating_mul(2).min(max);
            self.run = 0;
        }
        self.run += 1;
        if self.run == DECAY_RUN {
            self.cap = (self.cap / 2).max(base);
            self.run = 0;
        }
        self.last = Some(now);
    }
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
/// pool's per-thread slot hint holds one, so that a get or release reaches the
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
    #[cfg_attr(loom, allow(dead_code))] // the pool's hint; the loom models use caches directly
    #[inline]
    pub(crate) fn addr(self) -> *const () {
        self.0.as_ptr().cast_const().cast()
    }

    /// Rebuilds a handle from [`addr`](Self::addr).
    ///
    /// # Safety
    ///
    /// `addr` came from `Hot::<T>::addr` of a cache that is still alive.
    #[cfg_attr(loom, allow(dead_code))] // as `addr`
    #[inline(always)]
    pub(crate) unsafe fn from_addr(addr: *const ()) -> Self {
        // SAFETY: a non-null address of a live table (the caller's promise).
        Hot(unsafe { NonNull::new_unchecked(addr.cast_mut().cast()) })
    }

    /// Pops the loaded magazine of `class` and counts the get.
    ///
    /// # Safety
    ///
    /// The cache is alive, the caller is its owner, and `class` is below its
    /// number of classes.
    #[inline(always)]
    pub(crate) unsafe fn pop(self, class: usize) -> Option<T> {
        // SAFETY: in bounds of a live table (the caller's promise).
        let c = unsafe { &*self.0.as_ptr().add(class) };
        // SAFETY: the caller is the owner, and does not re-enter.
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
        // SAFETY: the caller is the owner, and does not re-enter.
        c.mags.with_mut(|m| unsafe { &mut *m }.loaded.push(item))?;
        c.counters.puts.bump_local(1);
        Ok(())
    }
}

/// Bonwick's two magazines of one class, `loaded` first (see [`ClassCache`]).
///
/// The slow paths also get the class's *spare*, kept apart so that it does
/// not push the counters off the hot line. The spare is always empty (or a
/// placeholder). A refill keeps the magazine it emptied there instead of
/// returning it to the depot, and the next spill takes it instead of fetching
/// an empty one: a thread whose refills and spills alternate makes one depot
/// operation per exchange, not two.
#[derive(Debug)]
#[repr(C)]
struct Mags<T> {
    loaded: Magazine<T>,
    previous: Magazine<T>,
}

/// Readers on other threads only load the atomic counters; the magazines are
/// touched by the owner alone (see `# Safety` on the owner methods).
// SAFETY: `&ThreadCache` offers other threads only `counters()`; every method
// that reaches `mags` is `unsafe` and requires the caller to be the owner.
unsafe impl<T: Send> Sync for ThreadCache<T> {}

impl<T: Send + 'static> ThreadCache<T> {
    /// A cache with no magazines yet, for classes with the given base and
    /// maximum magazine capacities. Allocates only the per-class table;
    /// magazines come on demand.
    pub(crate) fn new(caps: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let classes = caps
            .into_iter()
            .map(|(cap, max_cap)| ClassCache {
                mags: UnsafeCell::new(Mags::none()),
                counters: ClassCounters::default(),
                cold: UnsafeCell::new(Cold::new(cap)),
                cap,
                max_cap: max_cap.max(cap),
            })
            .collect();
        ThreadCache { classes }
    }

    /// The counters of `class`: safe from any thread.
    pub(crate) fn counters(&self, class: usize) -> &ClassCounters {
        &self.classes[class].counters
    }

    /// Runs `f` on the magazines of `class` and its slow paths' state.
    ///
    /// # Safety
    ///
    /// The caller is this cache's owner (module invariants).
    #[inline(always)]
    unsafe fn with_mags<R>(&self, class: usize, f: impl FnOnce(&mut Mags<T>, &mut Cold<T>) -> R) -> R {
        let c = &self.classes[class];
        // `f` does not call back into magpool, so it cannot re-enter: it
        // calls the global allocator and drops items (blocks, which free
        // their memory), and the depot's pins collect on magpool's own epoch
        // collector, whose deferred functions only return nodes to their
        // shells (`sync::epoch`).
        // SAFETY: the owner is the only thread that reaches `mags` and
        // `cold`, and it does not re-enter this function from `f`: the
        // accesses are exclusive.
        c.mags.with_mut(|m| c.cold.with_mut(|cold| f(unsafe { &mut *m }, unsafe { &mut *cold })))
    }

    /// The owner's shortcut to this cache's per-class table (see [`Hot`]).
    #[inline]
    pub(crate) fn hot(&self) -> Hot<T> {
        Hot(NonNull::from(&*self.classes).cast())
    }

    /// Hot path of a get: pops the loaded magazine. No atomic RMW, no lock, no
    /// allocation.
    ///
    /// # Safety
    ///
    /// The caller is this cache's owner.
    #[inline]
    pub(crate) unsafe fn pop_local(&self, class: usize) -> Option<T> {
        assert!(class < self.classes.len());
        // SAFETY: from `self`, which is alive; `class` is in range; the caller
        // is the owner.
        unsafe { self.hot().pop(class) }
    }

    /// Hot path of a release: pushes onto the loaded magazine, or hands the item
    /// back when it is full.
    ///
    /// # Safety
    ///
    /// The caller is this cache's owner.
    #[inline]
    pub(crate) unsafe fn push_local(&self, class: usize, item: T) -> Result<(), T> {
        assert!(class < self.classes.len());
        // SAFETY: as in `pop_local`.
        unsafe { self.hot().push(class, item) }
    }

    /// Slow path of a get, after [`pop_local`](Self::pop_local) missed: swap in
    /// the previous magazine, else refill from the depot, else `make` a new item.
    ///
    /// # Errors
    ///
    /// Whatever `make` returns; nothing is counted then.
    ///
    /// # Safety
    ///
    /// The caller is this cache's owner.
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn pop_slow<E>(
        &self,
        class: usize,
        depot: &Depot<T>,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let c = &self.classes[class];
        let cached = match c.cap {
            0 => None,
            // SAFETY: forwarded from the caller.
            _ => unsafe { self.with_mags(class, |m, cold| m.refill(cold, class, depot, c)) },
        };
        let item = match cached {
            Some(item) => item,
            None => {
                let item = make()?;
                c.counters.allocations.bump_local(1);
                item
            }
        };
        c.counters.gets.bump_local(1);
        Ok(item)
    }

    /// Slow path of a release, after [`push_local`](Self::push_local) found the
    /// loaded magazine full: swap in the previous one, else spill a full
    /// magazine to the depot, else (depot over its limit) drop a magazine's
    /// worth of items. Never fails.
    ///
    /// # Safety
    ///
    /// The caller is this cache's owner.
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn push_slow(&self, class: usize, item: T, depot: &Depot<T>) {
        let c = &self.classes[class];
        if c.cap == 0 {
            drop(item);
            c.counters.discarded.bump_local(1);
        } else {
            // SAFETY: forwarded from the caller.
            unsafe { self.with_mags(class, |m, cold| m.spill(cold, class, item, depot, c)) };
        }
        c.counters.puts.bump_local(1);
    }

    /// Gives every magazine to the depot (full ones to `full`, within the
    /// retention limit, the rest as empties) and leaves placeholders, so the
    /// next access takes the slow path. Used at thread exit: the growth state
    /// goes back to the base too, since the next thread to own this cache may
    /// play another part (a consumer after a producer is no turn).
    ///
    /// # Safety
    ///
    /// The caller is this cache's owner.
    pub(crate) unsafe fn flush(&self, depot: &Depot<T>) {
        for (class, c) in self.classes.iter().enumerate() {
            // SAFETY: forwarded from the caller.
            let (Mags { loaded, previous }, spare) = unsafe {
                self.with_mags(class, |m, cold| {
                    let fresh = Cold::new(c.cap);
                    (mem::replace(m, Mags::none()), mem::replace(cold, fresh).spare)
                })
            };
            for mag in [loaded, previous, spare] {
                give_back(class, mag, depot, &c.counters);
            }
        }
    }

    /// Drops every cached item (keeping the empty magazines). Used by `trim`.
    ///
    /// # Safety
    ///
    /// The caller is this cache's owner.
    pub(crate) unsafe fn drain(&self) {
        for (class, c) in self.classes.iter().enumerate() {
            // SAFETY: forwarded from the caller.
            let n = unsafe { self.with_mags(class, |m, _| m.loaded.clear() + m.previous.clear()) } as u64;
            c.counters.discarded.bump_local(n);
            c.counters.trimmed.bump_local(n);
        }
    }

    /// Number of items cached for `class` (for tests and loom models).
    ///
    /// # Safety
    ///
    /// The caller is this cache's owner.
    #[allow(dead_code)] // used by unit tests and the loom models
    pub(crate) unsafe fn cached(&self, class: usize) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe { self.with_mags(class, |m, _| m.loaded.len() + m.previous.len()) }
    }
}

/// Puts `mag` back in the depot: full ones within the limit, otherwise its items
/// are dropped and it is kept as an empty. Placeholders vanish (the depot
/// never stores one).
fn give_back<T: Send + 'static>(class: usize, mag: Magazine<T>, depot: &Depot<T>, counters: &ClassCounters) {
    let empty = if mag.is_empty() {
        mag
    } else {
        match depot.push_full(class, mag) {
            Ok(()) => {
                counters.spills.bump_local(1);
                return;
            }
            Err(mut mag) => {
                counters.discarded.bump_local(mag.clear() as u64);
                mag
            }
        }
    };
    depot.push_empty(class, empty);
}

impl<T: Send + 'static> Mags<T> {
    /// Placeholders only: every access takes the slow path.
    const fn none() -> Self {
        Mags { loaded: Magazine::none(), previous: Magazine::none() }
    }

    /// `loaded` is empty. Returns an item from `previous` or a depot magazine.
    fn refill(&mut self, cold: &mut Cold<T>, class: usize, depot: &Depot<T>, c: &ClassCache<T>) -> Option<T> {
        debug_assert!(self.loaded.is_empty());
        if self.previous.is_empty() {
            // One pin for the whole exchange: the stack operations inside
            // then pin re-entrantly, without a fence each. (The swap below
            // touches no shared state and needs none.)
            let _pinned = depot.pin();
            let full = depot.pop_full(class)?;
            c.counters.refills.bump_local(1);
            cold.exchanged(Exchange::Refill, c.cap, c.max_cap);
            // Bonwick: the two empties become one; the other becomes the
            // spare, or goes to the depot when there is one already (which
            // drops it if it is only a placeholder).
            let emptied = mem::replace(&mut self.previous, mem::replace(&mut self.loaded, full));
            if cold.spare.capacity() == 0 {
                cold.spare = emptied;
            } else {
                depot.push_empty(class, emptied);
            }
        } else {
            mem::swap(&mut self.loaded, &mut self.previous);
        }
        self.grow_to(cold.cap);
        self.assert_valid(&cold.spare);
        self.loaded.pop()
    }

    /// `loaded` is full (or a placeholder). Makes room and pushes `item`.
    ///
    /// Unlike Bonwick's layer, which ships the older (`previous`) magazine,
    /// this ships the one just filled: its buffers were released last and are
    /// likeliest still in cache, and whoever refills from the depot zeroes
    /// them on hand-out. In producer→consumer flow that is the producer: the
    /// warmer buffers made the bench's 2→2 8–18% faster (IMPLEMENTATION.md).
    fn spill(&mut self, cold: &mut Cold<T>, class: usize, item: T, depot: &Depot<T>, c: &ClassCache<T>) {
        debug_assert!(self.loaded.is_full());
        if self.previous.is_empty() && self.previous.capacity() > 0 {
            mem::swap(&mut self.loaded, &mut self.previous);
        } else if self.previous.capacity() == 0 {
            // No second magazine yet: keep the full one as `previous`, so that
            // a thread flapping at the boundary stays out of the depot.
            let _pinned = depot.pin(); // as in `refill`
            let fresh = take_empty(cold, class, depot);
            self.previous = mem::replace(&mut self.loaded, fresh);
        } else {
            let _pinned = depot.pin();
            let full = mem::replace(&mut self.loaded, Magazine::none());
            self.loaded = match depot.push_full(class, full) {
                Ok(()) => {
                    c.counters.spills.bump_local(1);
                    cold.exchanged(Exchange::Spill, c.cap, c.max_cap);
                    take_empty(cold, class, depot)
                }
                // Over the retention limit: keep the warm magazine, free the
                // older one's items, and fill that one next.
                Err(full) => {
                    let mut spent = mem::replace(&mut self.previous, full);
                    c.counters.discarded.bump_local(spent.clear() as u64);
                    spent
                }
            };
        }
        self.grow_to(cold.cap);
        self.assert_valid(&cold.spare);
        let pushed = self.loaded.push(item);
        debug_assert!(pushed.is_ok(), "a fresh or swapped-in magazine has room");
    }

    /// Grows both magazines to `cap` (see [`Cold`]): a no-op once they are
    /// that big, so each magazine this thread holds is grown at most once per
    /// doubling, whichever thread made it.
    fn grow_to(&mut self, cap: usize) {
        self.loaded.grow_to(cap);
        self.previous.grow_to(cap);
    }

    fn assert_valid(&self, spare: &Magazine<T>) {
        self.loaded.assert_valid();
        self.previous.assert_valid();
        spare.assert_valid();
        debug_assert!(spare.is_empty());
    }
}

/// The spare if there is one, else an empty from the depot, else a new one;
/// never larger than the thread's capacity (see [`Cold`]), which the caller
/// then grows it to.
fn take_empty<T: Send + 'static>(cold: &mut Cold<T>, class: usize, depot: &Depot<T>) -> Magazine<T> {
    let mut mag = if cold.spare.capacity() > 0 {
        mem::replace(&mut cold.spare, Magazine::none())
    } else {
        depot.pop_empty(class).unwrap_or_else(|| Magazine::with_capacity(cold.cap))
    };
    mag.shrink_to(cold.cap);
    mag
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::cache::counters::Reading;

    fn reading(cache: &ThreadCache<u32>, class: usize) -> Reading {
        let mut r = Reading::default();
        r.add_put_side(cache.counters(class));
        r.add_get_side(cache.counters(class));
        r
    }

    #[test]
    fn hysteresis_keeps_the_depot_out() {
        let depot = Depot::new([4], usize::MAX);
        let cache = ThreadCache::new([(2, 2)]);
        // SAFETY: this test thread is the only owner.
        unsafe {
            for i in 0..4 {
                if let Err(x) = cache.push_local(0, i) {
                    cache.push_slow(0, x, &depot);
                }
            }
            // Two magazines of 2 hold all four: flap around the boundary.
            for _ in 0..100 {
                let x = match cache.pop_local(0) {
                    Some(x) => x,
                    None => cache.pop_slow(0, &depot, || Err::<u32, ()>(())).unwrap(),
                };
                if let Err(x) = cache.push_local(0, x) {
                    cache.push_slow(0, x, &depot);
                }
            }
            assert_eq!(cache.cached(0), 4);
        }
        let r = reading(&cache, 0);
        assert_eq!((r.refills, r.spills, r.allocations), (0, 0, 0));
        assert_eq!(depot.magazines(0), (0, 0));
    }

    /// A release, through the slow path when the loaded magazine is full.
    fn put(cache: &ThreadCache<u32>, depot: &Depot<u32>, item: u32) {
        // SAFETY: the tests use each cache from one thread only.
        unsafe {
            if let Err(x) = cache.push_local(0, item) {
                cache.push_slow(0, x, depot);
            }
        }
    }

    /// A get, through the slow path when the loaded magazine is empty; makes
    /// a 0 when nothing is cached.
    fn get(cache: &ThreadCache<u32>, depot: &Depot<u32>) -> u32 {
        // SAFETY: as in `put`.
        unsafe { cache.pop_local(0).unwrap_or_else(|| cache.pop_slow(0, depot, || Ok::<u32, ()>(0)).unwrap()) }
    }

    /// `n` releases, then `m` gets.
    fn puts_then_gets(cache: &ThreadCache<u32>, depot: &Depot<u32>, n: u32, m: u32) {
        (0..n).for_each(|i| put(cache, depot, i));
        (0..m).for_each(|_| {
            get(cache, depot);
        });
    }

    /// (the thread's capacity, loaded's, previous's) for class 0.
    fn caps(cache: &ThreadCache<u32>) -> (usize, usize, usize) {
        // SAFETY: as in `put`.
        unsafe { cache.with_mags(0, |m, cold| (cold.cap, m.loaded.capacity(), m.previous.capacity())) }
    }

    /// Six swings of `width` releases then `width` gets; returns the depot
    /// exchanges of each.
    fn swing(cache: &ThreadCache<u32>, depot: &Depot<u32>, width: u32) -> Vec<u64> {
        let exchanges = || {
            let r = reading(cache, 0);
            r.refills + r.spills
        };
        (0..6)
            .map(|_| {
                let before = exchanges();
                puts_then_gets(cache, depot, width, width);
                exchanges() - before
            })
            .collect()
    }

    #[test]
    fn turning_exchanges_grow_the_magazines_to_the_maximum() {
        // Base 2 items per magazine, grown up to 8; swings of 12 are wider
        // than two magazines of 2 hold, and fit in two of 8.
        let depot = Depot::new([4], usize::MAX);
        let swinger = ThreadCache::new([(2, 8)]);
        let per_swing = swing(&swinger, &depot, 12);
        assert!(per_swing[0] > 0 && per_swing[3..] == [0, 0, 0], "{per_swing:?}");
        assert_eq!(caps(&swinger), (8, 8, 8));
        // Swings of 40 never fit: still no magazine past the maximum.
        let per_swing = swing(&swinger, &depot, 40);
        assert!(per_swing.iter().all(|&n| n > 0), "{per_swing:?}");
        assert_eq!(caps(&swinger), (8, 8, 8));
    }

    #[test]
    fn one_way_flow_keeps_the_base_even_beside_grown_magazines() {
        // A swinger grows its magazines and leaves them in the depot (at
        // exit); then a consumer only releases and a producer only gets.
        let depot = Depot::new([4], usize::MAX);
        let swinger = ThreadCache::new([(2, 8)]);
        swing(&swinger, &depot, 12);
        // SAFETY: this test thread is the only owner.
        unsafe { swinger.flush(&depot) };
        assert!(depot.magazines(0).1 > 0, "its empties wait in the depot");
        let (consumer, producer) = (ThreadCache::new([(2, 8)]), ThreadCache::new([(2, 8)]));
        puts_then_gets(&consumer, &depot, 100, 0);
        puts_then_gets(&producer, &depot, 0, 90);
        // Neither turned, and the consumer filled every magazine to 2 (the
        // grown empties it took were cut down first): the producer refilled
        // once per 2 gets.
        assert_eq!(caps(&consumer), (2, 2, 2));
        assert_eq!(caps(&producer).0, 2);
        assert_eq!((reading(&producer, 0).refills, reading(&producer, 0).allocations), (45, 0));
    }

    #[test]
    fn a_flushed_cache_starts_over() {
        // A cache passes to a new thread at a flush (thread exit): one
        // thread's spills and the next one's refills are no turn.
        let depot = Depot::new([4], usize::MAX);
        let cache = ThreadCache::new([(2, 8)]);
        puts_then_gets(&cache, &depot, 20, 0);
        // SAFETY: this test thread is the only owner.
        unsafe { cache.flush(&depot) };
        puts_then_gets(&cache, &depot, 0, 16);
        assert_eq!(reading(&cache, 0).refills, 8);
        assert_eq!(caps(&cache), (2, 2, 2));
    }

    #[test]
    fn a_long_run_one_way_undoes_growth() {
        let depot = Depot::new([4], usize::MAX);
        let cache = ThreadCache::new([(2, 8)]);
        swing(&cache, &depot, 12);
        assert_eq!(caps(&cache).0, 8);
        // Now only releases: DECAY_RUN spills in a row halve the capacity,
        // twice as many take it back to the base.
        let spills = |n| {
            let before = reading(&cache, 0).spills;
            let mut i = 0;
            while reading(&cache, 0).spills - before < n {
                put(&cache, &depot, i);
                i += 1;
            }
        };
        spills(u64::from(DECAY_RUN) - 1);
        assert_eq!(caps(&cache).0, 8);
        spills(1);
        assert_eq!(caps(&cache).0, 4);
        spills(u64::from(DECAY_RUN));
        assert_eq!(caps(&cache).0, 2);
        // The magazines it fills from then on are of the base size.
        spills(2);
        assert_eq!(caps(&cache).1, 2);
    }

    #[test]
    fn spill_refill_and_flush() {
        let depot = Depot::new([4], usize::MAX);
        let a = ThreadCache::new([(2, 2)]);
        let b = ThreadCache::new([(2, 2)]);
        // SAFETY: each cache is used by this thread alone.
        unsafe {
            for i in 0..7 {
                if let Err(x) = a.push_local(0, i) {
                    a.push_slow(0, x, &depot);
                }
            }
            // 7 items, 2 per magazine: [0, 1] stays as previous, [6] loaded,
            // and each magazine filled in between ([2, 3], [4, 5]) spilled.
            assert_eq!(a.cached(0), 3);
            assert_eq!(depot.magazines(0).0, 2);
            // The depot hands out the warmest: the last magazine spilled, top first.
            let got = b.pop_slow(0, &depot, || Err::<u32, ()>(())).unwrap();
            assert_eq!(got, 5);
            a.flush(&depot);
            assert_eq!(a.cached(0), 0);
        }
        assert_eq!(reading(&a, 0).spills, 4);
        assert_eq!(reading(&b, 0).refills, 1);
    }

    #[test]
    fn a_refill_keeps_its_empty_for_the_next_spill() {
        let depot = Depot::new([4], usize::MAX);
        let cache = ThreadCache::new([(2, 2)]);
        let push = |i| {
            // SAFETY: this test thread is the only owner.
            unsafe {
                if let Err(x) = cache.push_local(0, i) {
                    cache.push_slow(0, x, &depot);
                }
            }
        };
        // SAFETY: as above.
        let pop = || unsafe { cache.pop_local(0).or_else(|| cache.pop_slow(0, &depot, || Err(())).ok()) };
        // [0, 1] previous, [2, 3] spilled, [4] loaded.
        (0..5).for_each(push);
        assert_eq!(depot.magazines(0), (1, 0));
        // Emptying both magazines refills [2, 3]; the magazine that refill
        // emptied stays in the cache as its spare, not in the depot.
        let popped: Vec<u32> = std::iter::from_fn(pop).collect();
        assert_eq!(popped, [4, 1, 0, 3, 2]);
        assert_eq!(depot.magazines(0), (0, 0));
        // Filling both again spills one, into the spare: no empty fetched.
        (5..10).for_each(push);
        assert_eq!(depot.magazines(0), (1, 0));
        let r = reading(&cache, 0);
        assert_eq!((r.refills, r.spills), (1, 2));
    }

    #[test]
    fn over_the_limit_the_older_magazine_goes() {
        let depot = Depot::new([4], 0); // the depot keeps nothing
        let cache = ThreadCache::new([(2, 2)]);
        // SAFETY: single owner.
        let popped: Vec<u32> = unsafe {
            for i in 0..5 {
                if let Err(x) = cache.push_local(0, i) {
                    cache.push_slow(0, x, &depot);
                }
            }
            // [0, 1] was freed, not the warmer [2, 3].
            std::iter::from_fn(|| cache.pop_local(0).or_else(|| cache.pop_slow(0, &depot, || Err(())).ok())).collect()
        };
        assert_eq!(popped, [4, 3, 2]);
        assert_eq!(reading(&cache, 0).discarded, 2);
    }

    #[test]
    fn limit_discards_and_uncached_classes() {
        let depot = Depot::new([4, 0], 0); // the depot keeps nothing
        let cache = ThreadCache::new([(1, 1), (0, 0)]);
        // SAFETY: single owner.
        unsafe {
            for i in 0..5 {
                if let Err(x) = cache.push_local(0, i) {
                    cache.push_slow(0, x, &depot);
                }
            }
            assert_eq!(cache.cached(0), 2);
            cache.push_slow(1, 9, &depot);
            let made = cache.pop_slow(1, &depot, || Ok::<u32, ()>(42)).unwrap();
            assert_eq!(made, 42);
            cache.drain();
            assert_eq!(cache.cached(0), 0);
        }
        let r0 = reading(&cache, 0);
        assert_eq!((r0.puts, r0.discarded, r0.trimmed, r0.spills), (5, 5, 2, 0));
        let r1 = reading(&cache, 1);
        assert_eq!((r1.gets, r1.puts, r1.allocations, r1.discarded), (1, 1, 1, 1));
    }
}
