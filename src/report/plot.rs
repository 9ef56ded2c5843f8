//! The report's plots, drawn with `plotters` into an RGB buffer and written as PNG:
//! `trajectory.png` (the arena from above with the robot's path, axes in metres) and `loop.png`
//! (the brain loop over simulated time: tick timing against the deadline, drowsiness, speed
//! scale, sleeps and region freshness).
//!
//! Labels use a TrueType font read at run time (Debian's `fonts-dejavu-core`, installed by
//! `scripts/bootstrap.sh`). Without it the plots are still drawn, without any text, and one
//! warning says so.

use super::TickSample;
use crate::msg::RegionId;
use crate::world::{Colour, Layout, Shape};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;
use std::path::Path;
use std::sync::OnceLock;

/// Errors drawing or writing a plot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// Drawing failed.
    #[error("drawing: {0}")]
    Draw(String),
    /// Encoding or writing the PNG failed.
    #[error(transparent)]
    Image(#[from] image::ImageError),
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        PlotError::Draw(e.to_string())
    }
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
/// The colour of a tick in a strip.
type ColourOf = Box<dyn Fn(&TickSample) -> RGBColor>;

/// Font files tried in order (regular, bold).
const FONTS: &[(&str, &str)] = &[(
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
)];
/// The family the font is registered as (plotters' default for labels).
const FAMILY: &str = "sans-serif";

/// Whether labels can be drawn: registers the font on first use, or warns once.
pub fn labels_available() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let leak = |bytes: Vec<u8>| -> &'static [u8] { Box::leak(bytes.into_boxed_slice()) };
        for (regular, bold) in FONTS {
            let Ok(bytes) = std::fs::read(regular) else {
                continue;
            };
            if register_font(FAMILY, FontStyle::Normal, leak(bytes)).is_err() {
                continue;
            }
            if let Ok(bytes) = std::fs::read(bold) {
                let _ = register_font(FAMILY, FontStyle::Bold, leak(bytes));
            }
            return true;
        }
        tracing::warn!(
            "report plots are drawn without labels: no font at {} (install Debian's \
             fonts-dejavu-core, e.g. with scripts/bootstrap.sh)",
            FONTS[0].0
        );
        false
    })
}

const BG: RGBColor = RGBColor(250, 250, 247);
const INK: RGBColor = RGBColor(40, 40, 40);
const GRID: RGBColor = RGBColor(225, 225, 220);
const PATH: RGBColor = RGBColor(20, 60, 200);
const START: RGBColor = RGBColor(20, 160, 20);
const END: RGBColor = RGBColor(200, 30, 30);
const GOAL_REGION: RGBColor = RGBColor(214, 240, 214);
const WALL: RGBColor = RGBColor(120, 120, 115);
const OBSTACLE: RGBColor = RGBColor(90, 80, 75);
const COMPUTE: RGBColor = RGBColor(30, 70, 190);
const DEADLINE: RGBColor = RGBColor(220, 40, 40);
const MISSED: RGBColor = RGBColor(220, 40, 40);
const LATENESS: RGBColor = RGBColor(235, 140, 20);
const DROWSY: RGBColor = RGBColor(150, 60, 160);
const SPEED: RGBColor = RGBColor(20, 140, 90);
const ASLEEP: RGBColor = RGBColor(205, 222, 245);
const FRESH: RGBColor = RGBColor(222, 238, 222);
const LATE: RGBColor = RGBColor(245, 165, 40);
const STALE: RGBColor = RGBColor(215, 50, 50);

fn text(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&INK)
}

fn bold(size: f64) -> TextStyle<'static> {
    (FAMILY, size, FontStyle::Bold).into_font().color(&INK)
}

/// A legend entry's marker.
#[derive(Clone, Copy)]
enum Mark {
    Line(RGBColor),
    Dot(RGBColor),
    Box(RGBColor),
}

