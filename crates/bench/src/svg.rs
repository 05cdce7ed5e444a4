//! A small SVG writer for the benchmark plots, so the harness draws its own results with no
//! tool beside it: figures of one or more panels, each with axes, ticks, a grid, a legend and
//! series drawn as steps (an ECDF) or as lines with markers (a value against concurrency).

use std::fmt::Write;

/// How an axis maps values to positions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    Linear,
    /// Logarithmic; the ticks are the panel's `x_ticks`.
    Log,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Style {
    /// A step function through the points (an empirical distribution).
    Steps,
    /// Straight lines between the points, each point marked.
    Lines,
}

pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Vertical bars `(x, low, high)`: the spread of repeated measurements of a point.
    pub spans: Vec<(f64, f64, f64)>,
}

pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_scale: Scale,
    pub style: Style,
    /// Tick positions on x; chosen automatically on a linear axis when `None`.
    pub x_ticks: Option<Vec<f64>>,
    /// The x range; from the data when `None` (points outside are clipped).
    pub x_range: Option<(f64, f64)>,
    /// The y range; from zero to the data's maximum when `None`.
    pub y_range: Option<(f64, f64)>,
    pub series: Vec<Series>,
}

pub struct Figure {
    pub title: String,
    pub panels: Vec<Panel>,
    pub columns: usize,
}

/// Colours told apart by colour-blind readers too (Okabe and Ito's palette).
const COLORS: [&str; 7] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];
const PANEL_W: f64 = 560.0;
const PLOT_H: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 36.0;
/// Below the plot: tick labels and the axis label.
const AXIS_H: f64 = 48.0;
const LEGEND_LINE: f64 = 18.0;
const TITLE_H: f64 = 34.0;

impl Figure {
    /// Renders the figure into `path`, creating its directory.
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.render())
    }

    pub fn render(&self) -> String {
        let columns = self.columns.max(1);
        let legend_rows = self.panels.iter().map(|p| p.series.len()).max().unwrap_or(0) as f64;
        let panel_h = TOP + PLOT_H + AXIS_H + legend_rows * LEGEND_LINE + 10.0;
        let rows = self.panels.len().div_ceil(columns);
        let width = PANEL_W * columns as f64;
        let height = TITLE_H + panel_h * rows as f64;
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            out,
            r#"<text x="{:.0}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
            width / 2.0,
            escape(&self.title)
        );
        for (i, panel) in self.panels.iter().enumerate() {
            let x0 = PANEL_W * (i % columns) as f64;
            let y0 = TITLE_H + panel_h * (i / columns) as f64;
            panel.render(&mut out, i, x0, y0);
        }
        out.push_str("</svg>\n");
        out
    }
}

/// Maps data values to pixels along one axis.
struct Axis {
    scale: Scale,
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Axis {
    fn at(&self, v: f64) -> f64 {
        let f = |x: f64| if self.scale == Scale::Log { x.max(f64::MIN_POSITIVE).ln() } else { x };
        let span = f(self.hi) - f(self.lo);
        let t = if span == 0.0 { 0.5 } else { (f(v) - f(self.lo)) / span };
        self.from + t * (self.to - self.from)
    }
}

impl Panel {
    fn render(&self, out: &mut String, index: usize, x0: f64, y0: f64) {
        let (left, right) = (x0 + LEFT, x0 + PANEL_W - RIGHT);
        let (top, bottom) = (y0 + TOP, y0 + TOP + PLOT_H);
        let points = || self.series.iter().flat_map(|s| s.points.iter().copied());

        let (x_lo, x_hi) = self.x_range.unwrap_or_else(|| bounds(points().map(|p| p.0)));
        let (x_lo, x_hi, x_ticks) = match (&self.x_ticks, self.x_scale) {
            (Some(t), Scale::Log) => (x_lo / 1.5, x_hi * 1.5, t.clone()),
            (Some(t), Scale::Linear) => (x_lo, x_hi, t.clone()),
            (None, _) => nice_ticks(x_lo, x_hi),
        };
        let highs = self.series.iter().flat_map(|s| s.spans.iter().map(|b| b.2));
        let (y_lo, y_hi) =
            self.y_range.unwrap_or_else(|| (0.0, points().map(|p| p.1).chain(highs).fold(0.0, f64::max)));
        let (y_lo, y_hi, y_ticks) = nice_ticks(y_lo, y_hi);
        let x = Axis { scale: self.x_scale, lo: x_lo, hi: x_hi, from: left, to: right };
        let y = Axis { scale: Scale::Linear, lo: y_lo, hi: y_hi, from: bottom, to: top };

        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="13" font-weight="bold">{}</text>"#,
            (left + right) / 2.0,
            y0 + 22.0,
            escape(&self.title)
        );
        let _ = writeln!(
            out,
            r#"<clipPath id="plot{index}"><rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{PLOT_H:.1}"/></clipPath>"#,
            right - left
        );
        for &t in &x_ticks {
            let px = x.at(t);
            let _ = writeln!(
                out,
                r##"<line x1="{px:.1}" y1="{top:.1}" x2="{px:.1}" y2="{bottom:.1}" stroke="#e4e4e4"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                bottom + 16.0,
                tick_label(t, &x_ticks)
            );
        }
        for &t in &y_ticks {
            let py = y.at(t);
            let _ = writeln!(
                out,
                r##"<line x1="{left:.1}" y1="{py:.1}" x2="{right:.1}" y2="{py:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                left - 6.0,
                py + 4.0,
                tick_label(t, &y_ticks)
            );
        }
        let _ = writeln!(
            out,
            r##"<rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{PLOT_H:.1}" fill="none" stroke="#888"/>"##,
            right - left
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (left + right) / 2.0,
            bottom + 36.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            out,
            r#"<text transform="translate({:.1},{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            x0 + 16.0,
            (top + bottom) / 2.0,
            escape(&self.y_label)
        );

