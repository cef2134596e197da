//! The slow paths: a thread's exchanges of whole magazines with the
//! [`Depot`] (Bonwick & Adams 2001, §3.2), made *outside* the owner-only
//! cell.
//!
//! Each slow path runs in three steps. Inside an owner access, the class's
//! magazines are [taken](ThreadCache::take) out of the cache (pure moves).
//! Outside, with the cache bare for that class, the exchange runs: depot
//! pushes and pops, new magazines allocated, items of refused magazines
//! dropped, growth. Inside a second owner access, the result is
//! [put](ThreadCache::put) back, and what does not fit goes to the depot
//! after it. So a `Drop` of an item, or an allocator, that uses the pool
//! again finds a consistent cache (at worst a bare class, which takes the
//! slow path) and never a borrowed one.
//!
//! Three departures from the paper: a spill ships the magazine just filled,
//! not the older one (see [`Taken::spill`]); the spare saves an exchange its
//! trip for an empty magazine; and a thread's magazines of a class grow when
//! its exchanges of that class turn (see [`Growth`]), where the paper grows
//! every CPU's magazines when the depot's lock is contended. And one
//! addition: a thread's magazines, all classes together, stay within its
//! budget (`thread_cache.rs`); a class that does not fit is traded with the
//! depot one item at a time.
//!
//! # Invariants
//!
//! - Outside an owner access nothing here touches the cache's cells: a
//!   [`Taken`] is plain data owned by the exchanging thread.
//! - Items are dropped only after the depot's guard is gone (see
//!   [`Spent`]), so no user code runs pinned.
//!
//! Called by the layer's front (`caches.rs`), the unit tests and the loom
//! models, each with its own [`Access`].

use std::mem;

use crate::cache::counters::ClassCounters;
use crate::cache::depot::Depot;
use crate::cache::magazine::Magazine;
use crate::cache::thread_cache::{charge, ClassSpec, ThreadCache};
use crate::sync::epoch::Guard;

/// How a slow path opens an owner access to a cache it owns.
pub(crate) trait Access<T: Send + 'static> {
    /// Runs `f` inside an owner access of the cache (see `thread_cache.rs`);
    /// `f` makes only moves.
    fn with<R>(&self, f: impl FnOnce(&ThreadCache<T>) -> R) -> R;
}

/// Access to a cache that the caller holds alone: a reclaimer that holds the
/// slot (`owner.rs`), a unit test, a loom model. Its accesses need no
/// bracket.
#[derive(Debug)]
pub(crate) struct Exclusive<'a, T>(&'a ThreadCache<T>);

impl<'a, T> Exclusive<'a, T> {
    /// # Safety
    ///
    /// While this lives, no other thread touches `cache`'s cells, and every
    /// earlier accessor's accesses happen before its own.
    pub(crate) unsafe fn new(cache: &'a ThreadCache<T>) -> Self {
        Exclusive(cache)
    }
}

impl<T: Send + 'static> Access<T> for Exclusive<'_, T> {
    fn with<R>(&self, f: impl FnOnce(&ThreadCache<T>) -> R) -> R {
        f(self.0)
    }
}

// === impl Growth ===

/// How far a thread fills its magazines of one class.
///
/// A thread whose exchanges of a class change direction (a refill after a
/// spill, or a spill after a refill) both gets and releases that class in
/// swings wider than its two magazines: each turn doubles `cap`, up to the
/// class's maximum, and the exchange grows the two magazines it leaves
/// loaded to it (within the thread's budget). So the band of items it holds
/// widens until its swings fit and it stays out of the depot. A thread that
/// only gets or only releases a class (a producer or consumer in a
/// cross-thread flow) never turns and keeps the base: a bigger magazine would
/// only make its items wait longer between release and reuse, and come back
/// colder. Two rules keep it there: an empty magazine it takes to fill is
/// fitted to its `cap` (magazines grown elsewhere come back through the
/// depot), and [`DECAY_RUN`] exchanges in a row in one direction halve `cap`
/// (down to the base), for a thread that swung once and now flows one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Growth {
    cap: usize,
    /// Direction of this thread's last exchange with the depot, if any.
    last: Option<Exchange>,
    /// Exchanges in a row in the direction of `last`.
    run: u32,
}

