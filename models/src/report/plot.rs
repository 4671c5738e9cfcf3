//! Line plots (training curves) and grouped bar charts (estimates with intervals), drawn on a
//! [`Canvas`] and written as PNG.
//!
//! Axes get "nice" ticks (steps of 1, 2 or 5 times a power of ten, see [`nice_ticks`]) and the
//! axis range is widened to the outermost ticks, so every data point lies inside the frame.
//! Series colours come from the Okabe–Ito palette ([`palette`]).

use std::path::Path;

use ppl_core::{Error, Result};

use super::canvas::{palette, Canvas, Rgb};
use super::font;

const TEXT: Rgb = Rgb(40, 40, 40);
const GRID: Rgb = Rgb(228, 228, 228);
const FRAME: Rgb = Rgb(110, 110, 110);
const PAD: usize = 16;
const GAP: usize = 8;
const TICK: usize = 5;
const SWATCH: usize = 28;

/// Axis ticks: the widened axis range, the step and the tick values with their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticks {
    /// The lower end of the axis (the first tick).
    pub lo: f64,
    /// The upper end of the axis (the last tick).
    pub hi: f64,
    /// The distance between ticks (for log ticks, between decades in log10 units).
    pub step: f64,
    /// The tick positions, ascending, in data units.
    pub values: Vec<f64>,
    /// The tick labels, one per value.
    pub labels: Vec<String>,
}

fn scaled(n: i64, k: i32) -> f64 {
    // Dividing by an exact power of ten rounds once, so 3 × 10⁻¹ is exactly the literal 0.3.
    if k >= 0 {
        n as f64 * 10f64.powi(k)
    } else {
        n as f64 / 10f64.powi(-k)
    }
}

fn plain_label(v: f64, decimals: usize) -> String {
    // Adding 0.0 turns -0.0 into 0.0, so no tick reads "-0".
    format!("{:.*}", decimals, v + 0.0)
}

/// Ticks covering `[lo, hi]` with about `target` intervals: the step is 1, 2 or 5 times a power
/// of ten (the smallest such step at least `(hi - lo) / target`), and the ticks run from the
/// last multiple of the step at or below `lo` to the first at or above `hi`.
///
/// Labels have as many decimals as the step needs (`0.2` → 1); steps of 10⁶ and above or 10⁻⁵
/// and below are labelled in scientific notation (`2e-5`). An empty range `lo == hi` is widened
/// by 10% of `|lo|` (by 1 around zero) each way.
///
/// ```
/// use models::report::plot::nice_ticks;
/// let t = nice_ticks(0.0, 1.0, 5)?;
/// assert_eq!(t.values, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
/// assert_eq!(t.labels[1], "0.2");
/// # Ok::<(), ppl_core::Error>(())
/// ```
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Result<Ticks> {
    if !(hi - lo).is_finite() || lo > hi {
        return Err(Error::usage(format!(
            "axis ticks need a finite range lo <= hi, got [{lo}, {hi}]"
        )));
    }
    let (lo, hi) = if lo == hi {
        let span = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - span, hi + span)
    } else {
        (lo, hi)
    };
    let raw = (hi - lo) / target.max(1) as f64;
    let mut k = raw.log10().floor() as i32;
    let f = raw / 10f64.powi(k);
    let mut m = [1i64, 2, 5, 10]
        .into_iter()
        .find(|&m| f <= m as f64 * (1.0 + 1e-9))
        .unwrap_or(10);
    if m == 10 {
        m = 1;
        k += 1;
    }
    let step = scaled(m, k);
    let i0 = (lo / step + 1e-9).floor() as i64;
    let i1 = (hi / step - 1e-9).ceil() as i64;
    let values: Vec<f64> = (i0..=i1).map(|i| scaled(i * m, k)).collect();
    let sci = k >= 6 || k <= -5;
    let decimals = (-k).max(0) as usize;
    let labels = values
        .iter()
        .map(|&v| {
            if sci && v == 0.0 {
                "0".to_string()
            } else if sci {
                format!("{v:e}")
            } else {
                plain_label(v, decimals)
            }
        })
        .collect();
    Ok(Ticks {
        lo: values[0],
        hi: values[values.len() - 1],
        step,
        values,
        labels,
    })
}

