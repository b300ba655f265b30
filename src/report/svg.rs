//! Report: a small SVG line-plot writer — axes with round-number ticks, a title, axis
//! labels, a legend and several series (each optionally with a shaded band, e.g. ±std).
//! The same SVG is inlined in the HTML reports, written as a `.svg` file, and rasterised
//! to PNG (`report::png`), so the three always agree.

use std::fmt::Write as _;

/// Colours of successive series (Tableau 10: distinct, and readable on white).
const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// The font stack of every text element. PNG rendering has DejaVu Sans embedded, in its
/// regular face only: the plots use no bold or italic, so browsers and PNGs agree.
pub const FONT_FAMILY: &str = "DejaVu Sans, Verdana, Arial, sans-serif";

pub(crate) const WIDTH: f64 = 640.0;
const PLOT_HEIGHT: f64 = 300.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 44.0;
/// Below the plot area: tick labels and the x label.
const BELOW: f64 = 52.0;
const LEGEND_ROW: f64 = 20.0;
/// Series with at most this many points also get a marker at each point.
const MARKERS_UP_TO: usize = 40;

/// One line of a plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// (x, y); non-finite y values break the line.
    pub points: Vec<(f64, f64)>,
    /// (x, low, high): a shaded band drawn under the line, e.g. mean ± std over seeds.
    pub band: Vec<(f64, f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            band: Vec::new(),
        }
    }

    pub fn with_band(mut self, band: Vec<(f64, f64, f64)>) -> Self {
        self.band = band;
        self
    }

    fn finite_points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    }
}

/// A line plot: title, axis labels and series.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

