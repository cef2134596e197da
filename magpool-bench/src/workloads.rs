//! Every workload of the report, and those of issue 7 and the thread-exit
//! workload of issue 19, each written once against [`Impl`]. Each returns
//! the time of its timed section only: setup (prefilled windows, thread
//! spawns, warm-up) happens outside it, and the multi-thread workloads start
//! and stop the clock at barriers that every thread passes.
//!
//! An *op* is one get and one release; [`Workload::ops_per_iter`] says how
//! many ops one iteration performs (all threads together). The workloads
//! with implementations of their own live beside this file: freeze
//! (`freeze.rs`, issue 16), object batch (`objects.rs`, issue 18) and
//! burst→idle (`idle.rs`, issue 19); so does thread exit (`thread_exit.rs`,
//! issue 19), which runs on any [`Impl`] but times CPU, not wall, time.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::rng::SplitMix64;
use crate::{count, freeze, idle, objects, thread_exit, Bench, Impl, IMPLS};

/// Buffer lengths of the hot, full-write and writer workloads.
pub const SIZES: [usize; 4] = [512, 4 << 10, 64 << 10, 1 << 20];
/// Live buffers in the mixed workloads' FIFO window.
pub const WINDOW: usize = 64;
/// Buffers per burst, and their length.
pub const BURST: (usize, usize) = (1024, 4 << 10);
/// Capacity of the producer→consumer channel.
pub const CHANNEL: usize = 64;
/// Thread counts of the parallel workload.
pub const THREADS: [usize; 2] = [2, 8];
/// Producer/consumer pairs of the producer→consumer workload (1→1, 2→2).
pub const PAIRS: [usize; 2] = [1, 2];
/// Bytes written into each buffer (all of them in full-write).
pub const TOUCH: usize = 64;

const SEED: u64 = 0x6d61_6770_6f6f_6c37;
const MIX_LEN: usize = 1 << 12;

/// One workload at one parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// get(len) → write 64 bytes → drop.
    Hot(usize),
    /// get(len) → write all `len` bytes → drop.
    FullWrite(usize),
    /// with_capacity(len) → append 64 bytes → drop.
    Writer(usize),
    /// The broker-like size mix through a FIFO window of 64 live buffers.
    Mixed,
    /// `n` threads, each running mixed.
    Parallel(usize),
    /// `n` producers get (mixed sizes) and send through a bounded channel;
    /// `n` consumers receive and drop.
    ProducerConsumer(usize),
    /// get 1024 buffers of 4 KiB, then drop them all.
    Burst,
    /// Issue 16: with_capacity(len) → write 64 bytes → freeze into
    /// `bytes::Bytes` → clone → drop both (`freeze.rs`).
    Freeze(usize),
    /// Issue 18: get a pooled `Vec<u64>` → push 64 → release, on one thread
    /// (1) or from a producer to a consumer (2) (`objects.rs`).
    ObjectBatch(usize),
    /// Issue 19: spawn a thread that gets and releases 4 buffers in each of
    /// 3 classes, then exits; join it. One op is one thread's life.
    ThreadExit,
    /// Issue 19: a 256 MiB burst, then idle, `reclaim_idle` at a steady
    /// interval: memory over time, not time per op (`idle.rs`).
    BurstIdle,
}

impl Workload {
    /// Every workload at every parameter, in report order.
    pub fn all() -> Vec<Workload> {
        let mut all = Vec::new();
        all.extend(SIZES.map(Workload::Hot));
        all.extend(SIZES.map(Workload::FullWrite));
        all.extend(SIZES.map(Workload::Writer));
        all.push(Workload::Mixed);
        all.extend(THREADS.map(Workload::Parallel));
        all.extend(PAIRS.map(Workload::ProducerConsumer));
        all.push(Workload::Burst);
        all.extend(freeze::SIZES.map(Workload::Freeze));
        all.extend(objects::THREADS.map(Workload::ObjectBatch));
        all.push(Workload::ThreadExit);
        all.push(Workload::BurstIdle);
        all
    }

