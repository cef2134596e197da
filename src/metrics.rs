//! Prometheus export: a `prometheus-client` collector that reads a pool's
//! [`Stats`] at scrape time and encodes them as OpenMetrics families.
//!
//! [`Pool::register_metrics`] puts one [`PoolCollector`] in a registry. At each
//! scrape the collector takes one [`Stats`] snapshot (the same read as
//! [`Pool::stats`]) and writes every family from it, one sample per size class.
//! The pool keeps no metric objects of its own: the counters it already keeps
//! for `stats()` are the whole source, so the get/release path is the same
//! with or without this module.
//!
//! # Invariants
//!
//! - The collector never keeps a pool alive, nor any of its memory: it holds
//!   the pool's id and looks it up in the registry of live pools (`local.rs`)
//!   only for the duration of one `stats()` read. Once the pool is gone the
//!   collector encodes nothing.
//! - All families of one scrape come from one snapshot.
//! - Every sample has a `class` label: the class size in bytes (`"4096"`), or
//!   `"oversized"` for the oversized pseudo-class (`ClassStats::size == 0`).
//! - Counter names here carry no `_total`: the encoder appends it. Families
//!   with a unit name it last (`magpool_retained` + bytes), as OpenMetrics
//!   requires of the encoded name.
//! - No other module names a Prometheus type; `stats.rs` does not know this
//!   one exists (dependencies point metrics → stats only).
//!
//! Called by `prometheus-client`'s encoders, through the registry, at scrape
//! time only.
#![forbid(unsafe_code)]

use std::fmt::{self, Write as _};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::cache::local;
use crate::object::{ObjectPool, Recycle};
use crate::{ClassStats, Pool, Stats};

// === impl Pool ===

impl Pool {
    /// Registers this pool's counters with `registry`: at every scrape, the
    /// registry's encoder reads [`stats`](Pool::stats) and writes the
    /// `magpool_*` families, each sample labelled with its `class` (the class
    /// size in bytes, or `oversized`).
    ///
    /// | family | type | extra label |
    /// |---|---|---|
    /// | `magpool_buffer_allocations_total` | counter | |
    /// | `magpool_buffer_gets_total` | counter | |
    /// | `magpool_buffer_puts_total` | counter | |
    /// | `magpool_buffer_in_use` | gauge | |
    /// | `magpool_buffer_oversized_total` | counter | (`class="oversized"` only) |
    /// | `magpool_buffer_discarded_total` | counter | |
    /// | `magpool_retained_bytes` | gauge | |
    /// | `magpool_depot_magazines` | gauge | `state="full\|empty"` |
    /// | `magpool_magazine_exchanges_total` | counter | `direction="refill\|spill"` |
    /// | `magpool_buffer_hits_total` | counter | `layer="thread\|depot\|allocator"` |
    /// | `magpool_trim_bytes_total` | counter | |
    /// | `magpool_reclaimed_bytes_total` | counter | |
    /// | `magpool_thread_cached_bytes` | gauge | (no `class`: the pool's total) |
    /// | `magpool_reclaims_total` | counter | (no `class`) |
    ///
    /// Hits say which layer served each get: `depot` counts refills (each
    /// serves the get that asked for it), `allocator` counts allocations, and
    /// `thread` is the rest of the gets. Trim and reclaimed bytes are buffers
    /// freed by [`trim`](Pool::trim) and [`reclaim_idle`](Pool::reclaim_idle)
    /// times their class size. Families that cannot apply to oversized
    /// buffers (retained, depot, exchanges, trim, reclaimed) have samples for
    /// the pooled classes only.
    ///
    /// The registry does not keep the pool alive: after the pool is dropped its
    /// collector writes nothing. To export several pools from one registry,
    /// register each in its own sub-registry, with
    /// `registry.sub_registry_with_prefix("name")` (distinct family names) or
    /// `sub_registry_with_label` (one more label; note that `prometheus-client`
    /// then repeats the `# HELP`/`# TYPE` lines per sub-registry, which strict
    /// OpenMetrics parsers reject).
    ///
    /// Cost: registering is O(1). Each scrape costs one [`stats`](Pool::stats)
    /// (O(threads × classes)) and an O(classes) encoding. Nothing changes on
    /// the get/release path: the collector reads the counters the pool keeps
    /// anyway, and no shared state is written.
    ///
    /// # Examples
    ///
    /// ```
    /// use prometheus_client::{encoding::text::encode, registry::Registry};
    ///
    /// let pool = magpool::Pool::new();
    /// let mut registry = Registry::default();
    /// pool.register_metrics(&mut registry);
    /// drop(pool.get(4096));
    ///
    /// let mut text = String::new();
    /// encode(&mut text, &registry)?;
    /// assert!(text.contains("magpool_buffer_gets_total{class=\"4096\"} 1\n"));
    /// assert!(text.ends_with("# EOF\n"));
    /// # Ok::<(), std::fmt::Error>(())
    /// ```
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(PoolCollector { pool: self.id(), objects: None }));
    }
}