/// A strip with a title on its first line and legend entries on its second; nothing without a
/// font.
fn header(area: &Area, title: &str, items: &[(Mark, &str)], fonts: bool) -> Result<(), PlotError> {
    if !fonts {
        return Ok(());
    }
    area.draw(&Text::new(title.to_string(), (4, 4), bold(15.0)))?;
    let style = text(13.0);
    let (mut x, y) = (6, 25);
    for (mark, label) in items {
        match *mark {
            Mark::Line(c) => area.draw(&PathElement::new(
                vec![(x, y + 7), (x + 18, y + 7)],
                c.stroke_width(3),
            ))?,
            Mark::Dot(c) => area.draw(&Circle::new((x + 9, y + 7), 4, c.filled()))?,
            Mark::Box(c) => {
                area.draw(&Rectangle::new([(x, y + 1), (x + 18, y + 13)], c.filled()))?
            }
        }
        x += 24;
        area.draw(&Text::new(label.to_string(), (x, y), style.clone()))?;
        let (w, _) = area.estimate_text_size(label, &style)?;
        x += w as i32 + 18;
    }
    Ok(())
}

/// Draw into a fresh RGB buffer of `w` x `h`.
fn render(
    w: u32,
    h: u32,
    draw: impl FnOnce(&Area) -> Result<(), PlotError>,
) -> Result<Vec<u8>, PlotError> {
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&BG)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(buf)
}

fn colour_rgb(c: Colour) -> RGBColor {
    let [r, g, b] = c.rgb().map(|v| (v * 255.0).round() as u8);
    RGBColor(r, g, b)
}

/// Draw the top-down map: walls, obstacles, objects, goal region, path, start and end.
pub fn trajectory_png(
    path: &Path,
    layout: &Layout,
    track: &[(f64, f64)],
    title: &str,
) -> Result<(), PlotError> {
    let (w, h, rgb) = trajectory_rgb(layout, track, title, labels_available())?;
    Ok(super::save_rgb_png(path, w, h, &rgb)?)
}

fn trajectory_rgb(
    layout: &Layout,
    track: &[(f64, f64)],
    title: &str,
    fonts: bool,
) -> Result<(u32, u32, Vec<u8>), PlotError> {
    let (w, h) = (680u32, 740u32);
    let rgb = render(w, h, |root| {
        let (head, chart_area) = root.split_vertically(46);
        header(
            &head,
            title,
            &[
                (Mark::Dot(START), "start"),
                (Mark::Dot(END), "end"),
                (Mark::Line(PATH), "path"),
                (Mark::Box(GOAL_REGION), "goal region"),
                (Mark::Box(WALL), "wall"),
                (Mark::Box(OBSTACLE), "obstacle"),
            ],
            fonts,
        )?;
        let (xl, yl) = if fonts { (40, 55) } else { (0, 0) };
        let builder = || {
            let mut b = ChartBuilder::on(&chart_area);
            b.margin(12).x_label_area_size(xl).y_label_area_size(yl);
            b
        };
        // Equal metres per pixel on both axes: widen the range of the longer side.
        let (pw, ph) = builder()
            .build_cartesian_2d(0f64..1.0, 0f64..1.0)?
            .plotting_area()
            .dim_in_pixel();
        let half = layout.size_m / 2.0 + 0.1;
        let scale = (pw as f64).min(ph as f64) / (2.0 * half);
        let (hx, hy) = (pw as f64 / scale / 2.0, ph as f64 / scale / 2.0);
        let mut chart = builder().build_cartesian_2d(-hx..hx, -hy..hy)?;
        let mut mesh = chart.configure_mesh();
        mesh.light_line_style(GRID.mix(0.0))
            .bold_line_style(GRID)
            .axis_style(INK);
        if fonts {
            mesh.x_desc("x [m]")
                .y_desc("y [m]")
                .label_style(text(12.0))
                .x_label_formatter(&|v| format!("{v:.1}"))
                .y_label_formatter(&|v| format!("{v:.1}"));
        }
        mesh.draw()?;
        let px = |m: f64| (m * scale).round().max(1.0) as i32;

        let g = layout.goal();
        chart.draw_series(std::iter::once(Circle::new(
            (g.x, g.y),
            px(layout.within_m),
            GOAL_REGION.filled(),
        )))?;
        chart.draw_series(layout.boxes.iter().map(|b| {
            let col = if b.boundary { WALL } else { OBSTACLE };
            Rectangle::new(
                [(b.x - b.hx, b.y - b.hy), (b.x + b.hx, b.y + b.hy)],
                col.filled(),
            )
        }))?;
        for o in &layout.objects {
            let r = o.shape.radius();
            let col = colour_rgb(o.colour).filled();
            match o.shape {
                Shape::Cube => chart.draw_series(std::iter::once(Rectangle::new(
                    [
                        (o.x - r * 0.7, o.y - r * 0.7),
                        (o.x + r * 0.7, o.y + r * 0.7),
                    ],
                    col,
                )))?,
                _ => chart.draw_series(std::iter::once(Circle::new((o.x, o.y), px(r), col)))?,
            };
            if o.goal && fonts {
                let label = EmptyElement::at((o.x, o.y))
                    + Text::new(
                        "goal",
                        (-13, -px(r) - 18),
                        bold(13.0).color(&RGBColor(0, 100, 0)),
                    );
                chart.draw_series(std::iter::once(label))?;
            }
        }
        chart.draw_series(std::iter::once(PathElement::new(
            track.to_vec(),
            PATH.stroke_width(2),
        )))?;
        chart.draw_series(std::iter::once(Circle::new(
            (layout.start.0, layout.start.1),
            5,
            START.filled(),
        )))?;
        if let Some(&end) = track.last() {
            chart.draw_series(std::iter::once(Circle::new(end, 5, END.filled())))?;
        }
        Ok(())
    })?;
    Ok((w, h, rgb))
}