    /// Whether this is one of issue 7's workloads (its targets check only
    /// those).
    pub fn from_issue7(&self) -> bool {
        !matches!(self, Workload::Freeze(_) | Workload::ObjectBatch(_) | Workload::ThreadExit | Workload::BurstIdle)
    }

    /// Whether [`run`] runs this workload on any [`Impl`] (the others have
    /// implementations of their own).
    pub fn on_impl(&self) -> bool {
        !matches!(self, Workload::Freeze(_) | Workload::ObjectBatch(_) | Workload::BurstIdle)
    }

    /// The implementations that run this workload, in table order.
    pub fn impls(&self) -> &'static [&'static str] {
        match self {
            Workload::Freeze(_) => &freeze::IMPLS,
            Workload::ObjectBatch(_) => &objects::IMPLS,
            Workload::ThreadExit => &thread_exit::IMPLS,
            Workload::BurstIdle => &idle::IMPLS,
            _ => &IMPLS,
        }
    }

    /// The implementation the tables divide by: the system `Vec`, or for
    /// freeze `BytesMut` on the system allocator.
    pub fn baseline(&self) -> &'static str {
        match self {
            Workload::Freeze(_) => "bytesmut",
            _ => "vec",
        }
    }

    /// Threads that run the timed section.
    pub fn threads(&self) -> usize {
        match *self {
            Workload::Parallel(n) => n,
            Workload::ProducerConsumer(n) => 2 * n,
            Workload::ObjectBatch(n) => n,
            _ => 1,
        }
    }

    /// The criterion group / report table this belongs to.
    pub fn group(&self) -> &'static str {
        match self {
            Workload::Hot(_) => "hot",
            Workload::FullWrite(_) => "full_write",
            Workload::Writer(_) => "writer",
            Workload::Mixed => "mixed",
            Workload::Parallel(_) => "parallel",
            Workload::ProducerConsumer(_) => "producer_consumer",
            Workload::Burst => "burst",
            Workload::Freeze(_) => "freeze",
            Workload::ObjectBatch(_) => "object_batch",
            Workload::ThreadExit => "thread_exit",
            Workload::BurstIdle => "burst_idle",
        }
    }

    /// The parameter within the group: a length, a thread count, the window.
    pub fn param(&self) -> String {
        match *self {
            Workload::Hot(n) | Workload::FullWrite(n) | Workload::Writer(n) | Workload::Freeze(n) => size_label(n),
            Workload::Parallel(n) => format!("{n}t"),
            Workload::ProducerConsumer(n) => format!("{n}to{n}"),
            Workload::Mixed => format!("window{WINDOW}"),
            Workload::Burst => format!("{}x{}", BURST.0, size_label(BURST.1)),
            Workload::ObjectBatch(1) => "1t".into(),
            Workload::ObjectBatch(n) => format!("{p}to{p}", p = n / 2),
            Workload::ThreadExit => format!("{}x{}classes", thread_exit::HELD, thread_exit::SIZES.len()),
            Workload::BurstIdle => {
                format!("{}x{}", size_label(idle::BURST.0 * idle::BURST.1), size_label(idle::BURST.1))
            }
        }
    }

    /// `group/param`, as on the report's command line.
    pub fn key(&self) -> String {
        format!("{}/{}", self.group(), self.param())
    }

    /// The workload whose [`key`](Self::key) is `key`.
    pub fn parse(key: &str) -> Option<Workload> {
        Workload::all().into_iter().find(|w| w.key() == key)
    }

    /// Ops (get + release) in one iteration, all threads together.
    pub fn ops_per_iter(&self) -> u64 {
        match *self {
            Workload::Parallel(n) | Workload::ProducerConsumer(n) => n as u64,
            Workload::Burst => BURST.0 as u64,
            _ => 1,
        }
    }

    /// Whether [`latency`] measures this workload.
    pub fn has_latency(&self) -> bool {
        matches!(self, Workload::Mixed | Workload::ProducerConsumer(_))
    }
}

/// "512B", "4KiB", "1MiB".
pub fn size_label(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}KiB", n >> 10),
        n => format!("{n}B"),
    }
}

