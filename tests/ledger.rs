//! Ledger: a counting global allocator shows what the pool asks of the
//! allocator. After warm-up the hot paths make no allocator call at all, and
//! dropping a pool gives back every block, and every other byte, it took.
//!
//! Threads opt in by arming themselves (a thread-local flag), so that the test
//! harness's own threads never leak into a measurement:
//!
//! - **Calls**: `alloc`/`alloc_zeroed`, `dealloc` and `realloc` made by armed
//!   threads are counted.
//! - **Live allocations**: while the ledger is [`Open`], each allocation an
//!   armed thread makes is recorded with its layout until it is freed, by any
//!   thread. Recording allocations one by one, rather than keeping a net byte
//!   count, makes "back to the baseline" exact: a net count drifts whenever
//!   something allocated before the section (say, the epoch collector's record
//!   of an exited thread) happens to be freed inside it.
//! - **Blocks** are the allocations at least 512 bytes long and aligned as
//!   `block.rs` aligns them (64 bytes below 128 KiB, 16 from there): the layout
//!   of every pooled and oversized buffer, and of nothing else on these paths. Each must be freed once, with its layout.
//!
//! The counters are process-wide, so every test takes [`serial`] first.
#![cfg(not(miri))]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};

use magpool::{Pool, DEFAULT_MAGAZINE_CAPACITY, DEFAULT_SIZE_CLASSES};

use common::XorShift;

// === the counting allocator ===

/// Wraps `System`: counts the calls of armed threads, and records every
/// allocation an armed thread makes until it is freed (by any thread).
struct Counting;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Armed threads' requests above this many bytes fail (return null).
static REFUSE_ABOVE: AtomicUsize = AtomicUsize::new(usize::MAX);

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static DEALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Whether this thread's allocator calls are counted and recorded. No
    /// destructor, so it stays readable through thread-local teardown.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

fn armed() -> bool {
    ARMED.try_with(Cell::get).unwrap_or(false)
}

/// Alignment of a pool block of `size` bytes (`block.rs`: a cache line below
/// 128 KiB, where glibc's `calloc` would memset anyway; 16 from there up).
fn block_align(size: usize) -> usize {
    if size < 128 << 10 {
        64
    } else {
        16
    }
}

/// Whether `layout` is a block's: at least the smallest default class, aligned
/// as blocks are. Nothing else on these paths has that layout (the pool's own
/// structures, magazines and epoch nodes are 8- or 128-aligned).
fn is_block(layout: Layout) -> bool {
    layout.size() >= DEFAULT_SIZE_CLASSES[0] && layout.align() == block_align(layout.size())
}

/// The allocations armed threads made since the ledger opened and that are
/// still live, by address: a hash table with linear probing, in a static so
/// that recording never allocates.
struct Ledger {
    /// `(address, size, align)`; address `EMPTY` or `GONE` marks a free slot.
    slots: [(usize, usize, usize); SLOTS],
    /// Frees of a block-shaped allocation the ledger never saw (a double free).
    unknown_block_frees: u64,
    /// Frees whose layout differs from the allocation's.
    wrong_layout_frees: u64,
    /// Allocations that found the table full (the ledger is then incomplete).
    overflow: u64,
}

const SLOTS: usize = 1 << 16;
const EMPTY: usize = 0;
const GONE: usize = 1;

static OPEN: AtomicBool = AtomicBool::new(false);
static LEDGER: Mutex<Ledger> =
    Mutex::new(Ledger { slots: [(EMPTY, 0, 0); SLOTS], unknown_block_frees: 0, wrong_layout_frees: 0, overflow: 0 });