impl LinePlot {
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
        }
    }

    /// Adds a series; one without a single finite point is left out.
    pub fn push(&mut self, series: Series) {
        if series.finite_points().next().is_some() {
            self.series.push(series);
        }
    }

    /// Whether there is nothing to draw.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// A standalone SVG document (with its XML namespace), for `.svg` files and PNG.
    pub fn to_svg_document(&self) -> String {
        self.render(true)
    }

    /// The same drawing as an `<svg>` element to inline in HTML, where the namespace is
    /// implied (so the report names no URL at all).
    pub fn to_svg_inline(&self) -> String {
        self.render(false)
    }

    fn render(&self, namespace: bool) -> String {
        let legend = self.legend_layout();
        let height = TOP + PLOT_HEIGHT + BELOW + legend.rows as f64 * LEGEND_ROW + 8.0;
        let plot_w = WIDTH - LEFT - RIGHT;
        let (x_axis, y_axis) = self.axes();
        let sx = |x: f64| LEFT + (x - x_axis.min) / x_axis.span() * plot_w;
        let sy = |y: f64| TOP + PLOT_HEIGHT - (y - y_axis.min) / y_axis.span() * PLOT_HEIGHT;

        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg{} width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{FONT_FAMILY}" role="img" aria-label="{}">"#,
            if namespace {
                r#" xmlns="http://www.w3.org/2000/svg""#
            } else {
                ""
            },
            escape(&self.title)
        );
        let _ = write!(
            svg,
            r##"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>"##
        );
        let _ = write!(
            svg,
            r##"<text x="{LEFT}" y="24" font-size="16" fill="#111111">{}</text>"##,
            escape(&self.title)
        );

        // Grid and ticks.
        for tick in &y_axis.ticks {
            let y = sy(*tick);
            let _ = write!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="#e6e6e6" stroke-width="1"/><text x="{:.2}" y="{:.2}" font-size="12" text-anchor="end" fill="#444444">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                y + 4.0,
                escape(&y_axis.label(*tick))
            );
        }
        for tick in &x_axis.ticks {
            let x = sx(*tick);
            let bottom = TOP + PLOT_HEIGHT;
            let _ = write!(
                svg,
                r##"<line x1="{x:.2}" y1="{TOP}" x2="{x:.2}" y2="{bottom}" stroke="#f0f0f0" stroke-width="1"/><line x1="{x:.2}" y1="{bottom}" x2="{x:.2}" y2="{:.2}" stroke="#444444" stroke-width="1"/><text x="{x:.2}" y="{:.2}" font-size="12" text-anchor="middle" fill="#444444">{}</text>"##,
                bottom + 4.0,
                bottom + 17.0,
                escape(&x_axis.label(*tick))
            );
        }
        // Axes.
        let _ = write!(
            svg,
            r##"<path d="M{LEFT},{TOP} V{:.2} H{:.2}" fill="none" stroke="#444444" stroke-width="1"/>"##,
            TOP + PLOT_HEIGHT,
            LEFT + plot_w
        );
        let _ = write!(
            svg,
            r##"<text x="{:.2}" y="{:.2}" font-size="13" text-anchor="middle" fill="#222222">{}</text>"##,
            LEFT + plot_w / 2.0,
            TOP + PLOT_HEIGHT + 40.0,
            escape(&self.x_label)
        );
        let cy = TOP + PLOT_HEIGHT / 2.0;
        let _ = write!(
            svg,
            r##"<text x="18" y="{cy:.2}" font-size="13" text-anchor="middle" fill="#222222" transform="rotate(-90 18 {cy:.2})">{}</text>"##,
            escape(&self.y_label)
        );

        // Bands first, so every line stays visible above them.
        for (i, series) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let band: Vec<&(f64, f64, f64)> = series
                .band
                .iter()
                .filter(|(x, lo, hi)| x.is_finite() && lo.is_finite() && hi.is_finite())
                .collect();
            if band.len() >= 2 {
                let mut d = String::new();
                for (j, (x, _, hi)) in band.iter().enumerate() {
                    let _ = write!(
                        d,
                        "{}{:.2},{:.2} ",
                        if j == 0 { 'M' } else { 'L' },
                        sx(*x),
                        sy(*hi)
                    );
                }
                for (x, lo, _) in band.iter().rev() {
                    let _ = write!(d, "L{:.2},{:.2} ", sx(*x), sy(*lo));
                }
                let _ = write!(
                    svg,
                    r#"<path d="{}Z" fill="{colour}" fill-opacity="0.18" stroke="none"/>"#,
                    d
                );
            }
        }
        for (i, series) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let mut d = String::new();
            let mut pen_down = false;
            for (x, y) in &series.points {
                if !(x.is_finite() && y.is_finite()) {
                    pen_down = false;
                    continue;
                }
                let _ = write!(
                    d,
                    "{}{:.2},{:.2} ",
                    if pen_down { 'L' } else { 'M' },
                    sx(*x),
                    sy(*y)
                );
                pen_down = true;
            }
            let _ = write!(
                svg,
                r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>"#,
                d.trim_end()
            );
            let finite: Vec<(f64, f64)> = series.finite_points().collect();
            if finite.len() <= MARKERS_UP_TO {
                for (x, y) in finite {
                    let _ = write!(
                        svg,
                        r#"<circle cx="{:.2}" cy="{:.2}" r="3" fill="{colour}"/>"#,
                        sx(x),
                        sy(y)
                    );
                }
            }
        }

        // Legend, in rows under the x label.
        let legend_top = TOP + PLOT_HEIGHT + BELOW;
        for (i, (series, (row, x))) in self.series.iter().zip(&legend.positions).enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let y = legend_top + *row as f64 * LEGEND_ROW;
            let _ = write!(
                svg,
                r##"<line x1="{x:.2}" y1="{:.2}" x2="{:.2}" y2="{:.2}" stroke="{colour}" stroke-width="3"/><text x="{:.2}" y="{:.2}" font-size="12" fill="#222222">{}</text>"##,
                y + 6.0,
                x + 22.0,
                y + 6.0,
                x + 28.0,
                y + 10.0,
                escape(&series.name)
            );
        }
        svg.push_str("</svg>");
        svg
    }

    fn legend_layout(&self) -> Legend {
        let mut positions = Vec::with_capacity(self.series.len());
        let (mut row, mut x) = (0usize, LEFT);
        for series in &self.series {
            let width = 28.0 + text_width(&series.name, 12.0) + 22.0;
            if x > LEFT && x + width > WIDTH - RIGHT {
                row += 1;
                x = LEFT;
            }
            positions.push((row, x));
            x += width;
        }
        Legend {
            rows: if self.series.is_empty() { 0 } else { row + 1 },
            positions,
        }
    }

    fn axes(&self) -> (Axis, Axis) {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for series in &self.series {
            for (x, y) in series.finite_points() {
                xs.push(x);
                ys.push(y);
            }
            for (x, lo, hi) in &series.band {
                if x.is_finite() && lo.is_finite() && hi.is_finite() {
                    ys.push(*lo);
                    ys.push(*hi);
                }
            }
        }
        // Steps are whole numbers: no tick between two steps.
        let whole = xs.iter().all(|x| x.fract() == 0.0);
        (Axis::fit(&xs, 7, whole), Axis::fit(&ys, 6, false))
    }
}