/// The mixed workload's lengths: 60% 100–1000 B, 30% 1–16 KiB, 9% 16–256 KiB,
/// 1% 1 MiB, from a seeded generator.
pub fn mixed_sizes(seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64::new(seed);
    (0..MIX_LEN)
        .map(|_| match rng.range(0, 99) {
            0..60 => rng.range(100, 1000),
            60..90 => rng.range(1 << 10, 16 << 10),
            90..99 => rng.range(16 << 10, 256 << 10),
            _ => 1 << 20,
        })
        .collect()
}

/// Runs `iters` iterations of `w` on `imp`; returns the timed section's length.
///
/// # Panics
///
/// On a workload with implementations of its own (see
/// [`Workload::on_impl`]).
pub fn run<I: Impl>(imp: &I, w: Workload, iters: u64) -> Duration {
    match w {
        Workload::Hot(len) => single(iters, || touch(&mut imp.get(black_box(len)), TOUCH)),
        Workload::FullWrite(len) => single(iters, || touch(&mut imp.get(black_box(len)), len)),
        Workload::Writer(len) => single(iters, || {
            let mut b = imp.with_capacity(black_box(len));
            I::extend(&mut b, &[0x5a; TOUCH]);
            black_box(b.as_mut());
        }),
        Workload::Mixed => mixed::<I, NoProbe>(imp, iters).0,
        Workload::Parallel(n) => parallel(imp, n, iters),
        Workload::ProducerConsumer(n) => producer_consumer::<I, NoProbe>(imp, n, iters).0,
        Workload::Burst => burst(imp, iters),
        Workload::ThreadExit => thread_exit::run(imp, iters),
        Workload::Freeze(_) | Workload::ObjectBatch(_) | Workload::BurstIdle => {
            panic!("{} has implementations of its own", w.key())
        }
    }
}

/// An [`Impl`] set up for a workload that [`run`] runs: a [`Bench`].
#[derive(Debug)]
pub struct ImplBench<'a, I> {
    /// The implementation.
    pub imp: &'a I,
    /// The workload, one that [`Workload::on_impl`].
    pub workload: Workload,
}

impl<I: Impl> Bench for ImplBench<'_, I> {
    fn run(&mut self, iters: u64) -> Duration {
        run(self.imp, self.workload, iters)
    }

    fn latency(&mut self, iters: u64) -> Option<Latency> {
        latency(self.imp, self.workload, iters)
    }
}

/// Get and release latencies of `iters` iterations of `w` (mixed or
/// producer→consumer; `None` for the others), each call timed with `Instant`.
pub fn latency<I: Impl>(imp: &I, w: Workload, iters: u64) -> Option<Latency> {
    match w {
        Workload::Mixed => Some(mixed::<I, Latency>(imp, iters).1),
        Workload::ProducerConsumer(n) => Some(producer_consumer::<I, Latency>(imp, n, iters).1),
        _ => None,
    }
}

/// Ops of untimed warm-up that each thread of a multi-thread workload runs
/// before the clock starts (its caches start cold: the threads are new).
fn warm_ops(iters: u64) -> u64 {
    iters.min(4096) + WINDOW as u64
}

#[inline(always)]
pub(crate) fn touch(buf: &mut impl AsMut<[u8]>, n: usize) {
    let bytes = buf.as_mut();
    let n = n.min(bytes.len());
    bytes[..n].fill(0x5a);
    black_box(bytes);
}

pub(crate) fn start_clock() -> Instant {
    count::begin();
    Instant::now()
}

pub(crate) fn stop_clock(start: Instant) -> Duration {
    let t = start.elapsed();
    count::end();
    t
}

pub(crate) fn single(iters: u64, mut op: impl FnMut()) -> Duration {
    let start = start_clock();
    for _ in 0..iters {
        op();
    }
    stop_clock(start)
}

fn burst<I: Impl>(imp: &I, iters: u64) -> Duration {
    let mut held = Vec::with_capacity(BURST.0);
    let start = start_clock();
    for _ in 0..iters {
        for _ in 0..BURST.0 {
            let mut b = imp.get(black_box(BURST.1));
            touch(&mut b, TOUCH);
            held.push(b);
        }
        held.clear();
    }
    stop_clock(start)
}