        for (k, s) in self.series.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let mut d = String::new();
            for (j, &(px, py)) in s.points.iter().enumerate() {
                let (sx, sy) = (x.at(px), y.at(py));
                let _ = match (self.style, j) {
                    (Style::Steps, 0) => write!(d, "M{sx:.1},{:.1} V{sy:.1}", y.at(y_lo)),
                    (Style::Lines, 0) => write!(d, "M{sx:.1},{sy:.1}"),
                    (Style::Steps, _) => write!(d, " H{sx:.1} V{sy:.1}"),
                    (Style::Lines, _) => write!(d, " L{sx:.1},{sy:.1}"),
                };
            }
            let _ = writeln!(
                out,
                r#"<path d="{d}" fill="none" stroke="{color}" stroke-width="2" clip-path="url(#plot{index})"/>"#
            );
            for &(bx, lo, hi) in &s.spans {
                let (px, top, bottom) = (x.at(bx), y.at(hi), y.at(lo));
                let _ = writeln!(
                    out,
                    r#"<path d="M{px:.1},{top:.1} V{bottom:.1} M{:.1},{top:.1} H{:.1} M{:.1},{bottom:.1} H{:.1}" stroke="{color}" stroke-width="1.5" clip-path="url(#plot{index})"/>"#,
                    px - 4.0,
                    px + 4.0,
                    px - 4.0,
                    px + 4.0
                );
            }
            if self.style == Style::Lines {
                for &(px, py) in &s.points {
                    let _ = writeln!(
                        out,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}" clip-path="url(#plot{index})"/>"#,
                        x.at(px),
                        y.at(py)
                    );
                }
            }
            let ly = bottom + AXIS_H + LEGEND_LINE * k as f64 + 6.0;
            let _ = writeln!(
                out,
                r#"<line x1="{left:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                left + 22.0,
                left + 28.0,
                ly + 4.0,
                escape(&s.label)
            );
        }
    }
}

/// The smallest and largest of some values; (0, 1) when there are none.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

/// About five ticks at 1, 2 or 5 times a power of ten, and the range widened to them.
fn nice_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let raw = (hi - lo) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = match raw / magnitude {
        n if n <= 1.0 => 1.0,
        n if n <= 2.0 => 2.0,
        n if n <= 5.0 => 5.0,
        _ => 10.0,
    } * magnitude;
    let first = (lo / step).floor() * step;
    let last = (hi / step).ceil() * step;
    let count = ((last - first) / step).round() as usize;
    let ticks = (0..=count).map(|i| first + step * i as f64).collect();
    (first, last, ticks)
}

/// A tick label with as many decimals as the spacing of the ticks needs.
fn tick_label(v: f64, ticks: &[f64]) -> String {
    let step = ticks.windows(2).map(|w| (w[1] - w[0]).abs()).fold(f64::INFINITY, f64::min);
    let decimals = if step.is_finite() && step < 1.0 { (-step.log10().floor()) as usize } else { 0 };
    format!("{v:.decimals$}")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The empirical distribution of sorted values as plot points: (value, share at or below it).
pub fn ecdf(sorted: &[f64]) -> Vec<(f64, f64)> {
    let n = sorted.len() as f64;
    sorted.iter().enumerate().map(|(i, &v)| (v, (i + 1) as f64 / n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (lo, hi, ticks) = nice_ticks(0.0, 7.3);
        assert_eq!((lo, hi), (0.0, 8.0));
        assert_eq!(ticks, vec![0.0, 2.0, 4.0, 6.0, 8.0]);
        let (_, _, ticks) = nice_ticks(0.0, 0.42);
        assert_eq!(ticks.len(), 6);
        assert_eq!(tick_label(ticks[1], &ticks), "0.1");
        assert_eq!(tick_label(1500.0, &[0.0, 500.0]), "1500");
    }

    #[test]
    fn an_ecdf_rises_to_one() {
        assert_eq!(ecdf(&[1.0, 2.0, 4.0, 8.0]), vec![(1.0, 0.25), (2.0, 0.5), (4.0, 0.75), (8.0, 1.0)]);
    }

    #[test]
    fn a_figure_draws_every_series_with_its_label() {
        let panel = |style, scale| Panel {
            title: "t <1>".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_scale: scale,
            style,
            x_ticks: (scale == Scale::Log).then(|| vec![8.0, 64.0, 512.0]),
            x_range: None,
            y_range: None,
            series: vec![
                Series {
                    label: "direct & co".into(),
                    points: vec![(8.0, 1.0), (64.0, 3.0), (512.0, 2.0)],
                    spans: Vec::new(),
                },
                Series {
                    label: "keymint".into(),
                    points: vec![(8.0, 0.5), (64.0, 1.0), (512.0, 1.5)],
                    spans: vec![(64.0, 0.8, 1.2)],
                },
            ],
        };
        let fig = Figure {
            title: "bench".into(),
            panels: vec![panel(Style::Steps, Scale::Linear), panel(Style::Lines, Scale::Log)],
            columns: 2,
        };
        let svg = fig.render();
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<path ").count(), 4 + 2, "two lines and one spread bar per panel");
        assert_eq!(svg.matches("<circle ").count(), 6, "markers on the line panel only");
        assert!(svg.contains("direct &amp; co") && svg.contains("t &lt;1&gt;"));
        assert!(svg.contains(">512<"), "the log axis is labelled at the given ticks");
        assert!(svg.contains(r#"V"#) && svg.contains(" H"), "steps are drawn as steps");
    }
}