/// Exchanges in a row in one direction that halve a grown capacity (see
/// [`Growth`]).
pub(crate) const DECAY_RUN: u32 = 8;

/// An exchange with the depot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exchange {
    /// A full magazine taken.
    Refill,
    /// A full magazine given.
    Spill,
}

impl Growth {
    /// A thread that has not exchanged yet.
    pub(crate) const fn new(base: usize) -> Self {
        Growth { cap: base, last: None, run: 0 }
    }

    /// The capacity this thread fills magazines of the class to.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Notes an exchange: a turn doubles `cap`, up to `spec.max`;
    /// [`DECAY_RUN`] in a row one way halve it, down to `spec.base`.
    fn exchanged(&mut self, now: Exchange, spec: ClassSpec) {
        if self.last.is_some_and(|last| last != now) {
            self.cap = self.cap.saturating_mul(2).min(spec.max);
            self.run = 0;
        }
        self.run += 1;
        if self.run == DECAY_RUN {
            self.cap = (self.cap / 2).max(spec.base);
            self.run = 0;
        }
        self.last = Some(now);
    }
}

// === impl Taken ===

/// A class's magazines and growth state, moved out of a cache for an
/// exchange (by [`ThreadCache::take`]), and put back after it.
#[derive(Debug)]
pub(crate) struct Taken<T> {
    pub(crate) loaded: Magazine<T>,
    pub(crate) previous: Magazine<T>,
    pub(crate) spare: Magazine<T>,
    pub(crate) growth: Growth,
    /// The most weight `loaded` and `previous` may have when put back.
    pub(crate) room: usize,
    pub(crate) spec: ClassSpec,
    /// Magazines on their way to the depot: full ones to store (their items
    /// dropped if it refuses), empty ones to keep.
    pub(crate) out: Out<T>,
}

/// Up to [`OUT`] magazines, inline: an exchange sends at most that many to
/// the depot, and a `Vec` here would cost an allocation per exchange.
#[derive(Debug)]
pub(crate) struct Out<T>([Magazine<T>; OUT]);

/// The most magazines one exchange sends out: an emptied one, a refused or
/// split full one, and `previous` and `loaded` shed for the budget.
const OUT: usize = 4;

impl<T> Out<T> {
    pub(crate) const fn new() -> Self {
        Out([const { Magazine::none() }; OUT])
    }

    /// Adds `mag` (a placeholder is nothing to send, and is dropped).
    fn push(&mut self, mag: Magazine<T>) {
        if mag.capacity() == 0 {
            return;
        }
        match self.0.iter_mut().find(|slot| slot.capacity() == 0) {
            Some(slot) => *slot = mag,
            None => unreachable!("an exchange sends at most {OUT} magazines out"),
        }
    }
}

impl<T> IntoIterator for Out<T> {
    type Item = Magazine<T>;
    type IntoIter = std::array::IntoIter<Magazine<T>, OUT>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<T: Send + 'static> Taken<T> {
    /// Items that fit in the room (0 when one does not).
    fn fit(&self) -> usize {
        match self.spec.weight {
            0 => usize::MAX,
            w => self.room / w,
        }
    }

    /// Moves `previous` out to the depot (the budget cannot hold it).
    pub(crate) fn shed_previous(&mut self) {
        let previous = mem::replace(&mut self.previous, Magazine::none());
        self.out.push(previous);
    }

    /// Moves `loaded` out to the depot (the budget cannot hold it).
    pub(crate) fn shed_loaded(&mut self) {
        let loaded = mem::replace(&mut self.loaded, Magazine::none());
        self.out.push(loaded);
    }

    /// An empty magazine for `cap` items: the spare, else an empty from the
    /// depot, else a new one; cut down to `cap` if larger (see [`Growth`]).
    fn empty(&mut self, class: usize, cap: usize, depot: &Depot<T>, guard: &Guard) -> Magazine<T> {
        let mut mag = match mem::replace(&mut self.spare, Magazine::none()) {
            spare if spare.capacity() > 0 => spare,
            _ => depot.pop_empty(class, guard).unwrap_or_else(|| Magazine::with_capacity(cap)),
        };
        mag.shrink_to(cap);
        mag
    }