// === impl ObjectPool ===

impl<T, R> ObjectPool<T, R>
where
    T: Send + 'static,
    R: Recycle<T> + Send + Sync + 'static,
{
    /// Registers this pool's counters with `registry`, as
    /// [`Pool::register_metrics`] does, with `object` in the family names
    /// where the byte pool has `buffer` (`magpool_object_gets_total`, …) and
    /// one `class`, named after `T` (`class="alloc::vec::Vec<u64>"`); there
    /// is no oversized class. Retained, trim and reclaimed bytes count the
    /// objects' own size (`size_of::<T>()`), not what they point to.
    ///
    /// ```
    /// use prometheus_client::{encoding::text::encode, registry::Registry};
    ///
    /// let pool = magpool::ObjectPool::<String>::new(magpool::Clear::default());
    /// let mut registry = Registry::default();
    /// pool.register_metrics(&mut registry);
    /// drop(pool.get());
    /// let mut text = String::new();
    /// encode(&mut text, &registry)?;
    /// assert!(text.contains("magpool_object_gets_total{class=\"alloc::string::String\"} 1\n"));
    /// # Ok::<(), std::fmt::Error>(())
    /// ```
    pub fn register_metrics(&self, registry: &mut Registry) {
        let objects = Some(std::any::type_name::<T>());
        registry.register_collector(Box::new(PoolCollector { pool: self.id(), objects }));
    }
}

// === impl PoolCollector ===

/// Encodes one pool's [`Stats`] at each scrape.
///
/// # Invariants
///
/// `pool` is an id in the registry of live pools: see the module docs.
/// `objects` names the object type of an object pool (`None`: a byte pool).
#[derive(Debug)]
pub(crate) struct PoolCollector {
    pool: u64,
    objects: Option<&'static str>,
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        // Hold the pool only for the read; if the pool is dropped meanwhile,
        // its memory is freed here, after the read, as it would be there.
        let Some(stats) = local::find_pool(self.pool).map(|pool| pool.stats()) else {
            return Ok(()); // the pool is gone: nothing to report
        };
        FAMILIES.iter().try_for_each(|family| family.encode(&stats, self.objects, &mut encoder))?;
        POOL_FAMILIES.iter().try_for_each(|family| family.encode(&stats, &mut encoder))
    }
}

// === impl Family ===

/// Which classes a family has samples for.
#[derive(Clone, Copy, Debug)]
enum Cover {
    /// Every size class, then the oversized pseudo-class.
    All,
    /// The size classes only: the family cannot apply to oversized buffers.
    Pooled,
    /// The oversized pseudo-class only.
    Oversized,
}

/// Reads one sample's value from a class's counters.
type Read = fn(&ClassStats) -> u64;

/// One metric family: its descriptor and how to read its samples.
#[derive(Debug)]
struct Family {
    /// Without the unit and, for counters, without `_total`: the encoder
    /// appends both.
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
    cover: Cover,
    /// `None`: one sample per class, read by `reads[0]`. `Some(key)`: one
    /// sample per entry of `reads`, labelled `key="<entry name>"`.
    split: Option<&'static str>,
    reads: &'static [(&'static str, Read)],
}