/// Ticks for a log10 axis covering `[lo, hi]` (both positive): one per decade from the decade
/// at or below `lo` to the one at or above `hi`, with 2 and 5 added when that gives fewer than
/// 3 ticks. Labels are plain numbers from `0.001` to `10000`, scientific (`1e-5`) beyond.
pub fn log_ticks(lo: f64, hi: f64) -> Result<Ticks> {
    let positive = lo > 0.0 && hi >= lo && hi.is_finite();
    if !positive {
        return Err(Error::usage(format!(
            "log axis ticks need a positive finite range, got [{lo}, {hi}]"
        )));
    }
    let d0 = (lo.log10() + 1e-9).floor() as i32;
    let mut d1 = (hi.log10() - 1e-9).ceil() as i32;
    if d1 <= d0 {
        d1 = d0 + 1;
    }
    let mut values = Vec::new();
    let dense = d1 - d0 < 2;
    for d in d0..=d1 {
        values.push(scaled(1, d));
        if dense && d < d1 {
            values.push(scaled(2, d));
            values.push(scaled(5, d));
        }
    }
    let labels = values
        .iter()
        .map(|&v| {
            let d = v.log10().floor() as i32;
            if (-3..=4).contains(&d) {
                plain_label(v, (-d).max(0) as usize)
            } else {
                format!("{v:e}")
            }
        })
        .collect();
    Ok(Ticks {
        lo: values[0],
        hi: values[values.len() - 1],
        step: 1.0,
        values,
        labels,
    })
}

/// The centred moving average of `ys` over `window` points: point `i` is the mean of the
/// finite values among `ys[i - window / 2 ..= i + (window - 1) / 2]` (clipped at the ends), NaN
/// when there are none. Centring keeps the smoothed curve on top of the raw one, where a
/// trailing average would lag behind it.
pub fn moving_average(ys: &[f64], window: usize) -> Vec<f64> {
    let w = window.max(1);
    (0..ys.len())
        .map(|i| {
            let from = i.saturating_sub(w / 2);
            let to = (i + (w - 1) / 2).min(ys.len() - 1);
            let (sum, n) = ys[from..=to]
                .iter()
                .filter(|v| v.is_finite())
                .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            if n == 0 {
                f64::NAN
            } else {
                sum / n as f64
            }
        })
        .collect()
}

/// Where a figure's plot area lies and how data maps onto it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotLayout {
    /// Figure width in pixels.
    pub width: usize,
    /// Figure height in pixels.
    pub height: usize,
    /// The first pixel column of the plot area.
    pub left: usize,
    /// The first pixel row of the plot area.
    pub top: usize,
    /// Plot area width in pixels.
    pub plot_width: usize,
    /// Plot area height in pixels.
    pub plot_height: usize,
    /// The x axis (for a bar chart: category `i` spans `[i, i + 1)`).
    pub x: Ticks,
    /// The y axis.
    pub y: Ticks,
    /// Whether the y axis is log10.
    pub log_y: bool,
}

impl PlotLayout {
    /// The continuous pixel x of data `x` (left edge of the plot area at the axis minimum).
    pub fn map_x(&self, x: f64) -> f64 {
        self.left as f64 + (x - self.x.lo) / (self.x.hi - self.x.lo) * self.plot_width as f64
    }

    /// The continuous pixel y of data `y` (top edge of the plot area at the axis maximum);
    /// on a log axis, by log10 of `y`.
    pub fn map_y(&self, y: f64) -> f64 {
        let t = |v: f64| if self.log_y { v.log10() } else { v };
        let (lo, hi) = (t(self.y.lo), t(self.y.hi));
        self.top as f64 + (hi - t(y)) / (hi - lo) * self.plot_height as f64
    }
}

/// Text sizes and the figure size shared by the plots.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    width: usize,
    height: usize,
    text: usize,
    title: usize,
}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            width: 960,
            height: 600,
            text: 2,
            title: 3,
        }
    }
}

/// The margins around the plot area, from what is written around it.
struct Margins {
    left: usize,
    top: usize,
    right: usize,
    bottom: usize,
}

