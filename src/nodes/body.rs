//! The simulated body as its own node (`brainloop node body --scenario S`, started by
//! `brainloop up --body sim`): the MuJoCo robot in a scenario's arena, stepped in real time,
//! behind the simulated board (the firmware's 250 ms command watchdog and e-stop latch). It
//! publishes its body state (100 Hz) and camera frames (`sensor_msgs/Image`, at vision's rate)
//! and takes wheel setpoints from the bus. If the integrator's node dies, no setpoint arrives
//! and the board's watchdog stops the wheels, as the real firmware does. It scores the run the
//! way `sim` does (ground truth, never fed to the brain): the time the goal was reached and the
//! collisions, in the summary it prints at the end.

use crate::body::RobotParams;
use crate::bus::wire::{Header, ImageMsg};
use crate::bus::zenoh::{net_topics as nt, ZenohBus};
use crate::config::Config;
use crate::msg::WheelSpeeds;
use crate::sim::bodies::{self, Board, Physics};
use crate::sim::camera::SimCamera;
use crate::sim::mjcf::TIMESTEP;
use crate::sim::scenario::Scenario;
use crate::util::monotonic_ns;
use anyhow::{Context, Result};
use crossbeam_utils::atomic::AtomicCell;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `brainloop node body` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct BodyNodeOptions {
    /// Configuration file.
    pub config: PathBuf,
    /// Scenario name in `scenarios/` or a path.
    pub scenario: String,
    /// Layout seed (default: the scenario's).
    pub seed: Option<u64>,
    /// How to join the bus.
    pub net: super::NetArgs,
    /// Stop after this many seconds (default: the scenario's time limit).
    pub seconds: Option<f64>,
}

/// What the body node saw.
#[derive(Debug, Clone, Serialize)]
pub struct BodyNodeSummary {
    /// Scenario.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Whether the robot got within the goal distance.
    pub success: bool,
    /// When, s after the start.
    pub time_to_goal_s: Option<f64>,
    /// Closest distance to the goal, m.
    pub min_distance_m: f64,
    /// Contact onsets.
    pub collisions: u32,
    /// Wheel setpoints received.
    pub commands: u64,
    /// Camera frames published.
    pub frames: u64,
    /// Wall time, s.
    pub wall_s: f64,
}

/// Run the simulated body in real time until `stop` or the time limit.
pub fn run_sim_body_node(opts: &BodyNodeOptions, stop: Arc<AtomicBool>) -> Result<BodyNodeSummary> {
    let cfg = Config::load(&opts.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let scenario = Scenario::find(Path::new("scenarios"), &opts.scenario)
        .with_context(|| format!("--scenario {}", opts.scenario))?;
    let seed = opts.seed.unwrap_or(scenario.seed);
    let layout = scenario.layout(seed)?;
    let params = RobotParams::load_default();
    let limit_s = opts.seconds.unwrap_or(scenario.time_limit_s);
    if !(limit_s.is_finite() && limit_s > 0.0 && limit_s <= 86_400.0) {
        anyhow::bail!("--seconds must be within (0, 86400], got {limit_s}");
    }
    let mut body = bodies::build(Physics::Mujoco, &Board::Simulated, &params, &layout)?;
    let mut camera = match body.mujoco_mut() {
        Some(m) => Some(SimCamera::new(
            m,
            params.camera_width,
            params.camera_height,
        )?),
        None => None,
    };
    let net = ZenohBus::open(&super::bus_options(&cfg, &opts.net)?, "body", monotonic_ns)
        .map_err(|e| anyhow::anyhow!("cannot join the zenoh bus: {e}"))?;
    let e = |e: crate::bus::zenoh::ZenohError| anyhow::anyhow!("zenoh bus: {e}");
    let wheels: Arc<AtomicCell<Option<WheelSpeeds>>> = Arc::default();
    let w2 = wheels.clone();
    let commands = net
        .subscribe_with(nt::WHEELS, move |w: WheelSpeeds| w2.store(Some(w)))
        .map_err(e)?;
    let mut state_pub = net.publisher(&nt::BODY_STATE).map_err(e)?;
    let mut frame_pub = net.publisher(&nt::CAMERA).map_err(e)?;
    let vision_rate = cfg
        .regions
        .get("vision")
        .filter(|r| r.enabled)
        .map_or(10.0, |r| r.rate_hz)
        .clamp(0.1, 100.0);
    let steps_per_frame = ((1.0 / vision_rate) / TIMESTEP).round().max(1.0) as u64;
    let steps_per_state = (0.01 / TIMESTEP).round().max(1.0) as u64;
    let goal = *layout.goal();
    tracing::info!(scenario = %scenario.name, seed, instruction = %scenario.instruction, "simulated body running in real time");

    let (mut buf, mut img) = (Vec::with_capacity(256), Vec::with_capacity(160 * 1024));
    let (mut frames, mut step) = (0u64, 0u64);
    let (mut success_at, mut min_dist) = (None, f64::INFINITY);
    let total = (limit_s / TIMESTEP).ceil() as u64;
    let wall0 = Instant::now();
    while step <= total && !stop.load(Ordering::SeqCst) {
        let due = Duration::from_secs_f64(step as f64 * TIMESTEP);
        if let Some(wait) = due.checked_sub(wall0.elapsed()) {
            std::thread::sleep(wait);
        }
        if let Some(w) = wheels.take() {
            // The board validates and watches the setpoints as the firmware would.
            let _ = body.as_body_mut().command(w);
        }
        if step % steps_per_state == 0 {
            use crate::bus::zenoh::Wire;
            let mut s = body.as_body().state();
            s.stamp_ns = monotonic_ns();
            s.encode(&mut buf);
            state_pub.put(&buf);
        }
        if let (Some(cam), Some(m)) = (camera.as_mut(), body.mujoco_mut()) {
            if step % steps_per_frame == 0 {
                let f = cam.render_rgb(m)?;
                ImageMsg {
                    header: Header::from_stamp_ns(monotonic_ns(), "camera"),
                    height: f.height,
                    width: f.width,
                    encoding: "rgb8".into(),
                    is_bigendian: 0,
                    step: 3 * f.width,
                    data: f.data,
                }
                .encode_into(&mut img);
                frame_pub.put(&img);
                frames += 1;
            }
        }
        body.advance(TIMESTEP);
        if let Some(message) = body.failure() {
            anyhow::bail!("the simulated body failed: {message}");
        }
        let (x, y, _) = body.ground_truth_pose();
        let d = (x - goal.x).hypot(y - goal.y);
        min_dist = min_dist.min(d);
        if d <= layout.within_m && success_at.is_none() {
            let t = step as f64 * TIMESTEP;
            tracing::info!(at_s = format!("{t:.1}"), "goal reached");
            success_at = Some(t);
        }
        step += 1;
    }
    let _ = body.as_body_mut().command(WheelSpeeds::default());
    Ok(BodyNodeSummary {
        scenario: scenario.name.clone(),
        seed,
        success: success_at.is_some(),
        time_to_goal_s: success_at,
        min_distance_m: min_dist,
        collisions: body.collisions(),
        commands: commands.received.load(Ordering::Relaxed),
        frames,
        wall_s: wall0.elapsed().as_secs_f64(),
    })
}
