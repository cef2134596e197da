//! One horizontal bar chart per workload, in SVG: for each parameter, a bar
//! per implementation (fastest first), its length the median ns per op on a
//! log scale, magpool in red (its variants, such as `magpool-uncached`, a
//! lighter red).

use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::report::{describe, ns, unit, Report};

const ROW: u32 = 16;

/// Draws `group` to `path`.
pub(crate) fn draw(r: &Report<'_>, group: &str, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut rows: Vec<(String, &'static str, f64)> = Vec::new();
    for w in r.workloads(group) {
        for (imp, c) in r.ranked(w) {
            rows.push((w.param(), imp, c.median));
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let lo = rows.iter().map(|x| x.2).fold(f64::MAX, f64::min) / 2.0;
    let hi = rows.iter().map(|x| x.2).fold(0.0, f64::max) * 3.0;
    let n = rows.len() as u32;
    let root = SVGBackend::new(path, (960, 90 + n * ROW)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{group}: {}", caption(group)), ("sans-serif", 13))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(230)
        .build_cartesian_2d((lo..hi).log_scale(), (0..n - 1).into_segmented())?;
    let label = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
            rows.get((n - 1 - (*i).min(n - 1)) as usize).map_or(String::new(), |(p, imp, _)| format!("{p}  {imp}"))
        }
        SegmentValue::Last => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n as usize)
        .y_label_formatter(&label)
        .x_labels(8)
        .x_desc(match unit(group) {
            "ns/op" if r.workloads(group).iter().all(|w| w.from_issue7()) => "median ns per get+release (log scale)",
            "ns/op" => "median ns per op (log scale)",
            _ => "median CPU ns per thread (log scale)",
        })
        .x_label_formatter(&|x| ns(*x))
        .label_style(("sans-serif", 11))
        .draw()?;
    chart.draw_series(rows.iter().enumerate().map(|(k, (_, imp, v))| {
        let y = n - 1 - k as u32;
        let color = match *imp {
            "magpool" => RGBColor(200, 40, 40),
            i if i.starts_with("magpool") => RGBColor(230, 120, 120),
            _ => RGBColor(90, 120, 170),
        };
        let mut bar = Rectangle::new([(lo, SegmentValue::Exact(y)), (*v, SegmentValue::Exact(y + 1))], color.filled());
        bar.set_margin(2, 2, 0, 0);
        bar
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(k, (_, _, v))| {
        let y = n - 1 - k as u32;
        Text::new(format!(" {}", ns(*v)), (*v, SegmentValue::CenterOf(y)), ("sans-serif", 10).into_font())
    }))?;
    root.present()?;
    Ok(())
}

/// The chart's title: the table's description, shortened where it would not
/// fit the chart's width.
fn caption(group: &str) -> String {
    match group {
        "freeze" => {
            "with_capacity(len) → write 64 B → freeze → clone → drop both; -jemalloc/-mimalloc: global allocator".into()
        }
        "object_batch" => "pooled Vec<u64>: get → push 64 → read → release; 1t, and producer → consumer".into(),
        "thread_exit" => "spawn → 4 gets and releases in each of 3 classes → exit → join, in process CPU time".into(),
        _ => describe(group),
    }
}