fn ledger() -> MutexGuard<'static, Ledger> {
    LEDGER.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ledger {
    fn home(addr: usize) -> usize {
        ((addr >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - SLOTS.trailing_zeros())) % SLOTS
    }

    fn insert(&mut self, addr: usize, layout: Layout) {
        let mut i = Ledger::home(addr);
        for _ in 0..SLOTS {
            if matches!(self.slots[i].0, EMPTY | GONE) {
                self.slots[i] = (addr, layout.size(), layout.align());
                return;
            }
            i = (i + 1) % SLOTS;
        }
        self.overflow += 1;
    }

    fn remove(&mut self, addr: usize, layout: Layout) {
        let mut i = Ledger::home(addr);
        for _ in 0..SLOTS {
            match self.slots[i] {
                (EMPTY, ..) => break,
                (a, size, align) if a == addr => {
                    if (size, align) != (layout.size(), layout.align()) {
                        self.wrong_layout_frees += 1;
                    }
                    self.slots[i] = (GONE, 0, 0);
                    return;
                }
                _ => i = (i + 1) % SLOTS,
            }
        }
        if is_block(layout) {
            self.unknown_block_frees += 1;
        }
    }

    fn live(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.slots.iter().copied().filter(|&(addr, ..)| !matches!(addr, EMPTY | GONE))
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the bookkeeping around it neither allocates nor touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if refused(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded from the caller.
        let ptr = unsafe { System.alloc(layout) };
        on_alloc(ptr, layout);
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if refused(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded from the caller.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        on_alloc(ptr, layout);
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_dealloc(ptr, layout);
        if armed() {
            DEALLOCS.fetch_add(1, Relaxed);
        }
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if refused(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded from the caller.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            on_dealloc(ptr, layout);
            if let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) {
                on_alloc(new, new_layout);
            }
        }
        if armed() {
            REALLOCS.fetch_add(1, Relaxed);
        }
        new
    }
}

/// Whether to fail a request of `size` bytes, as an exhausted allocator would.
fn refused(size: usize) -> bool {
    size > REFUSE_ABOVE.load(Relaxed) && armed()
}

fn on_alloc(ptr: *mut u8, layout: Layout) {
    if ptr.is_null() || !armed() {
        return;
    }
    ALLOCS.fetch_add(1, Relaxed);
    if OPEN.load(Relaxed) {
        ledger().insert(ptr as usize, layout);
    }
}

fn on_dealloc(ptr: *mut u8, layout: Layout) {
    if OPEN.load(Relaxed) {
        ledger().remove(ptr as usize, layout);
    }
}

// === measuring ===

/// Allocator calls made by armed threads over a section.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Calls {
    allocs: u64,
    deallocs: u64,
    reallocs: u64,
}

impl Calls {
    fn now() -> Calls {
        Calls { allocs: ALLOCS.load(Relaxed), deallocs: DEALLOCS.load(Relaxed), reallocs: REALLOCS.load(Relaxed) }
    }

    fn since(self, start: Calls) -> Calls {
        let now = Calls::now();
        Calls {
            allocs: now.allocs - start.allocs,
            deallocs: now.deallocs - start.deallocs,
            reallocs: now.reallocs - start.reallocs,
        }
    }
}

/// Counts the calling thread's allocator calls while it lives.
struct Armed;

impl Armed {
    fn on() -> Armed {
        ARMED.with(|a| a.set(true));
        Armed
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        ARMED.with(|a| a.set(false));
    }
}

/// Runs `f` with the calling thread armed; returns the calls it made.
fn calls_in<R>(f: impl FnOnce() -> R) -> (Calls, R) {
    let start = Calls::now();
    let armed = Armed::on();
    let r = f();
    drop(armed);
    (Calls::now().since(start), r)
}

/// What the ledger holds now.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Reading {
    /// Live blocks and their bytes.
    blocks: (usize, usize),
    /// Every live allocation and its bytes, blocks included.
    all: (usize, usize),
    unknown_block_frees: u64,
    wrong_layout_frees: u64,
    overflow: u64,
}

/// Opens the ledger, empty, for the life of the guard; it records what armed
/// threads allocate.
struct Open;

impl Open {
    fn ledger() -> Open {
        let mut l = ledger();
        l.slots.fill((EMPTY, 0, 0));
        (l.unknown_block_frees, l.wrong_layout_frees, l.overflow) = (0, 0, 0);
        OPEN.store(true, Relaxed);
        Open
    }