// === the mixed family ===

/// A thread's stream of mixed lengths.
struct Lengths {
    sizes: Vec<usize>,
    at: usize,
}

impl Lengths {
    fn new(seed: u64) -> Self {
        Lengths { sizes: mixed_sizes(seed), at: 0 }
    }

    #[inline]
    fn next(&mut self) -> usize {
        let len = self.sizes[self.at % MIX_LEN];
        self.at += 1;
        len
    }
}

/// One thread's mixed state: its lengths and its window of live buffers.
struct Mix<'a, I: Impl> {
    imp: &'a I,
    lens: Lengths,
    window: VecDeque<I::Buf<'a>>,
}

impl<'a, I: Impl> Mix<'a, I> {
    fn new(imp: &'a I, seed: u64) -> Self {
        let mut lens = Lengths::new(seed);
        let window = (0..WINDOW).map(|_| imp.get(lens.next())).collect();
        Mix { imp, lens, window }
    }

    #[inline]
    fn ops<P: Probe>(&mut self, n: u64, probe: &mut P) {
        for _ in 0..n {
            let len = self.lens.next();
            if let Some(old) = self.window.pop_front() {
                probe.release(old);
            }
            let mut b = probe.get(|| self.imp.get(len));
            touch(&mut b, TOUCH);
            self.window.push_back(b);
        }
    }
}

fn mixed<I: Impl, P: Probe>(imp: &I, iters: u64) -> (Duration, P) {
    let mut mix = Mix::new(imp, SEED);
    let mut probe = P::default();
    let start = start_clock();
    mix.ops(iters, &mut probe);
    (stop_clock(start), probe)
}

fn parallel<I: Impl>(imp: &I, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads + 1);
    thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                let mut mix = Mix::new(imp, SEED + t as u64);
                mix.ops(warm_ops(iters), &mut NoProbe);
                barrier.wait();
                mix.ops(iters, &mut NoProbe);
                barrier.wait();
            });
        }
        barrier.wait();
        let start = start_clock();
        barrier.wait();
        stop_clock(start)
    })
}

fn producer_consumer<I: Impl, P: Probe>(imp: &I, pairs: usize, iters: u64) -> (Duration, P) {
    let (tx, rx) = crossbeam_channel::bounded::<I::Buf<'_>>(CHANNEL);
    let barrier = Barrier::new(2 * pairs + 1);
    let warm = warm_ops(iters);
    let warm_left = AtomicU64::new(warm * pairs as u64);
    thread::scope(|s| {
        let mut threads = Vec::new();
        for t in 0..pairs {
            let (tx, rx, barrier, warm_left) = (tx.clone(), rx.clone(), &barrier, &warm_left);
            threads.push(s.spawn(move || {
                let mut lens = Lengths::new(SEED + t as u64);
                let mut send = move |probe: &mut P| {
                    let len = lens.next();
                    let mut b = probe.get(|| imp.get(len));
                    touch(&mut b, TOUCH);
                    tx.send(b).expect("consumers outlive producers");
                };
                let (mut scratch, mut probe) = (P::default(), P::default());
                (0..warm).for_each(|_| send(&mut scratch));
                barrier.wait();
                (0..iters).for_each(|_| send(&mut probe));
                drop(send); // and with it the producer's sender
                barrier.wait();
                probe
            }));
            threads.push(s.spawn(move || {
                while warm_left.load(Relaxed) > 0 {
                    if let Ok(b) = rx.recv_timeout(Duration::from_millis(1)) {
                        drop(b);
                        warm_left.fetch_sub(1, Relaxed);
                    }
                }
                barrier.wait();
                let mut probe = P::default();
                for b in rx.iter() {
                    probe.release(b);
                }
                barrier.wait();
                probe
            }));
        }
        drop((tx, rx));
        barrier.wait();
        let start = start_clock();
        barrier.wait();
        let elapsed = stop_clock(start);
        let mut probe = P::default();
        for t in threads {
            probe.absorb(t.join().expect("a workload thread panicked"));
        }
        (elapsed, probe)
    })
}

