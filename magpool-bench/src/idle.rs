//! Issue 19's burst→idle workload: what memory a process keeps after a burst,
//! over time, once the load has gone idle. A time per op says nothing here;
//! the result is a [`Series`].
//!
//! 1. `reclaim_idle` once (a reclaimer that was already running), then the
//!    steady level: the process's RSS (`VmRSS`) and, where the
//!    implementation says, the bytes it retains ([`Impl::retained_bytes`]).
//! 2. A worker thread gets [`BURST`]: 4096 buffers of 64 KiB (256 MiB), writes
//!    every byte and holds them all (the *held* point), then releases them all
//!    and stays alive, idle: a worker that went quiet, not one that exited.
//! 3. From the release on, the measuring thread samples ten times per
//!    [`INTERVAL`], for [`INTERVALS`] intervals, and calls
//!    [`Impl::reclaim_idle`] at the end of each interval, just before that
//!    sample: the steady interval of issue 19 (magpool's
//!    `Builder::reclaim_interval` runs the same call from a thread of its own,
//!    at a phase the workload would not know).
//!
//! Only magpool has a reclaim call; the peers keep what they keep: the pools
//! every buffer they were given back (the bounded `arrayqueue` up to 128 MiB),
//! the allocators what their own policies return (glibc trims the top of its
//! heap on free; jemalloc and mimalloc purge on their own schedules).

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::Impl;

/// The burst: buffers, and the length of each.
pub const BURST: (usize, usize) = (4096, 64 << 10);
/// Time between two `reclaim_idle` calls.
pub const INTERVAL: Duration = Duration::from_millis(100);
/// Intervals sampled after the burst.
pub const INTERVALS: usize = 4;
/// Samples per interval.
pub const STEPS: usize = 10;
/// The implementations, in table order.
pub const IMPLS: [&str; 8] =
    ["magpool", "vec", "jemalloc", "mimalloc", "lockfree-object-pool", "object-pool", "sharded-slab", "arrayqueue"];

/// Memory at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Milliseconds since the burst's release ended.
    pub t_ms: f64,
    /// The process's resident set (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// What the implementation retains, KiB, where it says.
    pub retained_kib: Option<u64>,
}

/// Memory before, during and after one burst.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The interval between reclaims, ms.
    pub interval_ms: u64,
    /// Before the burst.
    pub steady: Point,
    /// With the whole burst held.
    pub held: Point,
    /// From the release on: [`STEPS`] samples per interval, the first at the
    /// release's end, the `k × STEPS`-th right after the `k`-th reclaim.
    pub idle: Vec<Point>,
}

impl Series {
    /// The sample right after the `k`-th reclaim (0: the release's end).
    pub fn after(&self, k: usize) -> Option<Point> {
        self.idle.get(k * STEPS).copied()
    }

    /// The highest point: the held one, or one during the idle phase.
    pub fn peak(&self) -> Point {
        let mut peak = self.held;
        for p in &self.idle {
            peak.rss_kib = peak.rss_kib.max(p.rss_kib);
            peak.retained_kib = peak.retained_kib.max(p.retained_kib);
        }
        peak
    }

    /// The `idle=` field of a child's sample line.
    pub fn to_field(&self) -> String {
        let point = |p: &Point| {
            let ret = p.retained_kib.map_or("-".to_string(), |r| r.to_string());
            format!("{:.1},{},{ret}", p.t_ms, p.rss_kib)
        };
        let mut s = format!("{}/{}/{}", self.interval_ms, point(&self.steady), point(&self.held));
        for p in &self.idle {
            s += "/";
            s += &point(p);
        }
        s
    }

    /// Parses what [`to_field`](Self::to_field) wrote.
    pub fn parse_field(field: &str) -> Option<Series> {
        let mut parts = field.split('/');
        let interval_ms = parts.next()?.parse().ok()?;
        let points: Vec<Point> = parts
            .map(|p| {
                let mut f = p.split(',');
                let t_ms = f.next()?.parse().ok()?;
                let rss_kib = f.next()?.parse().ok()?;
                let retained_kib = match f.next()? {
                    "-" => None,
                    r => Some(r.parse().ok()?),
                };
                Some(Point { t_ms, rss_kib, retained_kib })
            })
            .collect::<Option<_>>()?;
        let [steady, held, ..] = points[..] else { return None };
        Some(Series { interval_ms, steady, held, idle: points[2..].to_vec() })
    }

    /// Per point, the median over `rounds` of each value (times too): one
    /// series that a chart can draw. `None` when `rounds` is empty or the
    /// rounds differ in shape.
    pub fn median(rounds: &[Series]) -> Option<Series> {
        let first = rounds.first()?;
        if rounds.iter().any(|s| s.idle.len() != first.idle.len() || s.interval_ms != first.interval_ms) {
            return None;
        }
        let med = |pick: &dyn Fn(&Series) -> Point| {
            let pts: Vec<Point> = rounds.iter().map(pick).collect();
            let m = |f: &dyn Fn(&Point) -> f64| crate::child::median(&mut pts.iter().map(f).collect::<Vec<_>>());
            let ret = pts.iter().all(|p| p.retained_kib.is_some());
            Point {
                t_ms: m(&|p| p.t_ms),
                rss_kib: m(&|p| p.rss_kib as f64) as u64,
                retained_kib: ret.then(|| m(&|p| p.retained_kib.unwrap_or(0) as f64) as u64),
            }
        };
        Some(Series {
            interval_ms: first.interval_ms,
            steady: med(&|s| s.steady),
            held: med(&|s| s.held),
            idle: (0..first.idle.len()).map(|i| med(&|s| s.idle[i])).collect(),
        })
    }
}