    fn read(&self) -> Reading {
        let l = ledger();
        let mut r = Reading {
            unknown_block_frees: l.unknown_block_frees,
            wrong_layout_frees: l.wrong_layout_frees,
            overflow: l.overflow,
            ..Reading::default()
        };
        for (_, size, align) in l.live() {
            r.all = (r.all.0 + 1, r.all.1 + size);
            if Layout::from_size_align(size, align).is_ok_and(is_block) {
                r.blocks = (r.blocks.0 + 1, r.blocks.1 + size);
            }
        }
        r
    }

    /// `(size, align)` of every live allocation, for failure messages.
    fn live(&self) -> Vec<(usize, usize)> {
        // Allocate before taking the lock: the allocator takes it too.
        let mut sizes = Vec::with_capacity(SLOTS);
        sizes.extend(ledger().live().map(|(_, size, align)| (size, align)));
        sizes
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.store(false, Relaxed);
    }
}

/// Serialises the tests of this binary: the counters are process-wide.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Magazine capacity of a default class, by the rule `Builder` documents:
/// at most `DEFAULT_MAGAZINE_CAPACITY` buffers and 1 MiB, at least 1.
fn default_magazine(size: usize) -> usize {
    ((1 << 20) / size).clamp(1, DEFAULT_MAGAZINE_CAPACITY)
}

// === tests ===

/// The ledger is not blind: a cold get makes exactly one block, of the class
/// size, and the ledger sees it go when the pool drops.
#[test]
fn cold_get_allocates_one_block() {
    let _serial = serial();
    let ledger = Open::ledger();
    let _armed = Armed::on();
    let pool = Pool::new();
    let buf = pool.get(4096);
    let r = ledger.read();
    assert_eq!(r.blocks, (1, 4096));
    assert!(r.all.0 > 1, "the pool's own structures are counted too: {r:?}");
    drop(buf);
    assert_eq!(ledger.read().blocks, (1, 4096), "a released block stays in the thread cache");
    drop(pool);
    let r = ledger.read();
    assert_eq!(r.blocks, (0, 0), "dropping the pool frees the cached block");
    assert_eq!((r.unknown_block_frees, r.wrong_layout_frees, r.overflow), (0, 0, 0));
}

/// After warm-up, a million get(4096)/drop cycles make no allocator call.
#[test]
fn hot_get_drop() {
    let _serial = serial();
    let pool = Pool::new();
    for _ in 0..2 {
        drop(pool.get(4096));
    }
    let (calls, checksum) = calls_in(|| {
        let mut checksum = 0usize;
        for i in 0..1_000_000usize {
            let mut buf = pool.get(4096);
            buf[i % 4096] = 1; // dirty it, so the next get wipes it
            checksum += buf.len();
        }
        checksum
    });
    assert_eq!(checksum, 4096 * 1_000_000);
    assert_eq!(calls, Calls::default());
    let stats = pool.stats();
    assert_eq!(stats.allocations, 1);
    assert_eq!(stats.gets, 1_000_002);
}

