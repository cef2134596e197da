//! `Pool::register_metrics`: the encoded exposition, parsed back with a strict
//! OpenMetrics parser, says exactly what `Pool::stats()` says.
#![cfg(feature = "metrics")]

use std::collections::BTreeMap;

use magpool::{ClassStats, Pool, Stats};
use openmetrics_parser::{openmetrics::parse_openmetrics, MetricsExposition, OpenMetricsType, OpenMetricsValue};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// Encodes `registry` and parses it back. The parser requires the `# EOF`
/// line and checks types, counters' `_total`, units against names, and that
/// no family or label set appears twice.
fn scrape(registry: &Registry) -> (String, Exposition) {
    let mut text = String::new();
    encode(&mut text, registry).expect("encoding into a String cannot fail");
    let parsed = parse_openmetrics(&text).unwrap_or_else(|e| panic!("not OpenMetrics ({e:?}):\n{text}"));
    (text, parsed)
}

/// Every family with a `class` label: name as exposed, type, unit, and the
/// extra label (if any).
const FAMILIES: [(&str, OpenMetricsType, &str, Option<&str>); 12] = [
    ("magpool_buffer_allocations", OpenMetricsType::Counter, "", None),
    ("magpool_buffer_gets", OpenMetricsType::Counter, "", None),
    ("magpool_buffer_puts", OpenMetricsType::Counter, "", None),
    ("magpool_buffer_in_use", OpenMetricsType::Gauge, "", None),
    ("magpool_buffer_oversized", OpenMetricsType::Counter, "", None),
    ("magpool_buffer_discarded", OpenMetricsType::Counter, "", None),
    ("magpool_retained_bytes", OpenMetricsType::Gauge, "bytes", None),
    ("magpool_depot_magazines", OpenMetricsType::Gauge, "", Some("state")),
    ("magpool_magazine_exchanges", OpenMetricsType::Counter, "", Some("direction")),
    ("magpool_buffer_hits", OpenMetricsType::Counter, "", Some("layer")),
    ("magpool_trim_bytes", OpenMetricsType::Counter, "bytes", None),
    ("magpool_reclaimed_bytes", OpenMetricsType::Counter, "bytes", None),
];

/// Every pool-wide family (no label): name as exposed, type, unit, and its
/// value in `Stats`.
type PoolFamily = (&'static str, OpenMetricsType, &'static str, fn(&Stats) -> u64);
const POOL_FAMILIES: [PoolFamily; 2] = [
    ("magpool_thread_cached_bytes", OpenMetricsType::Gauge, "bytes", |s| s.thread_cached_bytes),
    ("magpool_reclaims", OpenMetricsType::Counter, "", |s| s.reclaims),
];

/// Every family a pool exposes.
const ALL: usize = FAMILIES.len() + POOL_FAMILIES.len();

/// The samples `stats` should produce, keyed by (family, class, extra label
/// value): the definitions, written out independently of the crate.
fn expected(stats: &Stats) -> BTreeMap<(&'static str, String, &'static str), u64> {
    let mut want = BTreeMap::new();
    let class = |c: &ClassStats| if c.size == 0 { "oversized".to_string() } else { c.size.to_string() };
    let all = stats.classes.iter().chain(std::iter::once(&stats.oversized_class));
    for c in all {
        let mut put = |family, extra, value| want.insert((family, class(c), extra), value);
        put("magpool_buffer_allocations", "", c.allocations);
        put("magpool_buffer_gets", "", c.gets);
        put("magpool_buffer_puts", "", c.puts);
        put("magpool_buffer_in_use", "", c.in_use);
        put("magpool_buffer_discarded", "", c.discarded);
        put("magpool_buffer_hits", "thread", c.gets.saturating_sub(c.refills).saturating_sub(c.allocations));
        put("magpool_buffer_hits", "depot", c.refills);
        put("magpool_buffer_hits", "allocator", c.allocations);
    }
    for c in &stats.classes {
        let mut put = |family, extra, value| want.insert((family, class(c), extra), value);
        put("magpool_retained_bytes", "", c.retained_bytes);
        put("magpool_depot_magazines", "full", c.depot_full_magazines);
        put("magpool_depot_magazines", "empty", c.depot_empty_magazines);
        put("magpool_magazine_exchanges", "refill", c.refills);
        put("magpool_magazine_exchanges", "spill", c.spills);
        put("magpool_trim_bytes", "", c.trimmed * c.size as u64);
        put("magpool_reclaimed_bytes", "", c.reclaimed * c.size as u64);
    }
    want.insert(("magpool_buffer_oversized", "oversized".into(), ""), stats.oversized);
    for (name, _, _, read) in POOL_FAMILIES {
        want.insert((name, String::new(), ""), read(stats));
    }
    want
}