/// Spans `[from, to)` of simulated time, s, over which `pred` holds (each tick lasts until the
/// next one starts, the last one for `last_s`).
fn spans(ticks: &[TickSample], last_s: f64, pred: impl Fn(&TickSample) -> bool) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut open: Option<f64> = None;
    for (i, t) in ticks.iter().enumerate() {
        let from = t.now_ns as f64 * 1e-9;
        let to = ticks
            .get(i + 1)
            .map(|n| n.now_ns as f64 * 1e-9)
            .unwrap_or(last_s);
        match (pred(t), open) {
            (true, None) => open = Some(from),
            (false, Some(s)) => {
                out.push((s, from));
                open = None;
            }
            _ => {}
        }
        if i + 1 == ticks.len() {
            if let Some(s) = open {
                out.push((s, to));
            }
        }
    }
    out
}

/// Value at quantile `q` of `v`; 0 when empty.
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// A log-scale range, in whole decades, holding every positive value in `vals`.
fn log_range(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = vals
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.001, 1.0);
    }
    let lo = 10f64.powf((lo / 1.5).log10().floor());
    let hi = 10f64.powf((hi * 1.5).log10().ceil());
    // Slightly wider than the decades so that both end decades get their labels.
    (lo * 0.98, hi.max(lo * 10.0) * 1.02)
}