/// A rotating window of live buffers over all nine classes, sizes from 1 B to
/// 16 MiB, never holding more of a class than two magazines hold: after one
/// warm-up round, no allocator call. (With a thread bound that caches every
/// class: by default 4 and 16 MiB buffers go through the depot, whose
/// epoch bookkeeping allocates now and then; `tests/bounds.rs`.)
#[test]
fn mixed_classes() {
    let _serial = serial();
    let pool = Pool::builder().thread_cache_bytes(128 << 20).build().unwrap();
    let classes = pool.size_classes().to_vec();
    assert_eq!(classes, DEFAULT_SIZE_CLASSES);
    // Per class, the buffers that the thread's two magazines can hold.
    let window: Vec<usize> = classes.iter().map(|&size| 2 * default_magazine(size)).collect();
    let mut live: Vec<VecDeque<magpool::Buf<'_>>> = window.iter().map(|&n| VecDeque::with_capacity(n)).collect();

    // Warm-up: make each class's whole window once and give it back, so the
    // thread holds two full magazines per class.
    for (class, &size) in classes.iter().enumerate() {
        live[class].extend((0..window[class]).map(|_| pool.with_capacity(size)));
    }
    live.iter_mut().for_each(VecDeque::clear);
    let warm = pool.stats();

    let steps = 200_000;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let (calls, ()) = calls_in(|| {
        for _ in 0..steps {
            let class = rng.below(classes.len());
            let low = if class == 0 { 0 } else { classes[class - 1] };
            let len = low + 1 + rng.below(classes[class] - low);
            if live[class].len() == window[class] {
                live[class].pop_front();
            }
            // Large buffers through `with_capacity` and a few bytes, so the
            // test spends its time in the pool rather than in memset.
            let mut buf = if len <= 64 << 10 {
                pool.get(len)
            } else {
                let mut buf = pool.with_capacity(len);
                buf.extend_from_slice(&[7; 16]);
                buf
            };
            assert_eq!(buf.capacity(), classes[class]);
            buf[0] = class as u8;
            live[class].push_back(buf);
            // Now and then let a random class shrink, so windows rotate
            // independently of one another.
            if rng.below(4) == 0 {
                live[rng.below(classes.len())].pop_front();
            }
        }
    });
    assert_eq!(calls, Calls::default());
    let stats = pool.stats();
    assert_eq!(stats.allocations, warm.allocations, "no class allocated after warm-up");
    assert_eq!(stats.gets - warm.gets, steps as u64);
    for c in &stats.classes {
        assert_eq!((c.refills, c.spills), (0, 0), "class {} went to the depot", c.size);
    }
}

/// Collects epoch garbage from this thread, a bounded number of times.
///
/// The depot's stack nodes are freed through `crossbeam_epoch`'s deferred
/// destruction on magpool's own collector, which runs only when magpool pins
/// it after the epoch has advanced. Dropping a pool flushes that collector a
/// few dozen times (`Depot`'s drop), so a handful of empty pools dropped here
/// free every node deferred before. Run it disarmed: each collection defers
/// the queue node it pops and a flush allocates a new one, an endless chain of
/// the collector's own bookkeeping that is not the pool's.
fn flush_epoch() {
    for _ in 0..8 {
        drop(Pool::new());
    }
}

/// Warms the process-wide lazies a pool's first use touches (the epoch
/// collector, the registry of live pools, the thread machinery), so that what the
/// ledger records afterwards is the pool's.
fn warm_up_process() {
    std::thread::spawn(|| {
        let pool = Pool::new();
        drop(pool.get(4096));
    })
    .join()
    .unwrap();
    flush_epoch();
}

/// A producer→consumer stream, every release cross-thread, so that every
/// magazine goes through the depot: once warm, it makes next to no allocator
/// calls. The depot recycles its stack nodes, so what remains is
/// crossbeam-epoch's own bookkeeping (a bag of deferred functions per 64
/// magazine pops, about 0.001 calls per buffer here).
#[test]
fn cross_thread_stream() {
    let _serial = serial();
    warm_up_process();
    let pool = Pool::new();
    let (warm, measured) = (50_000u64, 200_000u64);
    let calls = std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<magpool::Buf<'_>>(64);
        let consumer = scope.spawn(move || {
            let _armed = Armed::on();
            rx.into_iter().for_each(drop);
        });
        let pool = &pool;
        let producer = scope.spawn(move || {
            let mut start = None;
            for i in 0..warm + measured {
                if i == warm {
                    start = Some((Calls::now(), Armed::on()));
                }
                let mut buf = pool.with_capacity(4096);
                buf.push(i as u8);
                tx.send(buf).unwrap();
            }
            drop(tx);
            start
        });
        let (start, armed) = producer.join().unwrap().unwrap();
        consumer.join().unwrap();
        let calls = Calls::now().since(start);
        drop(armed);
        calls
    });
    let per_buffer = (calls.allocs + calls.deallocs + calls.reallocs) as f64 / measured as f64;
    assert!(per_buffer < 0.01, "{calls:?} for {measured} buffers: {per_buffer:.4} calls per buffer");
    let s = pool.stats();
    assert!(s.classes[2].refills > measured / 64, "the stream went through the depot: {s:?}");
}

