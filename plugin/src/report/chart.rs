//! SVG charts through `plotters`: line charts (training curves), a histogram (embedding norms)
//! and a scatter plot (the embeddings' 2-D projection). Text is laid out by plotters' built-in
//! estimate and drawn by the browser, so no font is needed at run time.

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

const SIZE: (u32, u32) = (560, 320);

/// One named line or point set.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points: points
                .into_iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect(),
        }
    }
}

/// The axes' labels and the chart's title.
pub struct Axes<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
}

fn colour(i: usize) -> RGBColor {
    // Tableau's ten: distinct on screen and in grey print.
    const C: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}

/// The range of `values`, widened when it is a single value so the axis has a length.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.05
    };
    (lo - pad, hi + pad)
}

/// A tick label: at most six decimals, trailing zeros dropped (steps print as 5, not 5.0).
fn tick(v: &f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_owned()
    }
}

fn draw<'a>(svg: &'a mut String) -> DrawingArea<SVGBackend<'a>, Shift> {
    SVGBackend::with_string(svg, SIZE).into_drawing_area()
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a chart: {e}")
}

/// The axes every chart shares: title, labelled axes, light grid, tick labels by [`tick`].
fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    axes: &Axes,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let mut chart = ChartBuilder::on(root)
        .caption(axes.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(76)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(axes.x)
        .y_desc(axes.y)
        .light_line_style(RGBColor(235, 235, 235))
        .label_style(("sans-serif", 15))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// Lines, or points with `points: true` (scatter); a legend when there is more than one series.
pub fn xy(axes: &Axes, series: &[Series], points: bool) -> Result<String> {
    let mut svg = String::new();
    {
        let root = draw(&mut svg);
        root.fill(&WHITE).map_err(err)?;
        let all = || series.iter().flat_map(|s| s.points.iter());
        let (x0, x1) = range(all().map(|p| p.0));
        let (y0, y1) = range(all().map(|p| p.1));
        let mut chart = frame(&root, axes, x0..x1, y0..y1)?;
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            let anno = if points {
                chart
                    .draw_series(
                        s.points
                            .iter()
                            .map(|&p| Circle::new(p, 2, c.mix(0.7).filled())),
                    )
                    .map_err(err)?
            } else {
                chart
                    .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                    .map_err(err)?
            };
            anno.label(s.name.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
            });
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .label_font(("sans-serif", 15))
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A histogram of `values` in `bins` equal bins.
pub fn histogram(axes: &Axes, values: &[f64], bins: usize) -> Result<String> {
    let (lo, hi) = range(values.iter().copied());
    let bins = bins.max(1);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u64; bins];
    for v in values.iter().filter(|v| v.is_finite()) {
        let b = (((v - lo) / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.08;
    let mut svg = String::new();
    {
        let root = draw(&mut svg);
        root.fill(&WHITE).map_err(err)?;
        let mut chart = frame(&root, axes, lo..hi, 0.0..top)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &n)| {
                let x = lo + i as f64 * width;
                Rectangle::new([(x, 0.0), (x + width, n as f64)], colour(0).filled())
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_chart_is_svg_with_its_title_labels_and_one_path_per_series() {
        let axes = Axes {
            title: "Loss & <accuracy>",
            x: "step",
            y: "loss",
        };
        let s = [
            Series::new("train", vec![(1.0, 5.0), (2.0, 4.0), (3.0, f64::NAN)]),
            Series::new("validation", vec![(2.0, 4.5)]),
        ];
        let svg = xy(&axes, &s, false).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        // The title is escaped; both series are in the legend.
        assert!(svg.contains("Loss &amp; &lt;accuracy&gt;"));
        // (plotters writes each text on a line of its own.)
        let text = |t: &str| svg.contains(&format!(">\n{t}\n</text>"));
        assert!(text("train") && text("validation"));
        assert!(text("step") && text("loss"));
        assert_eq!(s[0].points.len(), 2, "the NaN point is dropped");
    }

    #[test]
    fn ticks_drop_trailing_zeros() {
        assert_eq!(tick(&5.0), "5");
        assert_eq!(tick(&0.0001), "0.0001");
        assert_eq!(tick(&-0.0), "0");
        assert_eq!(tick(&2.5e-7), "0");
        assert_eq!(tick(&8000.0), "8000");
    }

    #[test]
    fn histogram_counts_land_in_bins_and_a_single_value_still_draws() {
        let axes = Axes {
            title: "norms",
            x: "L2 norm",
            y: "rows",
        };
        let svg = histogram(&axes, &[1.0, 1.0, 2.0, 3.0], 4).unwrap();
        assert!(svg.matches("<rect").count() >= 4);
        assert!(histogram(&axes, &[7.0], 10).unwrap().starts_with("<svg"));
        assert!(histogram(&axes, &[], 10).unwrap().starts_with("<svg"));
    }
}