fn margins(
    f: &Frame,
    title: &str,
    x_label: &str,
    y_label: &str,
    y_tick_w: usize,
    legend: &[String],
) -> Margins {
    let th = font::text_height(f.text);
    let top = if title.is_empty() {
        PAD + th / 2
    } else {
        PAD + font::text_height(f.title) + GAP + th / 2
    };
    let mut left = PAD + y_tick_w + GAP + TICK;
    if !y_label.is_empty() {
        left += th + GAP;
    }
    let mut bottom = TICK + GAP + th + PAD;
    if !x_label.is_empty() {
        bottom += th + GAP;
    }
    let right = if legend.is_empty() {
        PAD + font::text_width("0000", f.text) / 2
    } else {
        let w = legend
            .iter()
            .map(|n| font::text_width(n, f.text))
            .max()
            .unwrap_or(0);
        PAD + SWATCH + GAP + w + PAD
    };
    Margins {
        left,
        top,
        right,
        bottom,
    }
}

fn check_size(f: &Frame, m: &Margins) -> Result<(usize, usize)> {
    let pw = f.width.checked_sub(m.left + m.right).filter(|&w| w >= 40);
    let ph = f.height.checked_sub(m.top + m.bottom).filter(|&h| h >= 40);
    match (pw, ph) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(Error::usage(format!(
            "a {}x{} figure leaves no room for the plot area after its labels; make it larger",
            f.width, f.height
        ))),
    }
}

fn max_label_width(t: &Ticks, scale: usize) -> usize {
    t.labels
        .iter()
        .map(|l| font::text_width(l, scale))
        .max()
        .unwrap_or(0)
}

/// Draws title, frame, y grid and ticks, axis labels and legend around `l`'s plot area.
fn draw_decorations(
    c: &mut Canvas,
    f: &Frame,
    l: &PlotLayout,
    [title, x_label, y_label]: [&str; 3],
    legend: &[(String, Rgb)],
    boxes: bool,
) {
    let (left, top) = (l.left as i64, l.top as i64);
    let (pw, ph) = (l.plot_width as i64, l.plot_height as i64);
    let th = font::text_height(f.text) as i64;
    let cap = (7 * f.text) as i64;
    for (v, label) in l.y.values.iter().zip(&l.y.labels) {
        let row = l.map_y(*v).floor() as i64;
        let row = row.clamp(top, top + ph - 1);
        c.fill_rect(left, row, pw, 1, GRID);
        c.fill_rect(left - TICK as i64, row, TICK as i64, 1, FRAME);
        let w = font::text_width(label, f.text) as i64;
        c.text(
            left - (TICK + GAP) as i64 - w,
            row - cap / 2,
            label,
            f.text,
            TEXT,
        );
    }
    c.stroke_rect(left - 1, top - 1, pw + 2, ph + 2, FRAME);
    if !title.is_empty() {
        let w = font::text_width(title, f.title) as i64;
        let x = (left + pw / 2 - w / 2).max(PAD as i64);
        c.text(x, PAD as i64, title, f.title, TEXT);
        // A second pass one pixel right makes the title bold.
        c.text(x + 1, PAD as i64, title, f.title, TEXT);
    }
    if !x_label.is_empty() {
        let w = font::text_width(x_label, f.text) as i64;
        let y = top + ph + (TICK + GAP) as i64 + th + GAP as i64;
        c.text(left + pw / 2 - w / 2, y, x_label, f.text, TEXT);
    }
    if !y_label.is_empty() {
        let h = font::text_width(y_label, f.text) as i64;
        c.text_vertical(PAD as i64, top + ph / 2 - h / 2, y_label, f.text, TEXT);
    }
    let lx = left + pw + PAD as i64;
    for (i, (name, colour)) in legend.iter().enumerate() {
        let y = top + i as i64 * (th + GAP as i64);
        let mid = y as f64 + cap as f64 / 2.0;
        if boxes {
            c.fill_rect(lx + SWATCH as i64 / 4, y, SWATCH as i64 / 2, cap, *colour);
        } else {
            c.line(
                lx as f64,
                mid,
                (lx + SWATCH as i64) as f64,
                mid,
                4.0,
                *colour,
                1.0,
            );
        }
        c.text(lx + (SWATCH + GAP) as i64, y, name, f.text, TEXT);
    }
}

/// How one series of a [`LinePlot`] is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesStyle {
    /// Its colour; `None` takes the palette colour of its position.
    pub colour: Option<Rgb>,
    /// Whether the plot's smoothing ([`LinePlot::smooth`]) applies to it (e.g. not to a
    /// validation curve measured once an epoch).
    pub smooth: bool,
    /// Whether each point gets a dot (for sparse series).
    pub markers: bool,
}