/// Gets and releases across every class and beyond on two threads, handing
/// half the buffers from one thread to the other, enough of them that whole
/// magazines go through the depot.
fn cross_thread_workload(pool: &Pool, seed: u64) {
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<magpool::Buf<'_>>();
        let consumer = scope.spawn(move || {
            let _armed = Armed::on();
            rx.into_iter().for_each(drop);
        });
        let producer = scope.spawn(move || {
            let _armed = Armed::on();
            let mut rng = XorShift(seed);
            let mut held = Vec::new();
            for i in 0..2_000 {
                let class = rng.below(DEFAULT_SIZE_CLASSES.len());
                let mut buf = pool.with_capacity(DEFAULT_SIZE_CLASSES[class] / 2 + 1);
                buf.push(i as u8);
                match i % 3 {
                    0 => tx.send(buf).unwrap(),
                    1 => held.push(buf),
                    _ => drop(buf),
                }
                if held.len() == 100 {
                    held.clear();
                }
            }
            drop(pool.get(20 << 20)); // oversized: allocated exactly, freed on drop
        });
        // Joined explicitly: `scope` alone may return before the threads'
        // thread-locals (and so their exit flush) are destroyed.
        producer.join().unwrap();
        consumer.join().unwrap();
    });
}

/// Dropping a pool frees every block at once: those in the depot, in the
/// dropping thread's cache, and in the caches of threads that are still alive.
/// No epoch flush is needed for blocks: the depot moves every magazine out of
/// its nodes before it defers the nodes.
#[test]
fn drop_frees_every_block() {
    let _serial = serial();
    warm_up_process();
    let ledger = Open::ledger();
    let _armed = Armed::on();
    let pool = Arc::new(Pool::builder().max_retained_bytes(8 << 20).build().unwrap());
    cross_thread_workload(&pool, 1);

    // Two threads fill their caches, let go of the pool, and stay alive.
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_txs, holders): (Vec<_>, Vec<_>) = (0..2)
        .map(|_| {
            let (pool, ready_tx) = (Arc::clone(&pool), ready_tx.clone());
            let (go_tx, go_rx) = mpsc::channel::<()>();
            let holder = std::thread::spawn(move || {
                let _armed = Armed::on();
                let bufs: Vec<_> = (0..40).map(|_| pool.get(16 << 10)).collect();
                drop(bufs);
                drop(pool);
                ready_tx.send(()).unwrap();
                let _ = go_rx.recv(); // returns when the sender is dropped
            });
            (go_tx, holder)
        })
        .unzip();
    ready_rx.iter().take(2).for_each(drop);
    drop((0..70).map(|_| pool.get(1024)).collect::<Vec<_>>());

    let stats = pool.stats();
    assert!(stats.classes.iter().any(|c| c.depot_full_magazines > 0), "the depot holds blocks: {stats:?}");
    assert_eq!(stats.in_use, 0);
    let r = ledger.read();
    assert_eq!(r.blocks.1 as u64, stats.retained_bytes, "the ledger sees every retained block");
    let pool = Arc::into_inner(pool).expect("the holders let go of the pool");
    drop(pool);
    let r = ledger.read();
    assert_eq!(r.blocks, (0, 0), "every block freed on drop");
    assert_eq!((r.unknown_block_frees, r.wrong_layout_frees, r.overflow), (0, 0, 0), "each freed once, as allocated");
    go_txs.into_iter().for_each(drop);
    holders.into_iter().for_each(|h| h.join().unwrap());
}