/// The workload on `imp`: [`BURST`], sampled for [`INTERVALS`] of [`INTERVAL`].
pub fn series<I: Impl>(imp: &I) -> Series {
    series_with(imp, BURST, INTERVAL)
}

/// [`series`] with another burst and interval (the tests use small ones).
pub fn series_with<I: Impl>(imp: &I, burst: (usize, usize), interval: Duration) -> Series {
    let (to_main, from_worker) = mpsc::channel::<()>();
    let (to_worker, from_main) = mpsc::channel::<()>();
    thread::scope(|s| {
        s.spawn(move || {
            let go = |step: &str| from_main.recv().unwrap_or_else(|_| panic!("the sampler says {step}"));
            go("burst");
            let held: Vec<I::Buf<'_>> = (0..burst.0)
                .map(|_| {
                    let mut b = imp.get(burst.1);
                    b.as_mut().fill(0x5a);
                    b
                })
                .collect();
            to_main.send(()).expect("the sampler waits");
            go("release");
            drop(held);
            to_main.send(()).expect("the sampler waits");
            let _idle_until_done = from_main.recv(); // Err once the sampler is done
        });
        let wait = || from_worker.recv().expect("the worker signals");
        let at = |t0: Option<Instant>| sample(imp, t0.map_or(0.0, |t0| t0.elapsed().as_secs_f64() * 1e3));
        imp.reclaim_idle();
        let steady = at(None);
        to_worker.send(()).expect("the worker waits");
        wait();
        let held = at(None);
        to_worker.send(()).expect("the worker waits");
        wait();
        let t0 = Instant::now();
        let mut idle = vec![at(Some(t0))];
        for j in 1..=INTERVALS * STEPS {
            let due = t0 + interval * j as u32 / STEPS as u32;
            thread::sleep(due.saturating_duration_since(Instant::now()));
            if j % STEPS == 0 {
                imp.reclaim_idle();
            }
            idle.push(at(Some(t0)));
        }
        drop(to_worker);
        Series { interval_ms: interval.as_millis() as u64, steady, held, idle }
    })
}

/// The CPU side of giving a burst back, for the criterion benches (where a
/// series over time does not fit): per iteration, untimed, `reclaim_idle`
/// (a tick before the burst) and `burst` got and written on this thread;
/// timed, the burst released and two `reclaim_idle` calls back to back (the
/// two ticks after which magpool has given it back). For an allocator the
/// release is the give-back; the calls do nothing.
pub fn give_back<I: Impl>(imp: &I, burst: (usize, usize), iters: u64) -> Duration {
    let mut timed = Duration::ZERO;
    for _ in 0..iters {
        imp.reclaim_idle();
        let held: Vec<I::Buf<'_>> = (0..burst.0)
            .map(|_| {
                let mut b = imp.get(burst.1);
                b.as_mut().fill(0x5a);
                b
            })
            .collect();
        let start = Instant::now();
        drop(held);
        imp.reclaim_idle();
        imp.reclaim_idle();
        timed += start.elapsed();
    }
    timed
}

fn sample<I: Impl>(imp: &I, t_ms: f64) -> Point {
    Point { t_ms, rss_kib: rss_kib(), retained_kib: imp.retained_bytes().map(|b| b >> 10) }
}

/// This process's resident set (`VmRSS`), KiB, or 0 where
/// `/proc/self/status` does not say.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::{Magpool, SystemVec};

    #[test]
    fn field_round_trips() {
        let p = |t, r, k| Point { t_ms: t, rss_kib: r, retained_kib: k };
        let s = Series {
            interval_ms: 100,
            steady: p(0.0, 10, Some(0)),
            held: p(0.0, 300, Some(0)),
            idle: vec![p(0.5, 200, Some(128)), p(10.0, 12, None)],
        };
        assert_eq!(Series::parse_field(&s.to_field()), Some(s.clone()));
        assert_eq!(s.peak().rss_kib, 300);
        assert_eq!(s.peak().retained_kib, Some(128));
        let m = Series::median(&[s.clone(), s.clone(), s.clone()]).expect("same shape");
        assert_eq!(m.idle[1].retained_kib, None, "not every round says");
        assert_eq!(m.held, s.held);
    }

    #[test]
    fn magpool_gives_back_a_burst_within_two_intervals() {
        let imp = Magpool::new();
        let s = series_with(&imp, (64, 64 << 10), Duration::from_millis(20));
        assert_eq!(s.idle.len(), INTERVALS * STEPS + 1);
        let retained = |k: usize| s.after(k).and_then(|p| p.retained_kib).expect("magpool says");
        assert!(retained(0) >= 1024, "the burst is retained at first: {s:?}");
        assert!(retained(2) < retained(0), "reclaimed after two intervals: {s:?}");
    }

    #[test]
    fn the_system_vec_retains_nothing_it_says() {
        let s = series_with(&SystemVec, (8, 4096), Duration::from_millis(5));
        assert!(s.idle.iter().all(|p| p.retained_kib.is_none()));
        assert!(s.held.rss_kib > 0);
    }
}
