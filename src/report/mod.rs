//! Run reports: what a simulated run leaves behind for a person to look at and for tools to
//! compare. `summary.json` (outcome and loop health; identical for the same seed in lockstep
//! apart from wall-clock keys), `trajectory.png` (top-down map), `loop.png` (tick latency and
//! drowsiness over time), a few camera frames, `timing.json` (wall-clock figures) and an MCAP
//! recording of the run's messages that [`mcap::replay`] plays back.

pub mod canvas;
pub mod mcap;

use crate::world::{Colour, Layout};
use canvas::{Axes, Canvas};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Outcome and loop health of one run. Every field except `wall_time_s` and
/// `realtime_factor` depends only on the scenario, seed and options in lockstep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// The instruction given.
    pub instruction: String,
    /// Layout seed.
    pub seed: u64,
    /// What drove the robot.
    pub brain: String,
    /// The simulated body.
    pub body: String,
    /// Clock: "lockstep" or "realtime".
    pub clock: String,
    /// Whether the goal predicate held before the time limit.
    pub success: bool,
    /// "reached", "timeout" or "stopped".
    pub outcome: String,
    /// Simulated time at success, s.
    pub time_to_goal_s: Option<f64>,
    /// Simulated time run, s.
    pub sim_time_s: f64,
    /// Distance driven (ground truth), m.
    pub path_length_m: f64,
    /// Shortest collision-free path into the goal region, m.
    pub shortest_path_m: f64,
    /// Success weighted by path length (SPL) of this run.
    pub spl: f64,
    /// Contact onsets between the robot and walls, obstacles or objects.
    pub collisions: u32,
    /// Smallest distance between the robot's footprint and an obstacle, m (0 = touching).
    pub min_obstacle_distance_m: f64,
    /// Distance from the robot to the goal object at the end, m.
    pub final_distance_to_goal_m: f64,
    /// Integrator ticks run.
    pub ticks: u64,
    /// Ticks whose deadline was missed.
    pub missed_ticks: u64,
    /// Highest drowsiness.
    pub drowsiness_max: f64,
    /// Mean drowsiness.
    pub drowsiness_mean: f64,
    /// Sleep episodes.
    pub sleeps: u32,
    /// Camera frames rendered.
    pub camera_frames: u64,
    /// Frames host -> board over the in-process serial protocol.
    pub link_frames_sent: u64,
    /// Telemetry frames board -> host.
    pub link_frames_received: u64,
    /// Wall-clock duration, s (varies run to run).
    pub wall_time_s: f64,
    /// Simulated seconds per wall-clock second (varies run to run).
    pub realtime_factor: f64,
}

/// One integrator tick as the report sees it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TickSample {
    /// Simulated time, ns.
    pub now_ns: u64,
    /// Compute time of the tick on the brain's own clock, ns (the integrator's deterministic
    /// cost model in lockstep, the wall clock in real time).
    pub compute_ns: u64,
    /// Wall-clock time the tick took in this process, ns (not deterministic).
    pub wall_ns: u64,
    /// Drowsiness in [0, 1].
    pub drowsiness: f64,
    /// Missed cycles before this tick.
    pub missed: u32,
    /// Commanded linear speed, m/s.
    pub linear: f64,
    /// Commanded angular speed, rad/s.
    pub angular: f64,
    /// Behaviour mode.
    pub mode: crate::msg::Mode,
    /// Whether the brain is asleep.
    pub sleeping: bool,
}

fn colour_rgb(c: Colour) -> [u8; 3] {
    c.rgb().map(|v| (v * 255.0).round() as u8)
}