impl Default for SeriesStyle {
    fn default() -> Self {
        SeriesStyle {
            colour: None,
            smooth: true,
            markers: false,
        }
    }
}

/// One named series of a [`LinePlot`].
#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    style: SeriesStyle,
}

/// A line plot of named series, e.g. training curves.
///
/// ```
/// use models::report::plot::LinePlot;
/// let loss: Vec<f64> = (1..=50).map(|i| 10.0 / i as f64).collect();
/// let plot = LinePlot::new("Training loss")
///     .x_label("step")
///     .y_label("loss")
///     .log_y(true)
///     .series_y("train", &loss);
/// let canvas = plot.render()?;
/// assert_eq!((canvas.width(), canvas.height()), (960, 600));
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    title: String,
    x_label: String,
    y_label: String,
    series: Vec<Series>,
    log_y: bool,
    smooth: Option<usize>,
    frame: Frame,
}

impl LinePlot {
    /// An empty plot with a title (960 × 600 pixels, text at scale 2, title at scale 3).
    pub fn new(title: impl Into<String>) -> LinePlot {
        LinePlot {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            series: Vec::new(),
            log_y: false,
            smooth: None,
            frame: Frame::default(),
        }
    }

    /// The x axis label.
    pub fn x_label(mut self, label: impl Into<String>) -> LinePlot {
        self.x_label = label.into();
        self
    }

    /// The y axis label (drawn reading upwards).
    pub fn y_label(mut self, label: impl Into<String>) -> LinePlot {
        self.y_label = label.into();
        self
    }

    /// The figure size in pixels.
    pub fn size(mut self, width: usize, height: usize) -> LinePlot {
        self.frame.width = width;
        self.frame.height = height;
        self
    }

    /// The integer scale of axis text and of the title (defaults 2 and 3).
    pub fn text_scale(mut self, text: usize, title: usize) -> LinePlot {
        self.frame.text = text.max(1);
        self.frame.title = title.max(1);
        self
    }

    /// A log10 y axis; every finite y value must then be positive.
    pub fn log_y(mut self, on: bool) -> LinePlot {
        self.log_y = on;
        self
    }

    /// Draws each series' centred moving average over `window` points (see
    /// [`moving_average`]) boldly over the raw series, which is drawn faint. `None` or a
    /// window of 1 draws the raw series only.
    pub fn smooth(mut self, window: Option<usize>) -> LinePlot {
        self.smooth = window.filter(|&w| w > 1);
        self
    }