/// Milliseconds for labels: whole numbers from 1 up, else up to three significant digits.
fn fmt_ms(v: f64) -> String {
    if v >= 1.0 || v <= 0.0 {
        format!("{v:.0}")
    } else {
        let decimals = (2 - v.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Draw the brain loop over simulated time. Lockstep: the tick's compute time on the brain's
/// clock (the modelled cost) against the deadline; real time (ticks carry
/// `wall_lateness_ns`): the wall clock's start lateness and compute against the deadline. Then
/// drowsiness and speed scale with sleeps shaded, and a freshness strip per region.
/// `period_ns` is the tick period for ticks that do not carry their own.
pub fn loop_png(path: &Path, ticks: &[TickSample], period_ns: u64) -> Result<(), PlotError> {
    let (w, h, rgb) = loop_rgb(ticks, period_ns, labels_available())?;
    Ok(super::save_rgb_png(path, w, h, &rgb)?)
}

fn loop_rgb(
    ticks: &[TickSample],
    period_ns: u64,
    fonts: bool,
) -> Result<(u32, u32, Vec<u8>), PlotError> {
    let (w, h) = (1000u32, 900u32);
    let period_ns = ticks
        .iter()
        .map(|t| t.period_ns)
        .find(|&p| p > 0)
        .unwrap_or(period_ns)
        .max(1);
    let period_ms = period_ns as f64 * 1e-6;
    let realtime = ticks.iter().any(|t| t.wall_lateness_ns.is_some());
    // Brains without an integrator (the pilot) report no period, cost model or regions.
    let integrator = ticks.iter().any(|t| t.period_ns > 0);
    let secs = |t: &TickSample| t.now_ns as f64 * 1e-9;
    let t_end = ticks
        .last()
        .map(|t| secs(t) + period_ns as f64 * 1e-9)
        .unwrap_or(1.0)
        .max(1e-3);
    let ms = |ns: u64| ns as f64 * 1e-6;
    let late_ms = |t: &TickSample| {
        if realtime {
            ms(t.wall_lateness_ns.unwrap_or(0))
        } else {
            ms(t.lateness_ns)
        }
    };
    let asleep = spans(ticks, t_end, |t| t.sleeping);
    let missed: u64 = ticks.iter().map(|t| t.missed as u64).sum();
    let (xl, yl) = if fonts { (30, 115) } else { (0, 0) };
    let time_label = |v: &f64| format!("{v:.0} s");

    let rgb = render(w, h, |root| {
        let (top, rest) = root.split_vertically(360);
        let (middle, bottom) = rest.split_vertically(270);

        // Tick timing against the deadline.
        let (head, area) = top.split_vertically(46);
        let compute: Vec<f64> = ticks.iter().map(|t| ms(t.compute_ns)).collect();
        let late: Vec<f64> = ticks.iter().map(late_ms).collect();
        let title = if realtime {
            format!(
                "Wall clock: tick start lateness and compute vs the {period_ms} ms deadline \
                 (lateness p50 {} ms, p99 {} ms, max {} ms; {missed} missed)",
                fmt_ms(quantile(&late, 0.5)),
                fmt_ms(quantile(&late, 0.99)),
                fmt_ms(quantile(&late, 1.0)),
            )
        } else {
            format!(
                "Tick compute time ({}) vs the {period_ms} ms deadline \
                 ({} ticks, {missed} missed, compute p50 {} ms, max {} ms)",
                if integrator {
                    "modelled, brain's clock"
                } else {
                    "wall clock; no cost model"
                },
                ticks.len(),
                fmt_ms(quantile(&compute, 0.5)),
                fmt_ms(quantile(&compute, 1.0)),
            )
        };
        let lateness_label = if realtime {
            "start lateness (wall)"
        } else {
            "start lateness"
        };
        let compute_label = if realtime || !integrator {
            "compute (wall)"
        } else {
            "compute (modelled)"
        };
        // Real-time compute is noisy from tick to tick: dots read better than a line there.
        let compute_mark = if realtime {
            Mark::Dot(COMPUTE)
        } else {
            Mark::Line(COMPUTE)
        };
        let mut legend = vec![(compute_mark, compute_label)];
        if late.iter().any(|&l| l > 0.0) {
            legend.push((Mark::Dot(LATENESS), lateness_label));
        }
        legend.extend([
            (Mark::Line(DEADLINE), "deadline (period)"),
            (Mark::Dot(MISSED), "missed deadline"),
            (Mark::Box(ASLEEP), "asleep"),
        ]);
        header(&head, &title, &legend, fonts)?;
        let (lo, hi) = log_range(
            compute
                .iter()
                .chain(late.iter())
                .copied()
                .chain([period_ms]),
        );
        let mut chart = ChartBuilder::on(&area)
            .margin(8)
            .margin_right(20)
            .x_label_area_size(xl)
            .y_label_area_size(yl)
            .build_cartesian_2d(0f64..t_end, (lo..hi).log_scale())?;
        let mut mesh = chart.configure_mesh();
        mesh.light_line_style(GRID.mix(0.4))
            .bold_line_style(GRID)
            .axis_style(INK);
        if fonts {
            mesh.label_style(text(12.0))
                .y_desc("ms (log)")
                .x_label_formatter(&time_label)
                .y_label_formatter(&|v| fmt_ms(*v));
        }
        mesh.draw()?;
        chart.draw_series(
            asleep
                .iter()
                .map(|&(a, b)| Rectangle::new([(a, lo), (b, hi)], ASLEEP.filled())),
        )?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, period_ms), (t_end, period_ms)],
            DEADLINE.stroke_width(2),
        )))?;
        let clamp = |v: f64| v.max(lo);
        let compute_at = ticks
            .iter()
            .zip(&compute)
            .map(|(t, &c)| (secs(t), clamp(c)));
        if realtime {
            chart.draw_series(compute_at.map(|p| Circle::new(p, 1, COMPUTE.filled())))?;
        } else {
            chart.draw_series(LineSeries::new(compute_at, COMPUTE.stroke_width(1)))?;
        }
        chart.draw_series(
            ticks
                .iter()
                .zip(&late)
                .filter(|(_, &l)| l > 0.0)
                .map(|(t, &l)| Circle::new((secs(t), l), 2, LATENESS.filled())),
        )?;
        // A missed deadline is marked on whichever ran over: the compute or the start.
        chart.draw_series(
            ticks
                .iter()
                .zip(compute.iter().zip(&late))
                .filter(|(t, _)| t.missed > 0)
                .map(|(t, (&c, &l))| Circle::new((secs(t), clamp(c.max(l))), 4, MISSED.filled())),
        )?;

        // Drowsiness and speed scale.
        let (head, area) = middle.split_vertically(46);
        let sleeps = asleep.len();
        let d_max = ticks.iter().map(|t| t.drowsiness).fold(0.0, f64::max);
        header(
            &head,
            &format!(
                "Drowsiness and speed scale (max drowsiness {d_max:.2}; {sleeps} sleep{})",
                if sleeps == 1 { "" } else { "s" }
            ),
            &[
                (Mark::Line(DROWSY), "drowsiness"),
                (Mark::Line(SPEED), "speed scale"),
                (Mark::Box(ASLEEP), "asleep"),
            ],
            fonts,
        )?;
        let mut chart = ChartBuilder::on(&area)
            .margin(8)
            .margin_right(20)
            .x_label_area_size(xl)
            .y_label_area_size(yl)
            .build_cartesian_2d(0f64..t_end, 0f64..1.05)?;
        let mut mesh = chart.configure_mesh();
        mesh.light_line_style(GRID.mix(0.4))
            .bold_line_style(GRID)
            .axis_style(INK)
            .y_labels(6);
        if fonts {
            mesh.label_style(text(12.0))
                .x_label_formatter(&time_label)
                .y_label_formatter(&|v| format!("{v:.1}"));
        }
        mesh.draw()?;
        chart.draw_series(
            asleep
                .iter()
                .map(|&(a, b)| Rectangle::new([(a, 0.0), (b, 1.05)], ASLEEP.filled())),
        )?;
        chart.draw_series(LineSeries::new(
            ticks.iter().map(|t| (secs(t), t.speed_scale)),
            SPEED.stroke_width(2),
        ))?;
        chart.draw_series(LineSeries::new(
            ticks.iter().map(|t| (secs(t), t.drowsiness)),
            DROWSY.stroke_width(2),
        ))?;

        // Region freshness, one strip per input (top to bottom).
        let (head, area) = bottom.split_vertically(46);
        if !integrator {
            return header(
                &head,
                "Input freshness: none (this brain has no integrator and no regions)",
                &[],
                fonts,
            );
        }
        header(
            &head,
            "Input freshness (each tick)",
            &[
                (Mark::Box(FRESH), "fresh"),
                (Mark::Box(LATE), "late (older than 1.5 periods)"),
                (Mark::Box(STALE), "stale"),
            ],
            fonts,
        )?;
        let mut rows: Vec<(&str, ColourOf)> = RegionId::ALL
            .iter()
            .map(|&r| {
                let bit = 1u8 << r.index();
                let f: ColourOf = Box::new(move |t| {
                    if t.stale_mask & bit != 0 {
                        STALE
                    } else if t.late_mask & bit != 0 {
                        LATE
                    } else {
                        FRESH
                    }
                });
                (r.name(), f)
            })
            .collect();
        rows.push((
            "body state",
            Box::new(|t| if t.body_stale { STALE } else { FRESH }),
        ));
        let n = rows.len();
        let names: Vec<&str> = rows.iter().map(|(name, _)| *name).collect();
        let row_label = move |v: &SegmentValue<u32>| match v {
            SegmentValue::CenterOf(i) => names
                .get(names.len().wrapping_sub(1).wrapping_sub(*i as usize))
                .map(|s| s.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        };
        // Rows 0 (bottom) to n - 1 (top); plotters' integer ranges include their end.
        let top_row = n as u32 - 1;
        let mut chart = ChartBuilder::on(&area)
            .margin(8)
            .margin_right(20)
            .x_label_area_size(xl)
            .y_label_area_size(yl)
            .build_cartesian_2d(0f64..t_end, (0u32..top_row).into_segmented())?;
        let mut mesh = chart.configure_mesh();
        mesh.disable_y_mesh()
            .light_line_style(GRID.mix(0.0))
            .bold_line_style(GRID)
            .axis_style(INK)
            .y_labels(n);
        if fonts {
            mesh.label_style(text(12.0))
                .x_desc("simulated time [s]")
                .x_label_formatter(&time_label)
                .y_label_formatter(&row_label);
        }
        mesh.draw()?;
        for (k, (_, colour_of)) in rows.iter().enumerate() {
            let row = n - 1 - k;
            // One rectangle per run of ticks with the same colour.
            let mut runs: Vec<(f64, f64, RGBColor)> = Vec::new();
            for (i, t) in ticks.iter().enumerate() {
                let c = colour_of(t);
                let to = ticks.get(i + 1).map(secs).unwrap_or(t_end);
                match runs.last_mut() {
                    Some(last) if last.2 == c => last.1 = to,
                    _ => runs.push((secs(t), to, c)),
                }
            }
            let row = row as u32;
            let upper = if row == top_row {
                SegmentValue::Last
            } else {
                SegmentValue::Exact(row + 1)
            };
            chart.draw_series(runs.into_iter().map(|(a, b, c)| {
                let mut r = Rectangle::new(
                    [(a, SegmentValue::Exact(row)), (b, upper.clone())],
                    c.filled(),
                );
                r.set_margin(3, 3, 0, 0);
                r
            }))?;
        }
        Ok(())
    })?;
    Ok((w, h, rgb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Mode;

    fn ticks(realtime: bool) -> Vec<TickSample> {
        (0..500u64)
            .map(|k| TickSample {
                now_ns: k * 20_000_000,
                compute_ns: if k % 97 == 0 { 60_000_000 } else { 16_000 },
                drowsiness: (k as f64 / 500.0).min(1.0),
                missed: u32::from(k % 97 == 1) * 2,
                mode: Mode::default(),
                sleeping: (300..340).contains(&k),
                period_ns: 20_000_000,
                lateness_ns: if k % 97 == 1 { 40_000_000 } else { 0 },
                wall_lateness_ns: realtime.then_some(50_000 + k * 1_000),
                speed_scale: 1.0 - (k as f64 / 1000.0),
                stale_mask: if (100..150).contains(&k) { 0b0001 } else { 0 },
                late_mask: if (200..220).contains(&k) { 0b1000 } else { 0 },
                body_stale: (400..410).contains(&k),
                ..TickSample::default()
            })
            .collect()
    }

    fn distinct_colours(rgb: &[u8]) -> usize {
        let mut seen = std::collections::HashSet::new();
        for p in rgb.chunks_exact(3) {
            seen.insert([p[0], p[1], p[2]]);
        }
        seen.len()
    }

    #[test]
    fn loop_plot_draws_lockstep_and_realtime_runs_with_and_without_labels() {
        for realtime in [false, true] {
            for fonts in [false, labels_available()] {
                let (w, h, rgb) = loop_rgb(&ticks(realtime), 20_000_000, fonts).unwrap();
                assert_eq!(rgb.len(), (w * h * 3) as usize);
                for c in [STALE, LATE, ASLEEP, DROWSY, MISSED] {
                    assert!(
                        rgb.chunks_exact(3).any(|p| p == [c.0, c.1, c.2]),
                        "{c:?} drawn (realtime {realtime}, fonts {fonts})"
                    );
                }
            }
        }
        // A brain without an integrator (no period of its own, no regions).
        let pilot: Vec<TickSample> = ticks(false)
            .into_iter()
            .map(|t| TickSample { period_ns: 0, ..t })
            .collect();
        let (_, _, rgb) = loop_rgb(&pilot, 20_000_000, labels_available()).unwrap();
        assert!(!rgb
            .chunks_exact(3)
            .any(|p| p == [FRESH.0, FRESH.1, FRESH.2]));
        // An empty run still yields a plot.
        loop_rgb(&[], 20_000_000, false).unwrap();
    }

    #[test]
    fn spans_cover_runs_of_ticks() {
        let t = ticks(false);
        let s = spans(&t, 10.0, |t| t.sleeping);
        assert_eq!(s.len(), 1);
        assert!(
            (s[0].0 - 6.0).abs() < 1e-9 && (s[0].1 - 6.8).abs() < 1e-9,
            "{s:?}"
        );
        let s = spans(&t, 10.0, |_| true);
        assert_eq!(s, vec![(0.0, 10.0)]);
        assert!(spans(&t, 10.0, |_| false).is_empty());
    }

    #[test]
    fn milliseconds_read_well() {
        assert_eq!(fmt_ms(0.019131), "0.0191");
        assert_eq!(fmt_ms(0.25), "0.25");
        assert_eq!(fmt_ms(0.01), "0.01");
        assert_eq!(fmt_ms(123.4), "123");
        assert_eq!(fmt_ms(0.0), "0");
    }

    #[test]
    fn log_range_is_whole_decades_around_the_values() {
        let (lo, hi) = log_range([0.016, 20.0, 0.0].into_iter());
        assert!(
            (lo - 0.0098).abs() < 1e-9 && (hi - 102.0).abs() < 1e-9,
            "{lo} {hi}"
        );
        assert_eq!(log_range(std::iter::empty()), (0.001, 1.0));
    }

    #[test]
    fn trajectory_plot_draws_the_arena() {
        use crate::world::{BoxObstacle, PlacedObject};
        let wall = |x, y, hx, hy| BoxObstacle {
            x,
            y,
            hx,
            hy,
            boundary: true,
        };
        let object = |colour, shape, x, y, goal| PlacedObject {
            colour,
            shape,
            x,
            y,
            goal,
        };
        let layout = Layout {
            size_m: 4.0,
            boxes: vec![
                wall(0.0, 2.0, 2.0, 0.05),
                wall(0.0, -2.0, 2.0, 0.05),
                wall(2.0, 0.0, 0.05, 2.0),
                wall(-2.0, 0.0, 0.05, 2.0),
                BoxObstacle {
                    boundary: false,
                    ..wall(0.5, -0.5, 0.2, 0.3)
                },
            ],
            objects: vec![
                object(Colour::Red, Shape::Ball, 1.0, 1.0, true),
                object(Colour::Blue, Shape::Cube, -1.0, 1.0, false),
            ],
            start: (-1.0, -1.0, 0.0),
            goal_index: 0,
            within_m: 0.45,
            shortest_path_m: 2.8,
        };
        let track = vec![(-1.0, -1.0), (0.0, 0.2), (0.8, 0.8)];
        let (w, h, rgb) = trajectory_rgb(&layout, &track, "test", false).unwrap();
        assert_eq!(rgb.len(), (w * h * 3) as usize);
        for c in [
            WALL,
            OBSTACLE,
            GOAL_REGION,
            PATH,
            START,
            END,
            colour_rgb(Colour::Blue),
        ] {
            assert!(
                rgb.chunks_exact(3).any(|p| p == [c.0, c.1, c.2]),
                "{c:?} drawn"
            );
        }
        assert!(distinct_colours(&rgb) > 8);
    }
}