struct Legend {
    rows: usize,
    /// (row, x) of each series' entry.
    positions: Vec<(usize, f64)>,
}

/// An axis: its range and its ticks, at a round step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Axis {
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) step: f64,
    pub(crate) ticks: Vec<f64>,
}

impl Axis {
    /// The axis covering `values` with about `target` ticks at a step of 1, 2, 2.5 or 5
    /// times a power of ten (at least 1 when `whole`); the range is widened to whole
    /// steps.
    pub(crate) fn fit(values: &[f64], target: usize, whole: bool) -> Self {
        let (mut lo, mut hi) = values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            lo -= pad;
            hi += pad;
        }
        let mut step = nice_step((hi - lo) / target.max(2) as f64);
        if whole {
            step = step.max(1.0).round().max(1.0);
            if step == 3.0 || step == 4.0 {
                step = 5.0;
            }
        }
        let min = (lo / step).floor() * step;
        let max = (hi / step).ceil() * step;
        let count = ((max - min) / step).round() as usize;
        let ticks = (0..=count).map(|i| min + i as f64 * step).collect();
        Self {
            min,
            max,
            step,
            ticks,
        }
    }

    fn span(&self) -> f64 {
        (self.max - self.min).max(f64::MIN_POSITIVE)
    }

    /// A tick label with as many decimals as the step needs.
    pub(crate) fn label(&self, value: f64) -> String {
        let magnitude = self.step.abs().log10().floor();
        if self.step < 1e-3 || self.max.abs().max(self.min.abs()) >= 1e6 {
            return format!("{value:.1e}");
        }
        // 2.5 × 10^k needs one decimal more than 10^k when k ≤ 0 (0.25, 2.5; not 250).
        let mantissa = self.step / 10f64.powf(magnitude);
        let extra = usize::from((mantissa - 2.5).abs() < 1e-9 && magnitude <= 0.0);
        let decimals = (-magnitude).max(0.0) as usize + extra;
        let text = format!("{value:.decimals$}");
        // No "-0" or "-0.00".
        if text
            .trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            text.trim_start_matches('-').to_string()
        } else {
            text
        }
    }
}