    /// Adds a series of `(x, y)` points in the next palette colour. Non-finite points break
    /// the line.
    pub fn series(
        self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> LinePlot {
        self.series_styled(name, points, SeriesStyle::default())
    }

    /// Adds a series with x = 1, 2, 3, … (steps or epochs).
    pub fn series_y(self, name: impl Into<String>, ys: &[f64]) -> LinePlot {
        let points = ys.iter().enumerate().map(|(i, &y)| ((i + 1) as f64, y));
        self.series(name, points)
    }

    /// Adds a series drawn in `style`.
    pub fn series_styled(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
        style: SeriesStyle,
    ) -> LinePlot {
        self.series.push(Series {
            name: name.into(),
            points: points.into_iter().collect(),
            style,
        });
        self
    }

    fn colour(&self, i: usize) -> Rgb {
        self.series[i].style.colour.unwrap_or_else(|| palette(i))
    }

    fn legend(&self) -> Vec<(String, Rgb)> {
        if self.series.iter().all(|s| s.name.is_empty()) {
            return Vec::new();
        }
        (0..self.series.len())
            .map(|i| (self.series[i].name.clone(), self.colour(i)))
            .collect()
    }

    /// Where the plot area lies and the axes (fails when there is no finite point, when a
    /// log-y plot has a non-positive value, or when the figure is too small for its labels).
    pub fn layout(&self) -> Result<PlotLayout> {
        let mut xr = (f64::INFINITY, f64::NEG_INFINITY);
        let mut yr = (f64::INFINITY, f64::NEG_INFINITY);
        for s in &self.series {
            for (i, &(x, y)) in s.points.iter().enumerate() {
                if !(x.is_finite() && y.is_finite()) {
                    continue;
                }
                if self.log_y && y <= 0.0 {
                    return Err(Error::usage(format!(
                        "log-y plot `{}`: series `{}` has the non-positive value {y} at point {i}",
                        self.title, s.name
                    )));
                }
                xr = (xr.0.min(x), xr.1.max(x));
                yr = (yr.0.min(y), yr.1.max(y));
            }
        }
        if !xr.0.is_finite() {
            return Err(Error::usage(format!(
                "plot `{}` has no finite point to draw",
                self.title
            )));
        }
        let f = &self.frame;
        let legend: Vec<String> = self.legend().into_iter().map(|(n, _)| n).collect();
        // The y ticks depend on the plot height only, which the y tick labels do not change.
        let probe = margins(f, &self.title, &self.x_label, &self.y_label, 0, &legend);
        let (_, ph) = check_size(f, &probe)?;
        let y = if self.log_y {
            log_ticks(yr.0, yr.1)?
        } else {
            nice_ticks(yr.0, yr.1, (ph / 70).clamp(2, 10))?
        };
        let m = margins(
            f,
            &self.title,
            &self.x_label,
            &self.y_label,
            max_label_width(&y, f.text),
            &legend,
        );
        let (pw, ph) = check_size(f, &m)?;
        let mut target = (pw / 110).clamp(2, 10);
        let x = loop {
            let x = nice_ticks(xr.0, xr.1, target)?;
            let widest = max_label_width(&x, f.text) + 3 * GAP;
            if target <= 2 || widest * x.values.len() <= pw {
                break x;
            }
            target -= 1;
        };
        Ok(PlotLayout {
            width: f.width,
            height: f.height,
            left: m.left,
            top: m.top,
            plot_width: pw,
            plot_height: ph,
            x,
            y,
            log_y: self.log_y,
        })
    }

    /// Draws the plot.
    pub fn render(&self) -> Result<Canvas> {
        let l = self.layout()?;
        let f = &self.frame;
        let mut c = Canvas::new(f.width, f.height, Rgb::WHITE)?;
        let (left, top) = (l.left as i64, l.top as i64);
        let ph = l.plot_height as i64;
        for (v, label) in l.x.values.iter().zip(&l.x.labels) {
            let col = (l.map_x(*v).floor() as i64).clamp(left, left + l.plot_width as i64 - 1);
            c.fill_rect(col, top, 1, ph, GRID);
            c.fill_rect(col, top + ph, 1, TICK as i64, FRAME);
            let w = font::text_width(label, f.text) as i64;
            c.text(
                col - w / 2,
                top + ph + (TICK + GAP) as i64,
                label,
                f.text,
                TEXT,
            );
        }
        draw_decorations(
            &mut c,
            f,
            &l,
            [&self.title, &self.x_label, &self.y_label],
            &self.legend(),
            false,
        );
        for (i, s) in self.series.iter().enumerate() {
            let colour = self.colour(i);
            let to_px = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
                pts.iter()
                    .map(|&(x, y)| {
                        if x.is_finite() && y.is_finite() {
                            (l.map_x(x), l.map_y(y))
                        } else {
                            (f64::NAN, f64::NAN)
                        }
                    })
                    .collect()
            };
            match self.smooth.filter(|_| s.style.smooth) {
                Some(w) => {
                    c.polyline(&to_px(&s.points), 1.5, colour, 0.3);
                    let ys: Vec<f64> = s.points.iter().map(|p| p.1).collect();
                    let smooth: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .zip(moving_average(&ys, w))
                        .map(|(p, y)| (p.0, y))
                        .collect();
                    c.polyline(&to_px(&smooth), 2.5, colour, 1.0);
                }
                None => c.polyline(&to_px(&s.points), 2.5, colour, 1.0),
            }
            if s.style.markers {
                for (x, y) in to_px(&s.points) {
                    c.line(x, y, x, y, 7.0, colour, 1.0);
                }
            }
        }
        Ok(c)
    }

    /// Draws the plot and writes it to `path` as a PNG, atomically.
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<()> {
        self.render()?.write_png(path)
    }
}

/// One group (one bar per category) of a [`BarChart`].
#[derive(Debug, Clone, PartialEq)]
struct Group {
    name: String,
    values: Vec<f64>,
    intervals: Option<Vec<(f64, f64)>>,
}

