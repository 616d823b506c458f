//! The per-second series of a run and its SVG chart.

/// Reads one latency figure of a [`Sample`].
pub(crate) type SampleField = fn(&Sample) -> f64;

/// One second of the run.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Sample {
    pub(crate) t: f64,
    pub(crate) put_rps: f64,
    pub(crate) delivered_rps: f64,
    pub(crate) put_p50_ms: f64,
    pub(crate) put_p99_ms: f64,
    pub(crate) delivery_p50_ms: f64,
    pub(crate) delivery_p99_ms: f64,
    /// kpl only: Kinesis records the shards accepted and throttled in this second.
    pub(crate) kpl_put_rps: f64,
    pub(crate) kpl_throttled_rps: f64,
}

/// Draws throughput (top) and latency percentiles (bottom) per second as an SVG at `path`.
pub(crate) fn chart(path: &std::path::Path, title: &str, samples: &[Sample]) -> Result<(), String> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (900, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(310);
    let t_max = samples.last().map(|s| s.t).unwrap_or(1.0).max(1.0);
    let r_max = samples
        .iter()
        .map(|s| s.put_rps.max(s.delivered_rps))
        .fold(1.0, f64::max)
        * 1.1;
    let mut c = ChartBuilder::on(&top)
        .caption(
            format!("{title}: throughput (records/s)"),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..r_max)
        .map_err(|e| e.to_string())?;
    c.configure_mesh()
        .x_desc("seconds")
        .draw()
        .map_err(|e| e.to_string())?;
    c.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.t, s.put_rps)),
        &BLUE,
    ))
    .map_err(|e| e.to_string())?
    .label("put")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    c.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.t, s.delivered_rps)),
        &RED,
    ))
    .map_err(|e| e.to_string())?
    .label("delivered")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    c.configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;

    let finite = |v: f64| if v.is_finite() { Some(v) } else { None };
    let l_max = samples
        .iter()
        .flat_map(|s| [s.put_p99_ms, s.delivery_p99_ms])
        .filter_map(finite)
        .fold(1.0, f64::max)
        * 1.1;
    let mut c = ChartBuilder::on(&bottom)
        .caption("latency (ms)", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..l_max)
        .map_err(|e| e.to_string())?;
    c.configure_mesh()
        .x_desc("seconds")
        .draw()
        .map_err(|e| e.to_string())?;
    let lines: [(&str, SampleField, RGBColor); 4] = [
        ("put p50", |s| s.put_p50_ms, BLUE),
        ("put p99", |s| s.put_p99_ms, CYAN),
        ("put-to-delivery p50", |s| s.delivery_p50_ms, RED),
        ("put-to-delivery p99", |s| s.delivery_p99_ms, MAGENTA),
    ];
    for (label, f, color) in lines {
        let pts: Vec<(f64, f64)> = samples
            .iter()
            .filter_map(|s| finite(f(s)).map(|v| (s.t, v)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        c.draw_series(LineSeries::new(pts, &color))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    c.configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
