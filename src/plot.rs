//! Line charts (PNG or SVG, chosen by the file extension), drawn with plotters.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

/// One named line of a chart.
pub struct Series<'a> {
    /// Legend label (empty: no legend entry).
    pub label: &'a str,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
}

/// Chart size in pixels: 5 × 2.5 like the textbook's figures, at 160 dpi.
pub const SIZE: (u32, u32) = (800, 400);

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(
        path,
        "draw",
        std::io::Error::other(format!(
            "{e} (plots need a font: install fonts-dejavu-core or any TrueType font)"
        )),
    )
}

/// Draws `series` as lines with axis labels into `path` (`.svg` → SVG, anything else → PNG).
pub fn line_chart(path: &Path, x_label: &str, y_label: &str, series: &[Series]) -> Result<()> {
    let is_svg = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if is_svg {
        let root = SVGBackend::new(path, SIZE).into_drawing_area();
        draw(&root, x_label, y_label, series).map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))
    } else {
        let root = BitMapBackend::new(path, SIZE).into_drawing_area();
        draw(&root, x_label, y_label, series).map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))
    }
}

fn bounds(series: &[Series]) -> ((f64, f64), (f64, f64)) {
    let finite = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in finite {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return ((0.0, 1.0), (0.0, 1.0));
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    ((x0, x1.max(x0 + 1e-9)), (y0 - pad, y1 + pad))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let ((x0, x1), (y0, y1)) = bounds(series);
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .light_line_style(WHITE.mix(0.0))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()?;
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
    ];
    for (i, s) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let drawn = chart.draw_series(LineSeries::new(pts, color.stroke_width(2)))?;
        if !s.label.is_empty() {
            drawn
                .label(s.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
    }
    if series.iter().any(|s| !s.label.is_empty()) {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 16))
            .draw()?;
    }
    Ok(())
}

/// A tick label without "-0.0": one decimal, negative zero written as 0.0.
pub fn tick(v: f64) -> String {
    let t = format!("{v:.1}");
    if t == "-0.0" { "0.0".to_string() } else { t }
}

/// One panel of [`training_curves`]: its y-axis label and lines.
pub struct Panel<'a> {
    /// y-axis label (`loss`, `accuracy`, `R²`).
    pub y_label: &'a str,
    /// The lines.
    pub series: &'a [Series<'a>],
}

/// Training curves: a title over two panels side by side (loss; accuracy or R²), each with
/// labelled axes, integer epoch ticks and a legend in headroom above the lines (the y range
/// is extended by 40% at the top, so the legend covers no line). PNG or SVG by extension.
pub fn training_curves(path: &Path, title: &str, left: &Panel, right: &Panel) -> Result<()> {
    let size = (1200, 480);
    let is_svg = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if is_svg {
        let root = SVGBackend::new(path, size).into_drawing_area();
        curves(&root, title, left, right).map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))
    } else {
        let root = BitMapBackend::new(path, size).into_drawing_area();
        curves(&root, title, left, right).map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))
    }
}

fn curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    left: &Panel,
    right: &Panel,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let panels = root.split_evenly((1, 2));
    for (area, panel) in panels.iter().zip([left, right]) {
        let ((x0, x1), (y0, y1)) = bounds(panel.series);
        let y1 = y1 + 0.4 * (y1 - y0);
        let (x0, x1) = (x0.floor(), x1.ceil().max(x0.floor() + 1.0));
        let epochs = (x1 - x0) as usize;
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(panel.y_label)
            .x_labels(epochs.clamp(1, 10) + 1)
            .x_label_formatter(&|v| {
                if (v - v.round()).abs() < 1e-9 {
                    format!("{}", v.round() as i64)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| {
                let t = format!("{v:.3}");
                if t == "-0.000" {
                    "0.000".to_string()
                } else {
                    t
                }
            })
            .light_line_style(WHITE.mix(0.0))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .draw()?;
        let colors = [
            RGBColor(31, 119, 180),
            RGBColor(255, 127, 14),
            RGBColor(44, 160, 44),
            RGBColor(214, 39, 40),
        ];
        for (i, s) in panel.series.iter().enumerate() {
            let color = colors[i % colors.len()];
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            let drawn = chart.draw_series(LineSeries::new(pts, color.stroke_width(2)))?;
            if !s.label.is_empty() {
                drawn
                    .label(s.label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()?;
    }
    Ok(())
}

/// Draws a classifier's decision regions over a 2-D grid with the data points on top.
///
/// `classes[j * resolution + i]` is the predicted class at x = x_range.0 + (i + ½)·dx,
/// y = y_range.0 + (j + ½)·dy; `points` are (x, y, label).
pub fn decision_regions(
    path: &Path,
    x_range: (f64, f64),
    y_range: (f64, f64),
    resolution: usize,
    classes: &[usize],
    points: &[(f64, f64, usize)],
) -> Result<()> {
    let root = BitMapBackend::new(path, (700, 700)).into_drawing_area();
    let draw = || -> std::result::Result<(), DrawingAreaErrorKind<_>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("x1")
            .y_desc("x2")
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .label_style(("sans-serif", 16))
            .draw()?;
        let light = |c: usize| Palette99::pick(c).mix(0.25);
        let dx = (x_range.1 - x_range.0) / resolution as f64;
        let dy = (y_range.1 - y_range.0) / resolution as f64;
        chart.draw_series((0..resolution * resolution).map(|k| {
            let (i, j) = (k % resolution, k / resolution);
            let x0 = x_range.0 + i as f64 * dx;
            let y0 = y_range.0 + j as f64 * dy;
            Rectangle::new([(x0, y0), (x0 + dx, y0 + dy)], light(classes[k]).filled())
        }))?;
        chart.draw_series(
            points
                .iter()
                .map(|&(x, y, c)| Circle::new((x, y), 3, Palette99::pick(c).filled())),
        )?;
        root.present()
    };
    draw().map_err(|e| plot_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_never_show_negative_zero() {
        assert_eq!(tick(-0.04), "0.0");
        assert_eq!(tick(-0.0), "0.0");
        assert_eq!(tick(-0.06), "-0.1");
        assert_eq!(tick(1.25), "1.2");
    }
}
