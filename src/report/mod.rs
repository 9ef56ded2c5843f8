//! Run reports: summaries, plots, the MCAP recording and its replay. May depend on msg and
//! world only.
//!
//! What a simulated run leaves behind for a person to look at and for tools to
//! compare. `summary.json` (outcome and loop health; identical for the same seed in lockstep
//! apart from wall-clock keys), `trajectory.png` (top-down map), `loop.png` (tick timing against
//! the deadline, drowsiness, speed scale, sleeps and region freshness over time; see [`plot`]),
//! a few camera frames, `timing.json` (wall-clock figures) and an MCAP recording of the run's
//! messages that [`mcap::replay`] plays back.

pub mod mcap;
pub mod plot;

pub use plot::{loop_png, trajectory_png, PlotError};
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
    /// Frames rejected for a CRC mismatch at either end of the link (host and board).
    #[serde(default)]
    pub link_crc_errors: u64,
    /// Frames rejected for another decode error (COBS, length, version, type) at either end.
    #[serde(default)]
    pub link_decode_errors: u64,
    /// Telemetry frames the host refused as physically implausible (an encoder jump, a wheel
    /// speed out of reach).
    #[serde(default)]
    pub link_implausible_telemetry: u64,
    /// Wall-clock duration, s (varies run to run).
    pub wall_time_s: f64,
    /// Simulated seconds per wall-clock second (varies run to run).
    pub realtime_factor: f64,
    /// Each task of a scenario with `[[steps]]`, in order (empty for a one-task scenario).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepResult>,
}

/// One task of a scenario with several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// The instruction given.
    pub instruction: String,
    /// The object to reach.
    pub object: String,
    /// Whether it was reached within the step's time limit.
    pub success: bool,
    /// Time from the instruction to reaching it, s.
    pub time_s: Option<f64>,
    /// Distance driven during the step (ground truth), m.
    pub path_length_m: f64,
    /// Whether the brain slept before the step.
    pub slept_before: bool,
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
    // For `loop.png` only: not serialised, so `/brain/tick` in `run.mcap` keeps its fields.
    /// The integrator's tick period (its deadline), ns; 0 for a brain without an integrator
    /// (the pilot: its ticks follow the episode's period, and it has no regions).
    #[serde(skip)]
    pub period_ns: u64,
    /// How late the tick started against its deadline on the brain's clock, ns.
    #[serde(skip)]
    pub lateness_ns: u64,
    /// How far the wall clock was past the tick's simulated start when it began, ns: `Some` in
    /// real time only.
    #[serde(skip)]
    pub wall_lateness_ns: Option<u64>,
    /// Speed scale the brain applied to autonomy, in [0, 1].
    #[serde(skip)]
    pub speed_scale: f64,
    /// Bit `i` (`RegionId::index`): region `i` stale.
    #[serde(skip)]
    pub stale_mask: u8,
    /// Bit `i`: region `i` fresh but late (older than 1.5 of its periods).
    #[serde(skip)]
    pub late_mask: u8,
    /// Body state stale.
    #[serde(skip)]
    pub body_stale: bool,
}

/// Write RGB8 pixels as a PNG file.
pub fn save_rgb_png(path: &Path, w: u32, h: u32, rgb: &[u8]) -> Result<(), image::ImageError> {
    image::save_buffer(path, rgb, w, h, image::ExtendedColorType::Rgb8)
}

/// Encode RGB8 pixels as PNG bytes.
pub fn encode_png(w: u32, h: u32, rgb: &[u8]) -> Result<Vec<u8>, image::ImageError> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(
        rgb,
        w,
        h,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

/// Round to 6 decimals (keeps summaries readable and stable).
pub fn r6(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1e6).round() / 1e6
    } else {
        v
    }
}