/// A grouped bar chart: one slot per category, one bar per group in each slot, optional
/// interval whiskers (e.g. bootstrap intervals).
///
/// ```
/// use models::report::plot::BarChart;
/// let chart = BarChart::new("Effect by group", ["young", "old"])
///     .y_label("effect")
///     .group_with_intervals("model", &[0.4, 0.1], &[(0.3, 0.5), (0.0, 0.2)])
///     .group("truth", &[0.42, 0.12]);
/// let canvas = chart.render()?;
/// assert_eq!(canvas.width(), 960);
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    title: String,
    y_label: String,
    categories: Vec<String>,
    groups: Vec<Group>,
    frame: Frame,
}

impl BarChart {
    /// A chart with a title and its category labels (960 × 600 pixels).
    pub fn new<S: Into<String>>(
        title: impl Into<String>,
        categories: impl IntoIterator<Item = S>,
    ) -> BarChart {
        BarChart {
            title: title.into(),
            y_label: String::new(),
            categories: categories.into_iter().map(Into::into).collect(),
            groups: Vec::new(),
            frame: Frame::default(),
        }
    }

    /// The y axis label (drawn reading upwards).
    pub fn y_label(mut self, label: impl Into<String>) -> BarChart {
        self.y_label = label.into();
        self
    }

    /// The figure size in pixels.
    pub fn size(mut self, width: usize, height: usize) -> BarChart {
        self.frame.width = width;
        self.frame.height = height;
        self
    }

    /// The integer scale of axis text and of the title (defaults 2 and 3).
    pub fn text_scale(mut self, text: usize, title: usize) -> BarChart {
        self.frame.text = text.max(1);
        self.frame.title = title.max(1);
        self
    }

    /// Adds a group: one value per category, in the next palette colour.
    pub fn group(mut self, name: impl Into<String>, values: &[f64]) -> BarChart {
        self.groups.push(Group {
            name: name.into(),
            values: values.to_vec(),
            intervals: None,
        });
        self
    }

    /// Adds a group with an interval `(lo, hi)` per category, drawn as a whisker.
    pub fn group_with_intervals(
        mut self,
        name: impl Into<String>,
        values: &[f64],
        intervals: &[(f64, f64)],
    ) -> BarChart {
        self.groups.push(Group {
            name: name.into(),
            values: values.to_vec(),
            intervals: Some(intervals.to_vec()),
        });
        self
    }

    fn check(&self) -> Result<()> {
        if self.categories.is_empty() || self.groups.is_empty() {
            return Err(Error::usage(format!(
                "bar chart `{}` needs at least one category and one group",
                self.title
            )));
        }
        let n = self.categories.len();
        for g in &self.groups {
            if g.values.len() != n {
                return Err(Error::usage(format!(
                    "bar chart `{}`: group `{}` has {} values for {n} categories",
                    self.title,
                    g.name,
                    g.values.len()
                )));
            }
            if let Some(iv) = &g.intervals {
                if iv.len() != n {
                    return Err(Error::usage(format!(
                        "bar chart `{}`: group `{}` has {} intervals for {n} categories",
                        self.title,
                        g.name,
                        iv.len()
                    )));
                }
            }
            let bad = g.values.iter().position(|v| !v.is_finite()).or_else(|| {
                g.intervals.as_ref().and_then(|iv| {
                    iv.iter().position(|(lo, hi)| {
                        let ordered = lo.is_finite() && hi.is_finite() && lo <= hi;
                        !ordered
                    })
                })
            });
            if let Some(i) = bad {
                return Err(Error::usage(format!(
                    "bar chart `{}`: group `{}` has a non-finite value or an interval with \
                     lo > hi at category `{}`",
                    self.title, g.name, self.categories[i]
                )));
            }
        }
        Ok(())
    }

