//! The burst→idle chart, in SVG: memory over time from the burst's release
//! on, one solid line per implementation's RSS, magpool's retained bytes
//! dashed, the held level just before 0, and a dotted vertical line at each
//! `reclaim_idle`. Medians over rounds, as in the table.

use std::path::Path;

use plotters::prelude::*;

use crate::idle_report::series;
use crate::report::{describe, Report};

const COLORS: [RGBColor; 8] = [
    RGBColor(200, 40, 40),
    RGBColor(60, 110, 180),
    RGBColor(40, 150, 80),
    RGBColor(230, 140, 20),
    RGBColor(140, 80, 170),
    RGBColor(120, 120, 120),
    RGBColor(30, 170, 170),
    RGBColor(170, 120, 60),
];

/// Draws the burst→idle chart to `path`.
pub(crate) fn draw(r: &Report<'_>, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let all = series(r);
    let Some((_, first)) = all.first() else { return Ok(()) };
    let interval = first.interval_ms as f64;
    let end = first.idle.last().map_or(interval, |p| p.t_ms.max(interval));
    let held_at = -interval / 4.0;
    let top = all.iter().map(|(_, s)| s.peak().rss_kib).max().unwrap_or(1) as f64 / 1024.0 * 1.1;
    let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("burst_idle: {}", describe("burst_idle")), ("sans-serif", 13))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(held_at * 1.5..end * 1.02, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("ms after the burst's release (the first point: all held)")
        .y_desc("MiB")
        .label_style(("sans-serif", 11))
        .draw()?;
    let ticks = (1..).map(|k| k as f64 * interval).take_while(|t| *t <= end + 1.0);
    for t in ticks {
        chart.draw_series(DashedLineSeries::new([(t, 0.0), (t, top)], 2, 4, BLACK.mix(0.3).into()))?;
    }
    let mib = |kib: u64| kib as f64 / 1024.0;
    for (i, (imp, s)) in all.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let rss =
            std::iter::once((held_at, mib(s.held.rss_kib))).chain(s.idle.iter().map(|p| (p.t_ms, mib(p.rss_kib))));
        chart
            .draw_series(LineSeries::new(rss, color.stroke_width(2)))?
            .label(format!("{imp} RSS"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        if s.held.retained_kib.is_some() {
            let retained = std::iter::once((held_at, mib(s.held.retained_kib.unwrap_or(0))))
                .chain(s.idle.iter().map(|p| (p.t_ms, mib(p.retained_kib.unwrap_or(0)))));
            chart
                .draw_series(DashedLineSeries::new(retained, 6, 4, color.stroke_width(2)))?
                .label(format!("{imp} retained"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 6, y)], color.stroke_width(2)));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 11))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    root.present()?;
    Ok(())
}