/// Every family, in encoding order.
const FAMILIES: [Family; 12] = [
    Family {
        name: "magpool_buffer_allocations",
        help: "Buffers obtained from the global allocator.",
        unit: None,
        kind: MetricType::Counter,
        cover: Cover::All,
        split: None,
        reads: &[("", |c| c.allocations)],
    },
    Family {
        name: "magpool_buffer_gets",
        help: "Buffers handed out.",
        unit: None,
        kind: MetricType::Counter,
        cover: Cover::All,
        split: None,
        reads: &[("", |c| c.gets)],
    },
    Family {
        name: "magpool_buffer_puts",
        help: "Buffers given back.",
        unit: None,
        kind: MetricType::Counter,
        cover: Cover::All,
        split: None,
        reads: &[("", |c| c.puts)],
    },
    Family {
        name: "magpool_buffer_in_use",
        help: "Buffers handed out and not yet given back.",
        unit: None,
        kind: MetricType::Gauge,
        cover: Cover::All,
        split: None,
        reads: &[("", |c| c.in_use)],
    },
    Family {
        name: "magpool_buffer_oversized",
        help: "Oversized buffers handed out (allocated exactly, freed on release).",
        unit: None,
        kind: MetricType::Counter,
        cover: Cover::Oversized,
        split: None,
        reads: &[("", |c| c.gets)],
    },
    Family {
        name: "magpool_buffer_discarded",
        help: "Buffers freed to the global allocator instead of kept.",
        unit: None,
        kind: MetricType::Counter,
        cover: Cover::All,
        split: None,
        reads: &[("", |c| c.discarded)],
    },
    Family {
        name: "magpool_retained",
        help: "Bytes of free buffers held for reuse, in thread caches and the depot.",
        unit: Some(Unit::Bytes),
        kind: MetricType::Gauge,
        cover: Cover::Pooled,
        split: None,
        reads: &[("", |c| c.retained_bytes)],
    },
    Family {
        name: "magpool_depot_magazines",
        help: "Magazines in the depot now, by state.",
        unit: None,
        kind: MetricType::Gauge,
        cover: Cover::Pooled,
        split: Some("state"),
        reads: &[("full", |c| c.depot_full_magazines), ("empty", |c| c.depot_empty_magazines)],
    },
    Family {
        name: "magpool_magazine_exchanges",
        help: "Full magazines moved between thread caches and the depot: taken (refill) or given (spill).",
        unit: None,
        kind: MetricType::Counter,
        cover: Cover::Pooled,
        split: Some("direction"),
        reads: &[("refill", |c| c.refills), ("spill", |c| c.spills)],
    },
    Family {
        name: "magpool_buffer_hits",
        help: "Gets by the layer that served them: thread cache, depot refill, or global allocator.",
        unit: None,
        kind: MetricType::Counter,
        cover: Cover::All,
        split: Some("layer"),
        reads: &[
            ("thread", |c| c.gets.saturating_sub(c.refills).saturating_sub(c.allocations)),
            ("depot", |c| c.refills),
            ("allocator", |c| c.allocations),
        ],
    },
    Family {
        name: "magpool_trim",
        help: "Bytes of free buffers released to the global allocator by trim.",
        unit: Some(Unit::Bytes),
        kind: MetricType::Counter,
        cover: Cover::Pooled,
        split: None,
        reads: &[("", |c| c.trimmed.saturating_mul(c.size as u64))],
    },
    Family {
        name: "magpool_reclaimed",
        help: "Bytes of free buffers released to the global allocator by reclaim_idle (by hand or in the background).",
        unit: Some(Unit::Bytes),
        kind: MetricType::Counter,
        cover: Cover::Pooled,
        split: None,
        reads: &[("", |c| c.reclaimed.saturating_mul(c.size as u64))],
    },
];

/// A family with one sample for the whole pool, no `class` label.
#[derive(Debug)]
struct PoolFamily {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
    read: fn(&Stats) -> u64,
}