    /// Keeps an emptied magazine as the spare, or sends it to the depot.
    fn keep_empty(&mut self, mag: Magazine<T>) {
        if self.spare.capacity() == 0 {
            self.spare = mag;
        } else {
            self.out.push(mag);
        }
    }

    /// Both magazines are empty: takes a full one from the depot and returns
    /// one of its items, or `None` when the depot has none (the caller makes
    /// one). The full magazine becomes `loaded`, the emptied `loaded` becomes
    /// `previous`, and the emptied `previous` the spare. A magazine the
    /// budget cannot hold gives up one item and goes back.
    pub(crate) fn refill(&mut self, class: usize, depot: &Depot<T>, counters: &ClassCounters) -> Option<T> {
        let guard = &depot.pin();
        let mut full = depot.pop_full(class, guard)?;
        counters.refills.bump_local(1);
        self.growth.exchanged(Exchange::Refill, self.spec);
        if full.capacity() > self.fit() || self.spec.base == 0 {
            let item = full.pop();
            match full.is_empty() {
                true => self.keep_empty(full),
                false => self.out.push(full),
            }
            return item;
        }
        let emptied = mem::replace(&mut self.previous, mem::replace(&mut self.loaded, full));
        self.keep_empty(emptied);
        if charge(&self.loaded, &self.previous, self.spec.weight) > self.room {
            self.shed_previous();
        }
        self.grow();
        self.loaded.pop()
    }

    /// `loaded` is full (or a placeholder) and `previous` cannot take
    /// `item`: makes room and pushes it. Without a second magazine yet, the
    /// full one becomes `previous` (so a thread flapping at the boundary stays
    /// out of the depot); otherwise the magazine just filled goes to the
    /// depot and an empty one takes its place.
    ///
    /// Unlike Bonwick's layer, which ships the older (`previous`) magazine,
    /// this ships the one just filled: its items were released last and are
    /// likeliest still in cache, and whoever refills from the depot takes the
    /// warm ones. Over the retention limit it keeps the warm magazine and
    /// drops the older one's items instead.
    pub(crate) fn spill(&mut self, class: usize, item: T, depot: &Depot<T>, counters: &ClassCounters) -> Spent<T> {
        let mut spent = Spent::default();
        let guard = &depot.pin();
        let cap = self.growth.cap().min(self.fit());
        if self.spec.base == 0 || cap == 0 {
            // Not cached in threads (by the class or the budget): the item
            // goes to the depot in a magazine of its own.
            let mut mag = self.empty(class, 1, depot, guard);
            let pushed = mag.push(item);
            debug_assert!(pushed.is_ok(), "an empty magazine has room");
            match depot.push_full(class, mag, guard) {
                Ok(()) => counters.spills.bump_local(1),
                Err(mag) => spent.magazines.push(mag),
            }
            return spent;
        }
        if self.previous.capacity() == 0 && self.loaded.capacity() > 0 {
            let fresh = self.empty(class, cap, depot, guard);
            self.previous = mem::replace(&mut self.loaded, fresh);
        } else {
            let full = mem::replace(&mut self.loaded, Magazine::none());
            match depot.push_full(class, full, guard) {
                Ok(()) => {
                    counters.spills.bump_local(1);
                    self.growth.exchanged(Exchange::Spill, self.spec);
                    self.loaded = self.empty(class, self.growth.cap().min(self.fit()), depot, guard);
                }
                Err(full) if full.capacity() == 0 => self.loaded = self.empty(class, cap, depot, guard),
                Err(full) => {
                    let mut older = mem::replace(&mut self.previous, full);
                    spent.items.extend(older.drain());
                    self.loaded = older;
                }
            }
        }
        if charge(&self.loaded, &self.previous, self.spec.weight) > self.room {
            self.shed_previous();
        }
        self.grow();
        if let Err(item) = self.loaded.push(item) {
            // Only when the budget shrank `loaded` to nothing: direct.
            self.shed_loaded();
            spent.items.push(item);
        }
        spent
    }

    /// Grows both magazines to the thread's capacity, within the room: a
    /// no-op once they are that big, so each magazine is grown at most once
    /// per doubling, whichever thread made it.
    fn grow(&mut self) {
        let fit = self.fit();
        let cap = self.growth.cap();
        let loaded = cap.min(fit.saturating_sub(self.previous.capacity()));
        self.loaded.grow_to(loaded);
        let previous = cap.min(fit.saturating_sub(self.loaded.capacity()));
        self.previous.grow_to(previous);
        self.loaded.assert_valid();
        self.previous.assert_valid();
        debug_assert!(self.spare.is_empty());
    }

