//! Models of issue 19's reclaim: the hand-off of an idle thread's cache to
//! the reclaimer (`owner.rs`), and the depot's working-set reclaim racing
//! spills and refills (`depot.rs`).

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

use super::{acquire, collect, full_cache, model, release, Item};
use crate::cache::counters::Reading;
use crate::cache::depot::Depot;
use crate::cache::owner::{Owner, ThreadState};
use crate::sync::barrier;

/// The pool id the model's hint entries use.
const POOL: u64 = 3;
/// The owner thread's serial.
const SERIAL: u64 = 1;

/// Where the model's cache "is", as the hint records it (never dereferenced).
const PLACE: (*const (), *const ()) = (8 as *const (), 16 as *const ());

/// The owner side of one get or release, as `caches.rs` makes it: open the
/// access, validate it (the hint's fast path if it still hits, else the
/// slow path's `Owner::validate`, which writes the hint and waits out a
/// reclaimer), touch the cache, close the access.
fn owner_op(thread: &ThreadState, owner: &Owner, cache: &UnsafeCell<u32>) {
    thread.begin();
    owner.validate(thread, SERIAL, POOL, PLACE, true);
    // SAFETY: inside an owner access: the owner alone touches the cache
    // (what the model checks).
    cache.with_mut(|c| unsafe { *c += 1 });
    thread.end();
}

/// The reclaimer's side: revoke, heavy barrier, and if the owner is idle,
/// take the cache. Returns whether it took it.
fn reclaim(owner: &Owner, cache: &UnsafeCell<u32>) -> bool {
    let Some(held) = owner.revoke(POOL) else { return false };
    if !(barrier::heavy() && held.idle()) {
        return false;
    }
    // SAFETY: the slot is held and its owner idle: the cache is the
    // reclaimer's until `held` drops (what the model checks).
    cache.with_mut(|c| unsafe { *c += 100 });
    true
}

/// The hand-off with the owner starting from `hinted` (or not): two owner
/// accesses against one reclaim; the cache's count says each ran once.
fn hand_off(hinted: bool) {
    let thread = Arc::new(ThreadState::new());
    let owner = Arc::new(Owner::new(SERIAL, &thread));
    let cache = Arc::new(UnsafeCell::new(0u32));
    if hinted {
        thread.remember(POOL, PLACE.0, PLACE.1);
    }
    let reclaimer = {
        let (owner, cache) = (owner.clone(), cache.clone());
        thread::spawn(move || reclaim(&owner, &cache))
    };
    let user = {
        let (thread, owner, cache) = (thread.clone(), owner.clone(), cache.clone());
        thread::spawn(move || {
            owner_op(&thread, &owner, &cache);
            owner_op(&thread, &owner, &cache);
        })
    };
    let took = reclaimer.join().unwrap();
    user.join().unwrap();
    // SAFETY: both threads are joined.
    let count = cache.with(|c| unsafe { *c });
    assert_eq!(count, if took { 102 } else { 2 }, "every access ran once, the take at most once");
    owner.settle(SERIAL); // handed back
}

/// The idle-thread hand-off: the owner makes two gets or releases (each an
/// owner access) while a reclaimer revokes the slot, runs the heavy barrier,
/// and, if the owner is not inside an access, takes the cache. Loom checks
/// that the two never touch the cache at once (the cache is a loom cell: an
/// access without a happens-before edge to the other is a causality
/// violation), and the count at the end says each access ran exactly once.
///
/// The heavy barrier is modelled as what `membarrier` makes of the pair: a
/// `SeqCst` fence on the reclaimer's side and one at the owner's light
/// barrier (`sync::barrier`). Mutants: `reclaim_no_barrier` drops the
/// reclaimer's fence (the store-buffering pattern then lets both sides read
/// the old values), `reclaim_ignores_busy` takes the cache without looking
/// at the owner's flag.
#[test]
fn idle_thread_hand_off() {
    model("idle_thread_hand_off", || hand_off(true));
}

/// The same with no hint at the start (the slot just claimed, the hint
/// evicted by another pool, or revoked by an earlier reclaim that found the
/// owner busy): the owner's first access takes the slow path's validation.
/// A review found that with the hint written after the settle (mutant
/// `remember_after_settle`), the reclaimer, whose revocation found no hint
/// to revoke, could take the cache while the owner's next access ran the
/// hot path on the hint written meanwhile.
#[test]
fn idle_thread_hand_off_cold_hint() {
    model("idle_thread_hand_off_cold_hint", || hand_off(false));
}

/// The depot's working-set reclaim races a spill and a refill: one thread
/// releases into a full cache (a spill) and then empties it with gets (a
/// refill), while another reclaims the depot twice. Every item ends exactly
/// once in a cache, in the depot, in the thread's hands, or freed and
/// counted by the reclaim, and the depot's weight matches what it holds.
/// Mutant: `depot_reclaim_uncounted`: the reclaim frees without counting.
#[test]
fn depot_reclaim_races_spill_and_refill() {
    model("depot_reclaim_races_spill_and_refill", || {
        let depot = Arc::new(Depot::new([1], usize::MAX));
        let cache = full_cache(&depot, 0, 1);
        // A magazine in the depot before anyone runs: a burst to reclaim.
        {
            let burst = full_cache(&depot, 2, 3);
            // SAFETY: this thread owns `burst`.
            unsafe { super::flush(&burst, &depot) };
        }
        assert_eq!(depot.reclaim(0), 0, "the first reclaim starts the interval");

        let worker = {
            let depot = depot.clone();
            thread::spawn(move || {
                // SAFETY: this thread owns the cache.
                unsafe { release(&cache, &depot, Item::new(4)) }; // spills [1]
                let mut got = Vec::new();
                for _ in 0..4 {
                    // SAFETY: as above.
                    got.extend(unsafe { acquire(&cache, &depot) }.map(|item| item.check()));
                }
                (got, cache)
            })
        };
        let freed = depot.reclaim(0) + depot.reclaim(0);
        let (got, cache) = worker.join().unwrap();
        let mut r = Reading::default();
        r.add_put_side(cache.counters(0));
        assert_eq!(r.discarded, 0, "no limit: nothing discarded");
        // SAFETY: joined: this thread owns the cache.
        let mut ids = unsafe { collect(&depot, &[&cache]) };
        ids.extend(got);
        assert_eq!(depot.retained_bytes(), 0, "the depot's weight matches what it held");
        let found = ids.len() as u64;
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len() as u64, found, "no item twice: {ids:?}");
        assert_eq!(found + freed, 5, "found {ids:?}, reclaimed {freed}");
    });
}