/// Every pool-wide family, encoded after [`FAMILIES`].
const POOL_FAMILIES: [PoolFamily; 2] = [
    PoolFamily {
        name: "magpool_thread_cached",
        help: "Bytes of free buffers held in threads' caches, all threads.",
        unit: Some(Unit::Bytes),
        kind: MetricType::Gauge,
        read: |s| s.thread_cached_bytes,
    },
    PoolFamily {
        name: "magpool_reclaims",
        help: "Calls of reclaim_idle, by hand or by the background reclaimer.",
        unit: None,
        kind: MetricType::Counter,
        read: |s| s.reclaims,
    },
];

impl PoolFamily {
    fn encode(&self, stats: &Stats, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let metric = encoder.encode_descriptor(self.name, self.help, self.unit.as_ref(), self.kind)?;
        let value = (self.read)(stats);
        match self.kind {
            MetricType::Counter => ConstCounter::new(value).encode(metric),
            _ => ConstGauge::new(value).encode(metric),
        }
    }
}

impl Family {
    /// Writes the descriptor, then one sample per covered class (and per
    /// `reads` entry). For an object pool (`objects` names the type) the
    /// families say `object` for `buffer`, the one class is labelled with
    /// the type, and the oversized family is left out.
    fn encode(&self, stats: &Stats, objects: Option<&'static str>, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        if objects.is_some() && matches!(self.cover, Cover::Oversized) {
            return Ok(());
        }
        let (name, help) = match objects {
            None => (self.name.into(), self.help.into()),
            Some(_) => (self.name.replace("buffer", "object"), self.help.replace("Buffers", "Objects")),
        };
        let mut metric = encoder.encode_descriptor(&name, &help, self.unit.as_ref(), self.kind)?;
        let (pooled, oversized) = match (self.cover, objects) {
            (_, Some(_)) => (&stats.classes[..], None),
            (Cover::All, None) => (&stats.classes[..], Some(&stats.oversized_class)),
            (Cover::Pooled, None) => (&stats.classes[..], None),
            (Cover::Oversized, None) => (&[][..], Some(&stats.oversized_class)),
        };
        for class in pooled.iter().chain(oversized) {
            let label = match objects {
                Some(name) => Class::Named(name),
                None => Class::Sized(class.size),
            };
            let by_class = [("class", label)];
            match self.split {
                None => self.sample(&mut metric, &by_class, self.reads[0].1(class))?,
                Some(key) => {
                    for &(value, read) in self.reads {
                        self.sample(&mut metric, &(by_class, [(key, value)]), read(class))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn sample(&self, metric: &mut MetricEncoder<'_>, labels: &impl EncodeLabelSet, value: u64) -> fmt::Result {
        let sample = metric.encode_family(labels)?;
        match self.kind {
            MetricType::Counter => ConstCounter::new(value).encode(sample),
            _ => ConstGauge::new(value).encode(sample),
        }
    }
}

// === impl Class ===

/// The `class` label's value: a class size in bytes, or 0 for oversized;
/// or an object pool's type.
#[derive(Clone, Copy, Debug)]
enum Class {
    Sized(usize),
    Named(&'static str),
}

impl EncodeLabelValue for Class {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> fmt::Result {
        match *self {
            Class::Sized(0) => encoder.write_str("oversized"),
            Class::Sized(size) => write!(encoder, "{size}"),
            Class::Named(name) => encoder.write_str(name),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn scrape(registry: &Registry) -> String {
        let mut text = String::new();
        encode(&mut text, registry).unwrap();
        text
    }

    #[test]
    fn families() {
        let mut names: Vec<_> = FAMILIES.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len(), "family names are unique");
        for f in &FAMILIES {
            assert!(f.name.starts_with("magpool_") && !f.name.ends_with("_total"), "{}", f.name);
            assert!(f.help.ends_with('.'), "{}", f.name);
            assert_eq!(f.split.is_none(), f.reads.len() == 1, "{}", f.name);
        }
    }

    /// The whole exposition of a fresh one-class pool, byte for byte.
    #[test]
    fn golden() {
        let pool = Pool::builder().size_classes([4096]).build().unwrap();
        let mut registry = Registry::default();
        pool.register_metrics(&mut registry);
        drop(pool.get(100));
        let expected = "\
# HELP magpool_buffer_allocations Buffers obtained from the global allocator.
# TYPE magpool_buffer_allocations counter
magpool_buffer_allocations_total{class=\"4096\"} 1
magpool_buffer_allocations_total{class=\"oversized\"} 0
# HELP magpool_buffer_gets Buffers handed out.
# TYPE magpool_buffer_gets counter
magpool_buffer_gets_total{class=\"4096\"} 1
magpool_buffer_gets_total{class=\"oversized\"} 0
# HELP magpool_buffer_puts Buffers given back.
# TYPE magpool_buffer_puts counter
magpool_buffer_puts_total{class=\"4096\"} 1
magpool_buffer_puts_total{class=\"oversized\"} 0
# HELP magpool_buffer_in_use Buffers handed out and not yet given back.
# TYPE magpool_buffer_in_use gauge
magpool_buffer_in_use{class=\"4096\"} 0
magpool_buffer_in_use{class=\"oversized\"} 0
# HELP magpool_buffer_oversized Oversized buffers handed out (allocated exactly, freed on release).
# TYPE magpool_buffer_oversized counter
magpool_buffer_oversized_total{class=\"oversized\"} 0
# HELP magpool_buffer_discarded Buffers freed to the global allocator instead of kept.
# TYPE magpool_buffer_discarded counter
magpool_buffer_discarded_total{class=\"4096\"} 0
magpool_buffer_discarded_total{class=\"oversized\"} 0
# HELP magpool_retained_bytes Bytes of free buffers held for reuse, in thread caches and the depot.
# TYPE magpool_retained_bytes gauge
# UNIT magpool_retained_bytes bytes
magpool_retained_bytes{class=\"4096\"} 4096
# HELP magpool_depot_magazines Magazines in the depot now, by state.
# TYPE magpool_depot_magazines gauge
magpool_depot_magazines{class=\"4096\",state=\"full\"} 0
magpool_depot_magazines{class=\"4096\",state=\"empty\"} 0
# HELP magpool_magazine_exchanges Full magazines moved between thread caches and the depot: taken (refill) or given (spill).
# TYPE magpool_magazine_exchanges counter
magpool_magazine_exchanges_total{class=\"4096\",direction=\"refill\"} 0
magpool_magazine_exchanges_total{class=\"4096\",direction=\"spill\"} 0
# HELP magpool_buffer_hits Gets by the layer that served them: thread cache, depot refill, or global allocator.
# TYPE magpool_buffer_hits counter
magpool_buffer_hits_total{class=\"4096\",layer=\"thread\"} 0
magpool_buffer_hits_total{class=\"4096\",layer=\"depot\"} 0
magpool_buffer_hits_total{class=\"4096\",layer=\"allocator\"} 1
magpool_buffer_hits_total{class=\"oversized\",layer=\"thread\"} 0
magpool_buffer_hits_total{class=\"oversized\",layer=\"depot\"} 0
magpool_buffer_hits_total{class=\"oversized\",layer=\"allocator\"} 0
# HELP magpool_trim_bytes Bytes of free buffers released to the global allocator by trim.
# TYPE magpool_trim_bytes counter
# UNIT magpool_trim_bytes bytes
magpool_trim_bytes_total{class=\"4096\"} 0
# HELP magpool_reclaimed_bytes Bytes of free buffers released to the global allocator by reclaim_idle (by hand or in the background).
# TYPE magpool_reclaimed_bytes counter
# UNIT magpool_reclaimed_bytes bytes
magpool_reclaimed_bytes_total{class=\"4096\"} 0
# HELP magpool_thread_cached_bytes Bytes of free buffers held in threads' caches, all threads.
# TYPE magpool_thread_cached_bytes gauge
# UNIT magpool_thread_cached_bytes bytes
magpool_thread_cached_bytes 4096
# HELP magpool_reclaims Calls of reclaim_idle, by hand or by the background reclaimer.
# TYPE magpool_reclaims counter
magpool_reclaims_total 0
# EOF
";
        assert_eq!(scrape(&registry), expected);
    }

    #[test]
    fn dropped_pool_encodes_nothing() {
        let pool = Pool::new();
        let mut registry = Registry::default();
        pool.register_metrics(&mut registry);
        drop(pool);
        assert_eq!(scrape(&registry), "# EOF\n");
    }
}