    /// Every magazine, to flush or drain.
    fn into_magazines(self) -> impl Iterator<Item = Magazine<T>> {
        [self.loaded, self.previous, self.spare].into_iter().chain(self.out)
    }
}

/// Items to drop, and magazines whose items to drop, after the depot's
/// guard is gone: the last step of an exchange, outside every borrow and pin.
#[derive(Debug)]
pub(crate) struct Spent<T> {
    items: Vec<T>,
    magazines: Vec<Magazine<T>>,
}

impl<T> Default for Spent<T> {
    fn default() -> Self {
        Spent { items: Vec::new(), magazines: Vec::new() }
    }
}

impl<T> Spent<T> {
    /// Whether nothing was spent.
    fn is_empty(&self) -> bool {
        self.items.is_empty() && self.magazines.is_empty()
    }

    /// Drops everything; returns how many items were dropped.
    pub(crate) fn drop_all(self) -> u64 {
        let n = self.items.len() + self.magazines.iter().map(Magazine::len).sum::<usize>();
        drop(self);
        n as u64
    }
}

/// Sends `out` to the depot, pinned by `guard`: full magazines within its
/// limit, empty ones to keep. Returns how many full magazines it took, and
/// what it refused.
pub(crate) fn give_back<T: Send + 'static>(
    class: usize,
    out: impl IntoIterator<Item = Magazine<T>>,
    depot: &Depot<T>,
    guard: &Guard,
) -> (u64, Spent<T>) {
    let (mut spilled, mut spent) = (0, Spent::default());
    for mag in out {
        if mag.is_empty() {
            depot.push_empty(class, mag, guard);
        } else {
            match depot.push_full(class, mag, guard) {
                Ok(()) => spilled += 1,
                Err(mag) => spent.magazines.push(mag),
            }
        }
    }
    (spilled, spent)
}

// === the slow paths ===

/// What a slow path's first owner access found: it was served, or it took
/// the class out for an exchange.
enum First<D, X> {
    Done(D),
    Exchange(X),
}

/// A get whose hot path missed: `loaded`, a swap with `previous`, or a refill
/// from the depot. Counts the get, except when it returns `None` (nothing
/// cached: the caller makes an item and counts it).
pub(crate) fn get_slow<T: Send + 'static>(
    access: &impl Access<T>,
    counters: &ClassCounters,
    class: usize,
    depot: &Depot<T>,
) -> Option<T> {
    let first = access.with(|cache| {
        // SAFETY: inside an owner access (`Access::with`).
        match unsafe { cache.swap_pop(class) } {
            Some(item) => First::Done(item),
            // SAFETY: as above.
            None => First::Exchange(unsafe { cache.take(class) }),
        }
    });
    let mut taken = match first {
        First::Done(item) => return Some(item),
        First::Exchange(taken) => taken,
    };
    let item = if taken.spec.pooled { taken.refill(class, depot, counters) } else { None };
    settle(access, counters, class, taken, depot, Spent::default());
    if item.is_some() {
        counters.gets.bump_local(1);
    }
    item
}

/// A release whose hot path found `loaded` full: a swap with `previous`, or a
/// spill to the depot, or (over the depot's limit, or for a class never
/// kept) the item is dropped. Counts the put.
pub(crate) fn put_slow<T: Send + 'static>(
    access: &impl Access<T>,
    counters: &ClassCounters,
    class: usize,
    item: T,
    depot: &Depot<T>,
) {
    let first = access.with(|cache| {
        // SAFETY: inside an owner access (`Access::with`).
        match unsafe { cache.swap_push(class, item) } {
            Ok(()) => First::Done(()),
            // SAFETY: as above.
            Err(item) => First::Exchange((item, unsafe { cache.take(class) })),
        }
    });
    let (item, mut taken) = match first {
        First::Done(()) => return,
        First::Exchange(pair) => pair,
    };
    let spent = if taken.spec.pooled {
        taken.spill(class, item, depot, counters)
    } else {
        Spent { items: vec![item], magazines: Vec::new() }
    };
    counters.puts.bump_local(1);
    settle(access, counters, class, taken, depot, spent);
}