/// What the exposition says, in the shape of [`expected`], for families
/// named `prefix` + a name in [`FAMILIES`]. Checks each family's type, unit,
/// HELP and label names on the way.
fn found(exposition: &Exposition, prefix: &str) -> BTreeMap<(&'static str, String, &'static str), u64> {
    let mut got = BTreeMap::new();
    for (name, kind, unit, extra) in FAMILIES {
        let full = format!("{prefix}{name}");
        let family = exposition.families.get(&full).unwrap_or_else(|| panic!("no family {full}"));
        assert_eq!(family.family_type, kind, "{full}");
        assert_eq!(family.unit, unit, "{full}");
        assert!(!family.help.is_empty(), "{full} has HELP");
        let mut label_names: Vec<&str> = family.get_label_names().iter().map(String::as_str).collect();
        label_names.sort_unstable();
        let mut want_names: Vec<&str> = std::iter::once("class").chain(extra).collect();
        want_names.sort_unstable();
        assert_eq!(label_names, want_names, "{full}");
        for sample in family.iter_samples() {
            let labels = sample.get_labelset().expect("samples of a parsed family know their label names");
            let class = labels.get_label_value("class").expect("a class label").to_string();
            let extra = match extra.map(|key| labels.get_label_value(key).expect("the extra label")) {
                None => "",
                Some(value) => ["full", "empty", "refill", "spill", "thread", "depot", "allocator"]
                    .into_iter()
                    .find(|known| *known == value)
                    .unwrap_or_else(|| panic!("{full}: unexpected label value {value}")),
            };
            let value = match &sample.value {
                OpenMetricsValue::Counter(c) => c.value.as_i64(),
                OpenMetricsValue::Gauge(g) => g.as_i64(),
                other => panic!("{full}: not a counter or gauge: {other:?}"),
            };
            let value = value.and_then(|v| u64::try_from(v).ok()).expect("a non-negative integer");
            assert!(got.insert((name, class, extra), value).is_none(), "{full}: a label set twice");
        }
    }
    for (name, kind, unit, _) in POOL_FAMILIES {
        let full = format!("{prefix}{name}");
        let family = exposition.families.get(&full).unwrap_or_else(|| panic!("no family {full}"));
        assert_eq!((family.family_type, family.unit.as_str()), (kind, unit), "{full}");
        assert!(family.get_label_names().is_empty(), "{full} is pool-wide");
        let samples: Vec<_> = family.iter_samples().collect();
        assert_eq!(samples.len(), 1, "{full}");
        let value = match &samples[0].value {
            OpenMetricsValue::Counter(c) => c.value.as_i64(),
            OpenMetricsValue::Gauge(g) => g.as_i64(),
            other => panic!("{full}: not a counter or gauge: {other:?}"),
        };
        let value = value.and_then(|v| u64::try_from(v).ok()).expect("a non-negative integer");
        got.insert((name, String::new(), ""), value);
    }
    got
}

/// A single-thread workload that moves every counter: refills and spills
/// (magazines of 2), an oversized buffer, a trim, and 9 buffers still out.
fn workload(pool: &Pool) -> Vec<magpool::Buf<'_>> {
    let burst = |len: usize, n: usize| (0..n).map(|_| pool.get(len)).collect::<Vec<_>>();
    drop(burst(4096, 12)); // 12 allocations; drops fill 2 magazines, spill the rest
    drop(burst(4096, 12)); // served by the thread's magazines, then depot refills
    drop(burst(100, 3)); // the 512 class
    drop(pool.get(5000)); // oversized: allocated, then freed on release
    pool.trim(); // frees the depot and this thread's magazines
    drop(burst(4096, 10)); // allocations again; 3 full magazines spill to the depot

    // 4 from the thread, then two refills: the first keeps the magazine it
    // emptied as the thread's spare, the second leaves one in the depot.
    let mut held = burst(4096, 8);
    held.push(pool.with_capacity(512));
    held
}

fn small_pool() -> Pool {
    Pool::builder().size_classes([512, 4096]).magazine_capacity(2).build().expect("a valid configuration")
}

#[test]
fn values() {
    let pool = small_pool();
    let mut registry = Registry::default();
    pool.register_metrics(&mut registry);
    let held = workload(&pool);

    let (text, exposition) = scrape(&registry);
    let stats = pool.stats();
    assert_eq!(exposition.families.len(), ALL, "{text}");
    assert_eq!(found(&exposition, ""), expected(&stats), "{text}");

    // The workload really moved every counter, so equality above means something.
    let c4k = &stats.classes[1];
    assert!(c4k.refills > 0 && c4k.spills > 0 && c4k.trimmed > 0 && c4k.discarded > 0, "{c4k:?}");
    assert!(c4k.depot_full_magazines > 0 && c4k.depot_empty_magazines > 0 && c4k.retained_bytes > 0, "{c4k:?}");
    assert!(c4k.gets > c4k.refills + c4k.allocations, "some gets hit the thread cache: {c4k:?}");
    assert_eq!((stats.in_use, stats.oversized), (9, 1));
    assert!(text.contains("magpool_buffer_gets_total{class=\"4096\"} "), "{text}");
    assert!(text.contains("magpool_trim_bytes_total{class=\"4096\"} "), "{text}");
    assert!(text.contains("magpool_buffer_oversized_total{class=\"oversized\"} 1\n"), "{text}");
    drop(held);
}