/// Dropping a pool whose users have exited gives back every byte allocated
/// since it was made: blocks, magazines, depot nodes, per-thread slots.
#[test]
fn drop_frees_every_byte() {
    let _serial = serial();
    warm_up_process();
    let ledger = Open::ledger();
    let armed = Armed::on();
    let pool = Pool::builder().max_retained_bytes(8 << 20).build().unwrap();
    cross_thread_workload(&pool, 2);
    let stats = pool.stats();
    assert!(stats.retained_bytes > 0 && stats.discarded > 0, "the workload kept and freed blocks: {stats:?}");
    assert!(ledger.read().all.0 > 0);
    drop(stats); // a snapshot is an allocation of this section too
    drop(pool);
    drop(armed);
    flush_epoch();
    let r = ledger.read();
    assert_eq!(r.all, (0, 0), "allocations still live (size, align): {:?}", ledger.live());
    assert_eq!((r.unknown_block_frees, r.wrong_layout_frees, r.overflow), (0, 0, 0));
}

/// Makes armed threads' allocations above `bytes` fail while it lives.
struct Refuse;

impl Refuse {
    fn above(bytes: usize) -> Refuse {
        REFUSE_ABOVE.store(bytes, Relaxed);
        Refuse
    }
}

impl Drop for Refuse {
    fn drop(&mut self) {
        REFUSE_ABOVE.store(usize::MAX, Relaxed);
    }
}

/// When the allocator fails, `try_get` and `try_reserve` return
/// `AllocationFailed` and change nothing, `io::Write` reports `OutOfMemory`,
/// and oversized growth that cannot double settles for the exact size.
#[test]
fn allocation_failure() {
    let _serial = serial();
    const MIB: usize = 1 << 20;
    let pool = Pool::new();
    let big = vec![3u8; 41 * MIB];
    let mut buf = pool.with_capacity(24 * MIB);
    buf.resize(24 * MIB, 1);
    let before = pool.stats();

    let _armed = Armed::on();
    let _refuse = Refuse::above(40 * MIB);
    let err = pool.try_get(41 * MIB).unwrap_err();
    assert_eq!(err, magpool::Error::AllocationFailed { size: 41 * MIB });
    assert!(err.to_string().contains(&(41 * MIB).to_string()), "{err}");
    assert_eq!(pool.try_with_capacity(41 * MIB).unwrap_err(), err);
    assert_eq!(buf.try_reserve(17 * MIB).unwrap_err(), magpool::Error::AllocationFailed { size: 41 * MIB });
    let io = std::io::Write::write(&mut buf, &big).unwrap_err();
    assert_eq!(io.kind(), std::io::ErrorKind::OutOfMemory);
    assert_eq!((buf.len(), buf.capacity(), buf[24 * MIB - 1]), (24 * MIB, 24 * MIB, 1), "unchanged");
    assert_eq!(pool.stats(), before, "failed requests change nothing");

    // Doubling to 48 MiB fails; growth falls back to exactly what is needed.
    buf.push(2);
    assert_eq!((buf.len(), buf.capacity()), (24 * MIB + 1, 24 * MIB + 1));
    assert_eq!((buf[0], buf[24 * MIB - 1], buf[24 * MIB]), (1, 1, 2));
    assert!(buf.is_oversized());
}

/// Dropping a pool on the thread that used it, while that thread lives on,
/// gives back every byte allocated since the pool was made.
///
/// The thread's exit hook (`local.rs`) names the pool only by id, and the
/// registry's `Weak` to it goes when the pool drops, so nothing keeps the
/// pool's `Arc` allocation alive while the thread lives on. (Its record of
/// the pool, an id and an address, stays until it prunes dropped pools; that
/// is the thread's own small allocation, made before the ledger opens here.)
#[test]
fn drop_frees_every_byte_on_its_thread() {
    let _serial = serial();
    warm_up_process();
    // Let this thread register with a pool first, so that its list of pools
    // to flush at exit exists before the ledger opens: what the ledger then
    // sees is the pool's alone.
    drop(Pool::new().get(4096));
    let ledger = Open::ledger();
    let armed = Armed::on();
    let pool = Pool::new();
    drop((0..100).map(|i| pool.get(1 + i * 1000)).collect::<Vec<_>>());
    drop(pool);
    drop(armed);
    flush_epoch();
    let r = ledger.read();
    assert_eq!(r.blocks, (0, 0));
    assert_eq!(r.all, (0, 0), "allocations still live (size, align): {:?}", ledger.live());
}