// === probes ===

/// What the mixed family records around each get and release.
pub trait Probe: Default + Send {
    /// Runs a get.
    fn get<R>(&mut self, get: impl FnOnce() -> R) -> R;
    /// Drops `buf` (the release).
    fn release<B>(&mut self, buf: B);
    /// Adds what another thread's probe recorded.
    fn absorb(&mut self, other: Self);
}

/// Records nothing: the timed runs.
#[derive(Debug, Default)]
pub struct NoProbe;

impl Probe for NoProbe {
    #[inline(always)]
    fn get<R>(&mut self, get: impl FnOnce() -> R) -> R {
        get()
    }

    #[inline(always)]
    fn release<B>(&mut self, buf: B) {
        drop(buf);
    }

    fn absorb(&mut self, _: Self) {}
}

/// Latency of each get and each release, in nanoseconds, timed with
/// `Instant` (which adds its own cost: see [`timer_overhead_ns`]).
#[derive(Debug)]
pub struct Latency {
    /// Get latencies.
    pub get: Histogram<u64>,
    /// Release latencies.
    pub release: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        let h = || Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds");
        Latency { get: h(), release: h() }
    }
}

impl Probe for Latency {
    #[inline]
    fn get<R>(&mut self, get: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = black_box(get());
        self.get.saturating_record(t.elapsed().as_nanos() as u64);
        r
    }

    #[inline]
    fn release<B>(&mut self, buf: B) {
        let t = Instant::now();
        drop(black_box(buf));
        self.release.saturating_record(t.elapsed().as_nanos() as u64);
    }

    fn absorb(&mut self, other: Self) {
        self.get.add(&other.get).expect("same bounds");
        self.release.add(&other.release).expect("same bounds");
    }
}

/// Median cost of timing nothing with `Instant` (two reads), in nanoseconds:
/// the floor under every latency [`Latency`] records.
pub fn timer_overhead_ns() -> u64 {
    let mut h = Latency::default().get;
    for _ in 0..10_000 {
        let t = Instant::now();
        h.saturating_record(black_box(t).elapsed().as_nanos() as u64);
    }
    h.value_at_quantile(0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{for_each_impl, Visitor};

    #[test]
    fn keys_round_trip() {
        for w in Workload::all() {
            assert_eq!(Workload::parse(&w.key()), Some(w));
        }
        assert_eq!(Workload::all().len(), 25);
        assert_eq!(Workload::all().iter().filter(|w| w.from_issue7()).count(), 18);
    }

    #[test]
    fn mix_matches_the_issue() {
        let sizes = mixed_sizes(SEED);
        let share = |lo: usize, hi: usize| sizes.iter().filter(|&&n| (lo..=hi).contains(&n)).count() * 100 / MIX_LEN;
        assert!((57..=63).contains(&share(100, 1000)));
        assert!((27..=33).contains(&share(1 << 10, 16 << 10)));
        assert!((7..=11).contains(&share((16 << 10) + 1, 256 << 10)));
        assert!(sizes.contains(&(1 << 20)));
    }

    struct RunAll;
    impl Visitor for RunAll {
        fn visit<I: Impl>(&mut self, imp: &I) {
            for w in Workload::all().into_iter().filter(|w| w.on_impl() && w.impls().contains(&imp.name())) {
                run(imp, w, 3);
                if let Some(l) = latency(imp, w, 3) {
                    assert_eq!(l.get.len(), 3 * w.ops_per_iter(), "{} {}", imp.name(), w.key());
                    assert_eq!(l.release.len(), 3 * w.ops_per_iter());
                }
            }
        }
    }

    #[test]
    fn every_workload_runs_on_every_impl() {
        for_each_impl(&mut RunAll);
    }

    #[test]
    fn thread_exit_runs_on_its_impls() {
        for name in thread_exit::IMPLS {
            assert!(crate::visit_impl(name, &mut RunAll), "{name}");
        }
    }
}