#[test]
fn two_pools_prefix() {
    let (a, b) = (small_pool(), Pool::new());
    let mut registry = Registry::default();
    a.register_metrics(registry.sub_registry_with_prefix("ingest"));
    b.register_metrics(registry.sub_registry_with_prefix("egress"));
    let held = workload(&a);
    drop(b.get(100));

    let (text, exposition) = scrape(&registry);
    assert_eq!(exposition.families.len(), 2 * ALL, "{text}");
    assert_eq!(found(&exposition, "ingest_"), expected(&a.stats()), "{text}");
    assert_eq!(found(&exposition, "egress_"), expected(&b.stats()), "{text}");
    drop(held);
}

/// Sub-registries with a label keep each pool's series apart (no sample line
/// repeats), but prometheus-client writes `# HELP`/`# TYPE` once per
/// sub-registry, so the same family is described twice. OpenMetrics forbids
/// that, and the strict parser says so; prefixes (above) avoid it.
#[test]
fn two_pools_label() {
    let (a, b) = (small_pool(), Pool::new());
    let mut registry = Registry::default();
    a.register_metrics(registry.sub_registry_with_label(("pool".into(), "a".into())));
    b.register_metrics(registry.sub_registry_with_label(("pool".into(), "b".into())));
    drop(a.get(4096));
    drop(b.get(4096));

    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let mut unique = samples.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), samples.len(), "no series appears twice:\n{text}");
    assert!(text.contains("magpool_buffer_gets_total{pool=\"a\",class=\"4096\"} 1\n"), "{text}");
    assert!(text.contains("magpool_buffer_gets_total{pool=\"b\",class=\"4096\"} 1\n"), "{text}");
    assert!(parse_openmetrics(&text).is_err(), "the repeated descriptors are rejected by a strict parser");
}

#[test]
fn dropped() {
    let (gone, kept) = (Pool::new(), small_pool());
    let mut registry = Registry::default();
    gone.register_metrics(registry.sub_registry_with_prefix("gone"));
    kept.register_metrics(registry.sub_registry_with_prefix("kept"));
    drop(gone.get(4096));
    drop(gone); // the registry must not keep it alive, and must not fail

    let (text, exposition) = scrape(&registry);
    assert!(!text.contains("gone_"), "{text}");
    assert_eq!(exposition.families.len(), ALL, "{text}");
    assert_eq!(found(&exposition, "kept_"), expected(&kept.stats()), "{text}");
    drop(kept);
    // Not parsed: an exposition with no family ("# EOF" alone) is valid
    // OpenMetrics, but openmetrics-parser 0.5 rejects it.
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    assert_eq!(text, "# EOF\n");
}

#[test]
fn global() {
    let mut registry = Registry::default();
    magpool::global().register_metrics(&mut registry);
    drop(magpool::get(4096));
    let (_, exposition) = scrape(&registry);
    // Other tests may use the global pool concurrently: check the shape and a
    // lower bound only.
    let got = found(&exposition, "");
    assert!(got[&("magpool_buffer_gets", "4096".to_string(), "")] >= 1);
}

/// An object pool's exposition: the same families, `object` for `buffer`,
/// one class named after the type, no oversized family; values as `stats`.
#[test]
fn object_pool() {
    let pool = magpool::ObjectPool::<Vec<u64>>::new(magpool::Clear::new(8, 64));
    let mut registry = Registry::default();
    pool.register_metrics(&mut registry);
    let held: Vec<_> = (0..40).map(|_| pool.get()).collect();
    drop(held);
    let mut big = pool.get();
    big.extend(0..100); // past the bound: dropped on release
    drop(big);
    let (text, exposition) = scrape(&registry);
    let stats = pool.stats();
    assert_eq!(exposition.families.len(), ALL - 1, "no oversized family:\n{text}");
    let class = "alloc::vec::Vec<u64>";
    for (family, value) in [
        ("magpool_object_gets_total", stats.gets),
        ("magpool_object_puts_total", stats.puts),
        ("magpool_object_allocations_total", stats.allocations),
        ("magpool_object_discarded_total", stats.discarded),
        ("magpool_object_in_use", 0),
    ] {
        let line = format!("{family}{{class=\"{class}\"}} {value}\n");
        assert!(text.contains(&line), "missing {line}{text}");
    }
    assert_eq!((stats.gets, stats.puts), (41, 41));
    assert!(stats.discarded >= 1, "the outgrown Vec was dropped: {stats:?}");
    assert!(!text.contains("magpool_buffer_") && !text.contains("oversized"), "{text}");
}