/// Draw the top-down map: walls, obstacles, objects, goal region, path.
pub fn trajectory_png(
    path: &Path,
    layout: &Layout,
    track: &[(f64, f64)],
    title: &str,
) -> Result<(), image::ImageError> {
    let size = 640u32;
    let mut c = Canvas::new(size, size + 24, [250, 250, 247]);
    let half = layout.size_m / 2.0 + 0.1;
    let ax = Axes {
        left: 40.0,
        top: 40.0,
        width: size as f64 - 60.0,
        height: size as f64 - 60.0,
        x: (-half, half),
        y: (-half, half),
    };
    let scale = ax.width / (2.0 * half);
    for b in &layout.boxes {
        let (x0, y0) = ax.map(b.x - b.hx, b.y - b.hy);
        let (x1, y1) = ax.map(b.x + b.hx, b.y + b.hy);
        let col = if b.boundary {
            [120, 120, 115]
        } else {
            [90, 80, 75]
        };
        c.rect(x0, y0, x1, y1, col);
    }
    let g = layout.goal();
    let (gx, gy) = ax.map(g.x, g.y);
    c.disc(gx, gy, layout.within_m * scale, [214, 240, 214]);
    for o in &layout.objects {
        let (x, y) = ax.map(o.x, o.y);
        let r = o.shape.radius() * scale;
        let col = colour_rgb(o.colour);
        match o.shape {
            crate::world::Shape::Cube => {
                c.rect(x - r * 0.7, y - r * 0.7, x + r * 0.7, y + r * 0.7, col)
            }
            _ => c.disc(x, y, r, col),
        }
        if o.goal {
            c.text(
                x as i64 - 16,
                y as i64 - r as i64 - 12,
                "GOAL",
                1,
                [0, 90, 0],
            );
        }
    }
    for w in track.windows(2) {
        let (x0, y0) = ax.map(w[0].0, w[0].1);
        let (x1, y1) = ax.map(w[1].0, w[1].1);
        c.line(x0, y0, x1, y1, 2.0, [20, 60, 200]);
    }
    let (sx, sy) = ax.map(layout.start.0, layout.start.1);
    c.disc(sx, sy, 5.0, [20, 160, 20]);
    if let Some(&(ex, ey)) = track.last() {
        let (x, y) = ax.map(ex, ey);
        c.disc(x, y, 5.0, [200, 30, 30]);
    }
    ax.frame(&mut c, title, "x [m]", "y [m]");
    c.text(
        40,
        size as i64 + 4,
        "green: start  red: end  blue: path  light green: goal region",
        1,
        [60, 60, 60],
    );
    c.save_png(path)
}

/// Draw tick compute time and drowsiness over simulated time.
pub fn loop_png(
    path: &Path,
    ticks: &[TickSample],
    period_ns: u64,
) -> Result<(), image::ImageError> {
    let (w, h) = (800u32, 520u32);
    let mut c = Canvas::new(w, h, [250, 250, 247]);
    let t_end = ticks
        .last()
        .map(|t| t.now_ns as f64 * 1e-9)
        .unwrap_or(1.0)
        .max(1e-3);
    let max_ms = ticks
        .iter()
        .map(|t| t.compute_ns as f64 * 1e-6)
        .fold(period_ns as f64 * 1e-6 * 0.25, f64::max)
        .max(0.01);
    let top = Axes {
        left: 70.0,
        top: 30.0,
        width: w as f64 - 100.0,
        height: 190.0,
        x: (0.0, t_end),
        y: (0.0, max_ms * 1.1),
    };
    let deadline = period_ns as f64 * 1e-6;
    if deadline <= max_ms * 1.1 {
        let (x0, y) = top.map(0.0, deadline);
        let (x1, _) = top.map(t_end, deadline);
        c.line(x0, y, x1, y, 1.0, [220, 60, 60]);
        c.text(
            x1 as i64 - 120,
            y as i64 - 10,
            "tick deadline",
            1,
            [200, 40, 40],
        );
    }
    for t in ticks {
        let (x, y) = top.map(t.now_ns as f64 * 1e-9, t.compute_ns as f64 * 1e-6);
        let col = if t.missed > 0 {
            [220, 40, 40]
        } else {
            [30, 70, 190]
        };
        c.disc(x, y, 1.2, col);
    }
    top.frame(
        &mut c,
        "tick compute time (brain's clock; red: missed deadlines)",
        "sim time [s]",
        "ms",
    );
    let bottom = Axes {
        left: 70.0,
        top: 290.0,
        width: w as f64 - 100.0,
        height: 190.0,
        x: (0.0, t_end),
        y: (0.0, 1.0),
    };
    for pair in ticks.windows(2) {
        let (x0, y0) = bottom.map(pair[0].now_ns as f64 * 1e-9, pair[0].drowsiness);
        let (x1, y1) = bottom.map(pair[1].now_ns as f64 * 1e-9, pair[1].drowsiness);
        c.line(x0, y0, x1, y1, 2.0, [150, 60, 160]);
        if pair[1].sleeping {
            c.line(
                x1,
                bottom.top + bottom.height - 4.0,
                x1,
                bottom.top + bottom.height,
                1.0,
                [30, 30, 30],
            );
        }
    }
    bottom.frame(&mut c, "drowsiness", "sim time [s]", "");
    c.save_png(path)
}

/// Round to 6 decimals (keeps summaries readable and stable).
pub fn r6(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1e6).round() / 1e6
    } else {
        v
    }
}