/// Puts `taken` back, gives what does not fit to the depot, then drops what
/// was spent, counted as discarded.
fn settle<T: Send + 'static>(
    access: &impl Access<T>,
    counters: &ClassCounters,
    class: usize,
    taken: Taken<T>,
    depot: &Depot<T>,
    mut spent: Spent<T>,
) {
    // The bug the three steps exist to avoid: what the exchange spent is
    // dropped while the class's cell is still borrowed.
    #[cfg(all(loom, magpool_mutant = "drop_inside_access"))]
    // SAFETY: none: this is the mutant that must fail under loom.
    let spent = {
        access.with(|cache| unsafe { cache.with_borrowed(class, move || drop(spent)) });
        Spent::default()
    };
    // SAFETY: inside an owner access (`Access::with`).
    let rest = access.with(move |cache| unsafe { cache.put(class, taken) });
    let mut rest = rest.into_magazines().filter(|mag| mag.capacity() > 0).peekable();
    if rest.peek().is_some() {
        let (spilled, refused) = give_back(class, rest, depot, &depot.pin());
        counters.spills.bump_local(spilled);
        spent.items.extend(refused.items);
        spent.magazines.extend(refused.magazines);
    }
    if !spent.is_empty() {
        counters.discarded.bump_local(spent.drop_all());
    }
}

/// What [`flush`] does with the items it moves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Full magazines to the depot, within its limit (a thread's exit).
    ToDepot,
    /// Every item dropped, the empty magazines to the depot (the reclaimer,
    /// `trim`).
    Free,
}

/// Moves every class's magazines out of the cache, with pure moves: what
/// [`dispose`] then gives to the depot or drops. Growth goes back to the
/// base: the next owner may play another part (a consumer after a producer
/// is no turn).
pub(crate) fn take_all<T: Send + 'static>(access: &impl Access<T>) -> Vec<(usize, Taken<T>)> {
    let classes = access.with(|cache| cache.len());
    // SAFETY: inside an owner access (`Access::with`).
    (0..classes).map(|class| (class, access.with(|cache| unsafe { cache.take(class) }))).collect()
}

/// Gives what [`take_all`] took to the depot, or drops its items (see
/// [`Flush`]); calls `note(class, spilled, dropped)` for each class that
/// spilled or dropped anything: the caller counts them where it may write
/// (the owner in its own counters, the reclaimer in the shared ones).
///
/// One pin for all of it: at thread exit the thread's own epoch handle may
/// be gone, and every pin would then register a new participant. Items are
/// dropped after it, outside the pin and outside every access.
pub(crate) fn dispose<T: Send + 'static>(
    taken: Vec<(usize, Taken<T>)>,
    depot: &Depot<T>,
    how: Flush,
    mut note: impl FnMut(usize, u64, u64),
) {
    let mut spent_all = Vec::with_capacity(taken.len());
    {
        let guard = depot.pin();
        for (class, taken) in taken {
            let mut spent = Spent::default();
            let mags: Vec<_> = match how {
                Flush::ToDepot => taken.into_magazines().collect(),
                Flush::Free => taken
                    .into_magazines()
                    .map(|mut mag| {
                        spent.items.extend(mag.drain());
                        mag
                    })
                    .collect(),
            };
            let (spilled, refused) = give_back(class, mags, depot, &guard);
            spent.items.extend(refused.items);
            spent.magazines.extend(refused.magazines);
            spent_all.push((class, spilled, spent));
        }
    }
    for (class, spilled, spent) in spent_all {
        let dropped = spent.drop_all();
        if spilled + dropped > 0 {
            note(class, spilled, dropped);
        }
    }
}

/// [`take_all`], then [`dispose`]: a thread's exit flush, `trim`.
pub(crate) fn flush<T: Send + 'static>(
    access: &impl Access<T>,
    depot: &Depot<T>,
    how: Flush,
    note: impl FnMut(usize, u64, u64),
) {
    dispose(take_all(access), depot, how, note);
}

#[cfg(all(test, not(loom)))]
#[path = "exchange_tests.rs"]
mod tests;