/// The smallest of 1, 2, 2.5, 5 (× 10^k) at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// An estimate of the width of `text` in DejaVu Sans at `size` px (its average advance is
/// about 0.6 em), enough to lay the legend out.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.62
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        let axis = Axis::fit(&[0.13, 0.87], 6, false);
        assert_eq!(axis.step, 0.2);
        assert!(axis.min <= 0.13 && axis.max >= 0.87);
        assert_eq!(axis.ticks.len(), 6);
        let labels: Vec<String> = axis.ticks.iter().map(|t| axis.label(*t)).collect();
        assert_eq!(labels, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);

        let steps = Axis::fit(&[1.0, 300.0], 8, false);
        assert_eq!(steps.step, 50.0);
        assert_eq!(steps.label(150.0), "150");

        let quarter = Axis::fit(&[0.0, 1.0], 4, false);
        assert_eq!(quarter.step, 0.25);
        assert_eq!(quarter.label(0.25), "0.25");
    }

    #[test]
    fn whole_steps_get_whole_ticks() {
        let axis = Axis::fit(&[1.0, 4.0], 7, true);
        assert_eq!(axis.step, 1.0);
        let labels: Vec<String> = axis.ticks.iter().map(|t| axis.label(*t)).collect();
        assert_eq!(labels, ["1", "2", "3", "4"]);
        let long = Axis::fit(&[0.0, 3000.0], 7, true);
        assert_eq!(long.step, 500.0);
        let quarters = Axis::fit(&[0.0, 1500.0], 6, true);
        assert_eq!(quarters.step, 250.0);
        assert_eq!(quarters.label(750.0), "750");
    }

    #[test]
    fn a_flat_or_empty_series_still_gets_an_axis() {
        let flat = Axis::fit(&[3.0, 3.0], 6, false);
        assert!(flat.min < 3.0 && flat.max > 3.0);
        let empty = Axis::fit(&[], 6, false);
        assert_eq!((empty.min, empty.max), (0.0, 1.0));
        let zero = Axis::fit(&[0.0], 6, false);
        assert!(zero.min < 0.0 && zero.max > 0.0);
        assert!(!zero.label(0.0).starts_with('-'));
    }

    #[test]
    fn tiny_values_use_exponents() {
        let lr = Axis::fit(&[1e-5, 1e-4], 5, false);
        assert!(
            lr.label(lr.ticks[1]).contains('e'),
            "{}",
            lr.label(lr.ticks[1])
        );
    }

    #[test]
    fn the_svg_has_every_series_escaped_and_breaks_lines_at_nan() {
        let mut plot = LinePlot::new("reward <train>", "step", "reward");
        plot.push(Series::new(
            "a&b",
            vec![(1.0, 0.1), (2.0, f64::NAN), (3.0, 0.3)],
        ));
        plot.push(Series::new("empty", vec![(1.0, f64::NAN)]));
        plot.push(
            Series::new("mean", vec![(1.0, 0.2), (3.0, 0.4)])
                .with_band(vec![(1.0, 0.1, 0.3), (3.0, 0.3, 0.5)]),
        );
        assert_eq!(
            plot.series.len(),
            2,
            "a series with no finite point is dropped"
        );
        let svg = plot.to_svg_document();
        assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg""#));
        assert!(svg.contains("reward &lt;train&gt;"));
        assert!(svg.contains(">a&amp;b</text>"));
        assert!(!svg.contains("NaN"));
        // The NaN starts a new subpath: two moves in the first line.
        let first = svg
            .split("<path d=\"")
            .find(|p| p.starts_with('M') && p.contains("stroke=\"#4e79a7\""))
            .unwrap_or_default();
        assert_eq!(first.matches('M').count(), 2, "{first}");
        assert!(svg.contains("fill-opacity=\"0.18\""), "the band is drawn");
        let inline = plot.to_svg_inline();
        assert!(!inline.contains("http"));
        assert!(inline.starts_with("<svg width="));
    }

    #[test]
    fn long_legends_wrap_into_rows() {
        let mut plot = LinePlot::new("t", "x", "y");
        for i in 0..12 {
            plot.push(Series::new(
                format!("a rather long series name {i}"),
                vec![(0.0, 1.0)],
            ));
        }
        let legend = plot.legend_layout();
        assert!(legend.rows > 3, "{}", legend.rows);
        assert!(legend
            .positions
            .iter()
            .zip(&plot.series)
            .all(|((_, x), s)| x + 50.0 + text_width(&s.name, 12.0) <= WIDTH));
    }
}