    fn legend(&self) -> Vec<(String, Rgb)> {
        if self.groups.iter().all(|g| g.name.is_empty()) {
            return Vec::new();
        }
        self.groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.clone(), palette(i)))
            .collect()
    }

    /// Where the plot area lies and the axes; the x axis runs from 0 to the number of
    /// categories, category `i` spanning `[i, i + 1)`.
    pub fn layout(&self) -> Result<PlotLayout> {
        self.check()?;
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for g in &self.groups {
            for &v in &g.values {
                (lo, hi) = (lo.min(v), hi.max(v));
            }
            for &(a, b) in g.intervals.iter().flatten() {
                (lo, hi) = (lo.min(a), hi.max(b));
            }
        }
        let f = &self.frame;
        let legend: Vec<String> = self.legend().into_iter().map(|(n, _)| n).collect();
        let probe = margins(f, &self.title, "", &self.y_label, 0, &legend);
        let (_, ph) = check_size(f, &probe)?;
        let y = nice_ticks(lo, hi, (ph / 70).clamp(2, 10))?;
        let m = margins(
            f,
            &self.title,
            "",
            &self.y_label,
            max_label_width(&y, f.text),
            &legend,
        );
        let (pw, ph) = check_size(f, &m)?;
        let n = self.categories.len();
        let x = Ticks {
            lo: 0.0,
            hi: n as f64,
            step: 1.0,
            values: (0..n).map(|i| i as f64 + 0.5).collect(),
            labels: self.categories.clone(),
        };
        Ok(PlotLayout {
            width: f.width,
            height: f.height,
            left: m.left,
            top: m.top,
            plot_width: pw,
            plot_height: ph,
            x,
            y,
            log_y: false,
        })
    }

    /// The pixel columns `(first, width)` of the bar of `group` in `category`: the groups
    /// share the middle 80% of the category's slot.
    pub fn bar_columns(&self, layout: &PlotLayout, category: usize, group: usize) -> (i64, i64) {
        let slot = layout.plot_width as f64 / self.categories.len().max(1) as f64;
        let bar = (0.8 * slot / self.groups.len().max(1) as f64)
            .floor()
            .max(1.0);
        let start = layout.left as f64 + category as f64 * slot + 0.1 * slot;
        ((start + group as f64 * bar).round() as i64, bar as i64)
    }

    /// Draws the chart.
    pub fn render(&self) -> Result<Canvas> {
        let l = self.layout()?;
        let f = &self.frame;
        let mut c = Canvas::new(f.width, f.height, Rgb::WHITE)?;
        let (top, ph) = (l.top as i64, l.plot_height as i64);
        draw_decorations(
            &mut c,
            f,
            &l,
            [&self.title, "", &self.y_label],
            &self.legend(),
            true,
        );
        let zero = l.map_y(0.0);
        for (gi, g) in self.groups.iter().enumerate() {
            let colour = palette(gi);
            for (ci, &v) in g.values.iter().enumerate() {
                let (x, w) = self.bar_columns(&l, ci, gi);
                let end = l.map_y(v);
                let (a, b) = (zero.min(end).round() as i64, zero.max(end).round() as i64);
                c.fill_rect(x, a, w - 1, (b - a).max(1), colour);
            }
        }
        // The zero line and the whiskers go over every bar.
        let zr = (zero.floor() as i64).clamp(top, top + ph - 1);
        c.fill_rect(l.left as i64, zr, l.plot_width as i64, 1, FRAME);
        for (gi, g) in self.groups.iter().enumerate() {
            for (ci, &(lo, hi)) in g.intervals.iter().flatten().enumerate() {
                let (x, w) = self.bar_columns(&l, ci, gi);
                let mid = x as f64 + (w - 1) as f64 / 2.0;
                let (ya, yb) = (l.map_y(hi), l.map_y(lo));
                let cap = (w as f64 / 4.0).max(3.0);
                c.line(mid, ya, mid, yb, 2.0, TEXT, 1.0);
                c.line(mid - cap, ya, mid + cap, ya, 2.0, TEXT, 1.0);
                c.line(mid - cap, yb, mid + cap, yb, 2.0, TEXT, 1.0);
            }
        }
        let slot = l.plot_width as f64 / self.categories.len() as f64;
        for (ci, name) in self.categories.iter().enumerate() {
            let centre = l.left as f64 + (ci as f64 + 0.5) * slot;
            // Labels that do not fit their slot drop to scale 1, then lose their tail.
            let mut scale = f.text;
            let mut label = name.clone();
            while font::text_width(&label, scale) as f64 > slot - 4.0 {
                if scale > 1 {
                    scale -= 1;
                } else if label.chars().count() > 2 {
                    let keep: String = label.chars().take(label.chars().count() - 3).collect();
                    label = format!("{keep}..");
                } else {
                    break;
                }
            }
            let w = font::text_width(&label, scale) as f64;
            c.text(
                (centre - w / 2.0).round() as i64,
                top + ph + (TICK + GAP) as i64,
                &label,
                scale,
                TEXT,
            );
        }
        Ok(c)
    }

    /// Draws the chart and writes it to `path` as a PNG, atomically.
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<()> {
        self.render()?.write_png(path)
    }
}
