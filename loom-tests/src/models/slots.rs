//! The pool's slot list (`slots.rs`): a slot made and published by one thread
//! is fully visible to a thread that finds it, whether by a walk (`stats`) or
//! by claiming it after its owner let go (a new thread taking an exited
//! thread's slot).

use loom::cell::UnsafeCell;
use loom::sync::atomic::{
    AtomicBool,
    Ordering::{Acquire, Release},
};
use loom::sync::Arc;
use loom::thread;

use super::model;
use crate::cache::slots::Slots;

/// A stand-in for a pool's slot: `made` is written only when the slot is
/// made (before the list publishes it), `data` only by whoever holds the slot
/// (as a thread cache is), and `free` is taken by a claimant (as `owner` is
/// in `caches.rs`).
struct Slot {
    made: UnsafeCell<u32>,
    data: UnsafeCell<u32>,
    free: AtomicBool,
}

impl Slot {
    fn new() -> Self {
        Slot { made: UnsafeCell::new(7), data: UnsafeCell::new(0), free: AtomicBool::new(false) }
    }
}

fn take(slot: &Slot) -> bool {
    slot.free.compare_exchange(true, false, Acquire, Acquire).is_ok()
}

/// One thread links a slot, writes it, and lets it go; another walks the list
/// and then claims a slot. The walker reads `made` of every slot it reaches
/// through `head`, so the maker's initialisation must be visible to it (the
/// mutant `slots_publish_relaxed` breaks this); a claimant that takes the
/// maker's slot writes `data` after the maker did. At the end, two threads
/// made one or two slots, never more.
#[test]
fn publish_walk_and_claim() {
    model("slots publish_walk_and_claim", || {
        let slots = Arc::new(Slots::<Slot>::new());
        let maker = {
            let slots = Arc::clone(&slots);
            thread::spawn(move || {
                let mine = slots.claim(take, Slot::new);
                // SAFETY: the maker holds its slot until it sets `free`.
                mine.data.with_mut(|d| unsafe { *d += 1 });
                mine.free.store(true, Release); // it exits, letting the slot go
            })
        };
        // The other thread, spawned as well (a reader on the model's main
        // thread is explored only before or after the others, README).
        let walker = {
            let slots = Arc::clone(&slots);
            thread::spawn(move || {
                for slot in slots.iter() {
                    // SAFETY: `made` is written only before the slot is
                    // published.
                    let made = slot.made.with(|m| unsafe { *m });
                    assert_eq!(made, 7, "a slot seen before it was made");
                }
                let mine = slots.claim(take, Slot::new);
                // SAFETY: this thread holds the slot it claimed.
                mine.data.with_mut(|d| unsafe { *d += 1 });
            })
        };
        maker.join().unwrap();
        walker.join().unwrap();
        let n = slots.iter().count();
        assert!(n == 1 || n == 2, "{n} slots for two threads");
    });
}
