//! The language-grounded decision: a small state machine with memory that turns the query
//! connector's percept (target bearing and confidence), the range rays and proprioception into a
//! motor intent. It searches when the target is not seen (turning on the spot and remembering
//! which headings it has looked at and how open each was, then moving on to the most open
//! unexplored heading), approaches by steering to the bearing, steers around obstacles with the
//! range rays, and stops on arrival when the target is centred, confident and close by range.
//!
//! The instruction reaches it only as the language region's embedding, through the query
//! connector; it never sees words, pixels or the simulator's ground truth. State is fixed-size:
//! [`GroundedPolicy::decide`] allocates nothing.

use crate::grounding::query::{InstructionInfo, Percept, QueryConnector};
use crate::msg::{BodyState, Mode, MotorIntent, Twist};
use std::f32::consts::{PI, TAU};

/// Heading bins of the search memory.
pub const HEADING_BINS: usize = 12;
/// Cells per side of the visited map (odometry frame, centred on the start: 16 m across, so a
/// start in the corner of an 8 m arena still has all of it on the map).
pub const VISIT_CELLS: usize = 32;
/// Side of one visited-map cell, m.
pub const VISIT_CELL_M: f32 = 0.5;
/// Heading bins in which weak matches are accumulated during a search.
pub const LEAD_BINS: usize = 24;
/// Seconds for the policy's held drowsiness to fall from 1 to 0.
pub const DROWSY_RELEASE_S: f32 = 5.0;

/// Tunables of the decision (defaults suit the shipped robot in `urdf/robot.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyParams {
    /// Camera horizontal field of view, rad.
    pub hfov: f32,
    /// Range sensor field of view, rad (rays spread evenly across it, right to left).
    pub range_fov: f32,
    /// Range sensor maximum distance, m (readings <= 0 or non-finite count as this).
    pub range_max: f32,
    /// Cruise speed, m/s.
    pub max_linear: f32,
    /// Fastest turn, rad/s.
    pub max_angular: f32,
    /// Turn rate while scanning, rad/s.
    pub scan_rate: f32,
    /// Confidence at which a target is taken as seen.
    pub see_confidence: f32,
    /// Weak evidence worth a look: after a scan, the robot drives towards the heading where the
    /// target's match peaked if it reached this (far objects are small in the 7x7 map, so
    /// their match is weak but well above the background's), instead of the most open one.
    pub lead_confidence: f32,
    /// A lead needs at least this free range along its bearing, m.
    pub lead_min_range: f32,
    /// Consecutive frames above `see_confidence` before approaching.
    pub see_frames: u32,
    /// Cells the target must fill to look near (arrival and ignoring its range echo).
    pub near_cells: usize,
    /// Range (from the sensor) along the target bearing at which the robot has arrived, m.
    pub arrive_range: f32,
    /// Largest |bearing| for arrival, rad.
    pub arrive_bearing: f32,
    /// Free distance a heading needs to be driven along, m.
    pub clearance: f32,
    /// Anything closer than this in the front sector stops forward motion, m.
    pub stop_distance: f32,
    /// Half-width of the driving corridor checked along a heading, m.
    pub corridor_half_width: f32,
    /// How long a sighting steers the robot after the target is lost, s.
    pub memory_s: f32,
    /// Longest leg driven between scans, m.
    pub wander_distance: f32,
    /// Longest time spent on one leg, s.
    pub wander_time_s: f32,
    /// Wheel radius and separation for odometry, m.
    pub wheel_radius: f32,
    /// Distance between the wheels, m.
    pub wheel_separation: f32,
    /// Encoder counts per wheel revolution.
    pub ticks_per_rev: u32,
}

impl PolicyParams {
    /// Parameters for a robot description.
    pub fn for_robot(p: &crate::body::RobotParams) -> Self {
        let hfov = crate::grounding::query::horizontal_fov(
            p.camera_fovy_deg.to_radians(),
            p.camera_width,
            p.camera_height,
        ) as f32;
        Self {
            hfov,
            range_fov: (p.range_fov_deg as f32).to_radians(),
            range_max: p.range_max as f32,
            max_linear: 0.5,
            max_angular: 1.6,
            scan_rate: 2.0,
            see_confidence: 0.4,
            lead_confidence: 0.06,
            lead_min_range: 0.9,
            see_frames: 2,
            near_cells: 3,
            arrive_range: 0.24,
            arrive_bearing: 0.25,
            clearance: 0.4,
            stop_distance: 0.14,
            corridor_half_width: 0.13,
            memory_s: 3.0,
            wander_distance: 2.0,
            wander_time_s: 8.0,
            wheel_radius: p.wheel_radius as f32,
            wheel_separation: p.wheel_separation as f32,
            ticks_per_rev: p.ticks_per_rev,
        }
    }
}

/// Vision input for one decision: the latest spatial map.
#[derive(Debug, Clone, Copy)]
pub struct VisionView<'a> {
    /// `[rows, cols, channels]`.
    pub grid: [u32; 3],
    /// Row-major tokens.
    pub spatial: &'a [f32],
    /// Capture time.
    pub stamp_ns: u64,
    /// Whether the slot is stale.
    pub stale: bool,
}

/// Everything one decision reads (borrowed; nothing is copied).
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    /// Now, ns.
    pub now_ns: u64,
    /// The language region's embedding of the current instruction, if any.
    pub instruction: Option<&'a [f32]>,
    /// Its stamp (a new stamp means a new instruction).
    pub instruction_stamp_ns: u64,
    /// The vision region's latest spatial map, if any.
    pub vision: Option<VisionView<'a>>,
    /// Body state (range rays, gyro, encoders).
    pub body: &'a BodyState,
    /// Drowsiness 0..1 (more caution when drowsy).
    pub drowsiness: f32,
}

/// Why the policy is doing what it does (for logs, the eval report and the teleop console).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No instruction has been given.
    NoInstruction,
    /// The instruction is about nothing the robot has learned to see.
    NotUnderstood,
    /// Turning on the spot, looking.
    Scanning,
    /// Turning to the most open unexplored heading.
    Turning,
    /// Driving to a new place to look from.
    Exploring,
    /// Turning back to where the target was last seen.
    Reacquiring,
    /// Driving to the target.
    Approaching,
    /// Steering around an obstacle.
    Avoiding,
    /// At the target.
    Arrived,
}

impl Reason {
    /// One line for humans.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::NoInstruction => "idle: no instruction",
            Reason::NotUnderstood => "idle: the instruction names nothing I have learned to see",
            Reason::Scanning => "searching: turning on the spot",
            Reason::Turning => "searching: turning to an unexplored heading",
            Reason::Exploring => "searching: moving to look elsewhere",
            Reason::Reacquiring => "searching: turning back to where the target was seen",
            Reason::Approaching => "approaching the target",
            Reason::Avoiding => "avoiding an obstacle",
            Reason::Arrived => "arrived at the target",
        }
    }
}

/// A snapshot of the policy's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyStatus {
    /// Mode of the last decision.
    pub mode: Mode,
    /// Why.
    pub reason: Reason,
    /// How the instruction relates to the concept bank.
    pub instruction: Option<InstructionInfo>,
    /// Latest percept.
    pub percept: Percept,
    /// Estimated heading (odometry), rad.
    pub heading: f32,
    /// Number of completed scans.
    pub scans: u32,
}

/// Range rays taken to be the target's own echo (not an obstacle) while approaching it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Echo {
    dir: f32,
    half: f32,
    min_range: f32,
}

impl Echo {
    fn covers(&self, angle: f32, range: f32) -> bool {
        (angle - self.dir).abs() <= self.half && range >= self.min_range
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    /// Back up a little and stop, so the body settles on its caster (level camera) before a
    /// scan; then scan in direction `dir`.
    Settle {
        until_ns: u64,
        dir: f32,
    },
    Scan {
        prev: f32,
        turned: f32,
        dir: f32,
    },
    TurnTo {
        heading: f32,
    },
    Leg {
        heading: f32,
        start_odo: f32,
        start_ns: u64,
    },
    Approach,
    Arrived,
}

/// The language-grounded decision policy.
#[derive(Debug, Clone)]
pub struct GroundedPolicy {
    params: PolicyParams,
    query: QueryConnector,
    phase: Phase,
    reason: Reason,
    mode: Mode,
    instr_stamp: Option<u64>,
    instr_sig: f32,
    last_ns: Option<u64>,
    last_ticks: Option<[i64; 2]>,
    heading: f32,
    odometer: f32,
    last_frame_ns: u64,
    percept: Percept,
    seen_frames: u32,
    target_heading: f32,
    target_seen_ns: Option<u64>,
    near_seen_ns: Option<u64>,
    looked: [bool; HEADING_BINS],
    free: [f32; HEADING_BINS],
    came_from: Option<f32>,
    /// Per world-heading bin since the search started: summed weak-match confidence, frames
    /// that contributed, and the heading of the strongest one. A far object is matched in
    /// several frames in a row; noise flickers in one.
    lead_sum: [f32; LEAD_BINS],
    lead_n: [u8; LEAD_BINS],
    lead_best: [(f32, f32); LEAD_BINS],
    /// Confidence of the lead the last leg followed (a lead that does not grow when followed
    /// is a look-alike: the next leg explores instead).
    followed: Option<f32>,
    scans: u32,
    /// Low-passed forward accelerometer reading (gravity shows here when the body pitches).
    pitch_accel: f32,
    /// Dead-reckoned position (odometry frame), m.
    pos: (f32, f32),
    /// Where the robot has been: a coarse map around the start, so exploring prefers new ground.
    visited: [bool; VISIT_CELLS * VISIT_CELLS],
    /// Drowsiness held at its peak and released slowly, and when it was last updated: one
    /// stall makes the loop drowsy for about a second, and a robot that turns cautious and
    /// bold again every second dithers in tight spots.
    drowsy_hold: (f32, u64),
}

fn visit_cell(x: f32, y: f32) -> Option<usize> {
    let half = VISIT_CELLS as f32 / 2.0;
    let i = (x / VISIT_CELL_M + half).floor();
    let j = (y / VISIT_CELL_M + half).floor();
    let n = VISIT_CELLS as f32;
    ((0.0..n).contains(&i) && (0.0..n).contains(&j)).then(|| j as usize * VISIT_CELLS + i as usize)
}

fn wrap(a: f32) -> f32 {
    let mut a = (a + PI) % TAU;
    if a < 0.0 {
        a += TAU;
    }
    a - PI
}

fn bin_of(h: f32) -> usize {
    let b = ((wrap(h) + PI) / TAU * HEADING_BINS as f32).floor() as isize;
    b.clamp(0, HEADING_BINS as isize - 1) as usize
}

fn bin_heading(b: usize) -> f32 {
    wrap((b as f32 + 0.5) / HEADING_BINS as f32 * TAU - PI)
}

impl GroundedPolicy {
    /// A policy around a query connector.
    pub fn new(query: QueryConnector, params: PolicyParams) -> Self {
        Self {
            params,
            query,
            phase: Phase::Idle,
            reason: Reason::NoInstruction,
            mode: Mode::Idle,
            instr_stamp: None,
            instr_sig: 0.0,
            last_ns: None,
            last_ticks: None,
            heading: 0.0,
            odometer: 0.0,
            last_frame_ns: 0,
            percept: Percept::default(),
            seen_frames: 0,
            target_heading: 0.0,
            target_seen_ns: None,
            near_seen_ns: None,
            looked: [false; HEADING_BINS],
            free: [0.0; HEADING_BINS],
            came_from: None,
            lead_sum: [0.0; LEAD_BINS],
            lead_n: [0; LEAD_BINS],
            lead_best: [(0.0, 0.0); LEAD_BINS],
            followed: None,
            scans: 0,
            pitch_accel: 0.0,
            pos: (0.0, 0.0),
            visited: [false; VISIT_CELLS * VISIT_CELLS],
            drowsy_hold: (0.0, 0),
        }
    }

    /// Parameters in use.
    pub fn params(&self) -> &PolicyParams {
        &self.params
    }

    /// Current status.
    pub fn status(&self) -> PolicyStatus {
        PolicyStatus {
            mode: self.mode,
            reason: self.reason,
            instruction: self.query.instruction(),
            percept: self.percept,
            heading: self.heading,
            scans: self.scans,
        }
    }

    /// After a pause (sleep or an e-stop): the instruction, the plan, the odometry and where
    /// the target was last seen are still true, so only the frame counters restart.
    pub fn reset(&mut self) {
        self.seen_frames = 0;
        self.last_ns = None;
    }

    /// Forget everything, the instruction included (a new episode).
    pub fn clear(&mut self) {
        let q = self.query.clone();
        let p = self.params.clone();
        *self = Self::new(q, p);
        self.query.clear_instruction();
    }

    fn start_search(&mut self) {
        self.looked = [false; HEADING_BINS];
        self.free = [0.0; HEADING_BINS];
        self.lead_sum = [0.0; LEAD_BINS];
        self.lead_n = [0; LEAD_BINS];
        self.lead_best = [(0.0, 0.0); LEAD_BINS];
        // Turn towards where the target was last seen, if it was seen at all.
        let dir = match self.target_seen_ns {
            Some(_) if wrap(self.target_heading - self.heading) < 0.0 => -1.0,
            _ => 1.0,
        };
        // Braking tips this body forward onto its nose (the camera then sees only the floor
        // near it): when the accelerometer says so, back up briefly first.
        self.phase = if self.pitch_accel < -1.2 {
            Phase::Settle {
                until_ns: self.last_ns.unwrap_or(0) + 500_000_000,
                dir,
            }
        } else {
            Phase::Scan {
                prev: self.heading,
                turned: 0.0,
                dir,
            }
        };
    }

    /// Dead reckoning from the gyro (encoders when the gyro reads nothing) and the odometer.
    fn integrate_odometry(&mut self, now_ns: u64, body: &BodyState) {
        let dt = match self.last_ns {
            Some(t) if now_ns > t => ((now_ns - t) as f64 * 1e-9).min(0.5) as f32,
            _ => 0.0,
        };
        self.last_ns = Some(now_ns);
        let p = &self.params;
        let mut enc_turn = 0.0;
        if let Some(prev) = self.last_ticks {
            let per_tick = TAU * p.wheel_radius / p.ticks_per_rev.max(1) as f32;
            let dl = (body.encoder_ticks[0] - prev[0]) as f32 * per_tick;
            let dr = (body.encoder_ticks[1] - prev[1]) as f32 * per_tick;
            if dl.is_finite() && dr.is_finite() && dl.abs() < 1.0 && dr.abs() < 1.0 {
                self.odometer += (dl + dr).abs() / 2.0;
                let d = (dl + dr) / 2.0;
                self.pos.0 += d * self.heading.cos();
                self.pos.1 += d * self.heading.sin();
                if let Some(c) = visit_cell(self.pos.0, self.pos.1) {
                    self.visited[c] = true;
                }
                enc_turn = (dr - dl) / p.wheel_separation.max(1e-3);
            }
        }
        self.last_ticks = Some(body.encoder_ticks);
        let ax = body.accel[0] as f32;
        if ax.is_finite() && dt > 0.0 {
            let a = (dt / 0.3).min(1.0);
            self.pitch_accel += a * (ax.clamp(-20.0, 20.0) - self.pitch_accel);
        }
        let gyro = body.gyro_z as f32;
        let turn = if gyro.is_finite() && gyro != 0.0 {
            gyro * dt
        } else {
            enc_turn
        };
        self.heading = wrap(self.heading + turn);
    }

    /// Angle of range ray `k` of `n` (right to left), rad.
    fn ray_angle(&self, k: usize, n: usize) -> f32 {
        if n <= 1 {
            return 0.0;
        }
        -self.params.range_fov / 2.0 + self.params.range_fov * k as f32 / (n - 1) as f32
    }

    fn ray(&self, body: &BodyState, k: usize) -> f32 {
        let r = body.range[k];
        if r.is_finite() && r > 0.0 {
            r.min(self.params.range_max)
        } else {
            self.params.range_max
        }
    }

    /// Free distance along direction `a` (robot frame): the nearest reading of the rays that
    /// fall inside a corridor of the robot's width along `a`, skipping the target's own echo.
    fn corridor_free(&self, body: &BodyState, a: f32, ignore: Option<Echo>) -> f32 {
        let n = (body.range_count as usize).min(body.range.len());
        let mut free = self.params.range_max;
        for k in 0..n {
            let ak = self.ray_angle(k, n);
            let r = self.ray(body, k);
            if ignore.is_some_and(|e| e.covers(ak, r)) {
                continue;
            }
            let off = (ak - a).abs();
            if off >= PI / 2.0 {
                continue;
            }
            // Lateral offset of the echo from the corridor's centre line.
            let lateral = r * off.sin();
            if lateral <= self.params.corridor_half_width {
                free = free.min(r * off.cos());
            }
        }
        free
    }

    /// Nearest reading in the front sector (±35°), ignoring the target's echo.
    fn front_min(&self, body: &BodyState, ignore: Option<Echo>) -> f32 {
        let n = (body.range_count as usize).min(body.range.len());
        let mut m = self.params.range_max;
        for k in 0..n {
            let ak = self.ray_angle(k, n);
            let r = self.ray(body, k);
            if ignore.is_some_and(|e| e.covers(ak, r)) {
                continue;
            }
            if ak.abs() <= 35f32.to_radians() {
                m = m.min(r);
            }
        }
        m
    }

    /// Angle and distance of the nearest range reading.
    fn nearest_ray(&self, body: &BodyState) -> (f32, f32) {
        let n = (body.range_count as usize).min(body.range.len());
        (0..n)
            .map(|k| (self.ray_angle(k, n), self.ray(body, k)))
            .fold(
                (0.0, self.params.range_max),
                |b, x| if x.1 < b.1 { x } else { b },
            )
    }

    /// Range along a bearing: the nearest of the rays within 12° of it.
    fn range_at(&self, body: &BodyState, bearing: f32) -> Option<f32> {
        let n = (body.range_count as usize).min(body.range.len());
        (0..n)
            .filter(|&k| (self.ray_angle(k, n) - bearing).abs() <= 12f32.to_radians())
            .map(|k| self.ray(body, k))
            .reduce(f32::min)
    }

    /// Steer towards `desired` (robot frame, rad) at up to `speed`, around obstacles.
    /// Returns the twist and whether the way was blocked.
    fn steer(
        &self,
        body: &BodyState,
        desired: f32,
        speed: f32,
        ignore: Option<Echo>,
        caution: f32,
    ) -> (Twist, bool) {
        let p = &self.params;
        let half_fov = p.range_fov / 2.0;
        // Drowsiness makes the robot stop earlier and drive slower, not choose other ways:
        // widening the corridor it needs boxes it in where it can still pass, and turning on
        // the spot beside a corner is where it scrapes.
        let clearance = p.clearance;
        if desired.abs() > half_fov.min(1.0) || body.range_count == 0 {
            // Turn on the spot first (nothing known about that way yet).
            let w = (2.0 * desired).clamp(-p.max_angular, p.max_angular);
            return (
                Twist {
                    linear: 0.0,
                    angular: w as f64,
                },
                false,
            );
        }
        // Candidate headings every 5° across the sensor's view: take the free one nearest the
        // desired direction.
        let mut best: Option<(f32, f32)> = None;
        let steps = (p.range_fov / 5f32.to_radians()).round() as i32;
        for i in 0..=steps {
            let a = -half_fov + p.range_fov * i as f32 / steps.max(1) as f32;
            let free = self.corridor_free(body, a, ignore);
            if free >= clearance {
                let cost = (a - desired).abs();
                if best.is_none_or(|(_, c)| cost < c) {
                    best = Some((a, cost));
                }
            }
        }
        let front = self.front_min(body, ignore);
        match best {
            Some((a, _)) => {
                let w = (2.5 * a).clamp(-p.max_angular, p.max_angular);
                let align = a.cos().max(0.0).powi(4);
                let slow = ((front - p.stop_distance) / 0.4).clamp(0.0, 1.0);
                let v = if a.abs() > 0.6 {
                    0.0
                } else {
                    speed * align * (0.3 + 0.7 * slow)
                };
                let v = if front < p.stop_distance * caution {
                    0.0
                } else {
                    v
                };
                (
                    Twist {
                        linear: v as f64,
                        angular: w as f64,
                    },
                    (a - desired).abs() > 0.15,
                )
            }
            None => {
                // Boxed in ahead: turn towards the more open side.
                let n = (body.range_count as usize).min(body.range.len());
                let (mut left, mut right) = (0.0, 0.0);
                for k in 0..n {
                    if self.ray_angle(k, n) > 0.0 {
                        left += self.ray(body, k);
                    } else {
                        right += self.ray(body, k);
                    }
                }
                let dir = if desired.abs() > 0.3 {
                    desired.signum()
                } else if left >= right {
                    1.0
                } else {
                    -1.0
                };
                let back = if front < p.stop_distance * 0.7 {
                    -0.05
                } else {
                    0.0
                };
                (
                    Twist {
                        linear: back,
                        angular: (dir * p.max_angular * 0.7) as f64,
                    },
                    true,
                )
            }
        }
    }

    fn update_instruction(&mut self, input: &PolicyInput<'_>) {
        match input.instruction {
            None => {
                if self.instr_stamp.is_some() {
                    self.instr_stamp = None;
                    self.query.clear_instruction();
                }
            }
            Some(q) => {
                // The language region re-publishes the same embedding with new stamps: only a
                // change of content is a new instruction.
                let sig: f32 = q
                    .iter()
                    .enumerate()
                    .map(|(i, x)| x * (1.0 + (i % 17) as f32))
                    .sum::<f32>()
                    + q.len() as f32;
                if self.instr_stamp.is_none() || sig != self.instr_sig {
                    self.instr_stamp = Some(input.instruction_stamp_ns);
                    self.instr_sig = sig;
                    let info = self.query.set_instruction(q);
                    self.seen_frames = 0;
                    self.target_seen_ns = None;
                    self.near_seen_ns = None;
                    self.percept = Percept::default();
                    if info.meaningful {
                        self.start_search();
                        let name = self
                            .query
                            .connector()
                            .concepts()
                            .get(info.best_concept)
                            .map(|c| c.name.as_str())
                            .unwrap_or("?");
                        tracing::info!(
                            similarity = info.similarity,
                            best = name,
                            p = info.best_probability,
                            "grounding: new instruction, searching"
                        );
                    } else {
                        self.phase = Phase::Idle;
                        tracing::warn!(
                            similarity = info.similarity,
                            "grounding: instruction names nothing I have learned to see; staying idle"
                        );
                    }
                }
            }
        }
    }

    fn update_percept(&mut self, input: &PolicyInput<'_>) {
        let Some(v) = input.vision else { return };
        if v.stale || v.stamp_ns == self.last_frame_ns {
            return;
        }
        self.last_frame_ns = v.stamp_ns;
        let Some(p) = self.query.attend(v.grid, v.spatial, v.stamp_ns) else {
            return;
        };
        self.percept = p;
        tracing::trace!(
            t = input.now_ns as f64 * 1e-9,
            confidence = p.confidence,
            bearing = p.bearing,
            cells = p.cells,
            heading = self.heading,
            reason = ?self.reason,
            heat = ?&p.heat[..p.cols],
            range = ?&input.body.range[..input.body.range_count as usize],
            accel = ?input.body.accel,
            "grounding: percept"
        );
        // Mark the headings this frame covered, with the free range straight ahead.
        let half = self.params.hfov / 2.0;
        let centre_free = self.corridor_free(input.body, 0.0, None);
        for b in 0..HEADING_BINS {
            let off = wrap(bin_heading(b) - self.heading).abs();
            if off <= half {
                self.looked[b] = true;
            }
        }
        let b = bin_of(self.heading);
        self.free[b] = self.free[b].max(centre_free);
        // A weak match is a lead only where the range sensor sees nothing near along it: a
        // small far object matches weakly, but a weak match on something close (a wall corner,
        // an obstacle) is a look-alike.
        let open = self
            .range_at(input.body, p.bearing)
            .is_none_or(|r| r >= self.params.lead_min_range);
        if open && p.confidence >= self.params.lead_confidence / 2.0 {
            let h = wrap(self.heading + p.bearing);
            let b = (((h + PI) / TAU * LEAD_BINS as f32).floor() as usize).min(LEAD_BINS - 1);
            self.lead_sum[b] += p.confidence;
            self.lead_n[b] = self.lead_n[b].saturating_add(1);
            if p.confidence > self.lead_best[b].1 {
                self.lead_best[b] = (h, p.confidence);
            }
        }
        if p.confidence >= self.params.see_confidence {
            self.seen_frames += 1;
            if self.seen_frames >= self.params.see_frames {
                self.target_heading = wrap(self.heading + p.bearing);
                self.target_seen_ns = Some(input.now_ns);
                if p.cells >= self.params.near_cells {
                    self.near_seen_ns = Some(input.now_ns);
                }
            }
        } else {
            self.seen_frames = 0;
        }
    }

    /// The lead since the search started: the heading bin with the most weak-match evidence
    /// over at least two frames, as (heading of its strongest match, summed confidence).
    fn lead(&self) -> Option<(f32, f32)> {
        (0..LEAD_BINS)
            .filter(|&b| self.lead_n[b] >= 2)
            .max_by(|&a, &b| self.lead_sum[a].total_cmp(&self.lead_sum[b]))
            .map(|b| (self.lead_best[b].0, self.lead_sum[b]))
    }

    /// Unvisited ground along heading `h`: the points every half metre out to 4 m that fall in
    /// cells not yet visited, those within reach (free distance `free`) counting fully and
    /// those beyond (behind something, or past the sensor's range) a third.
    fn novelty(&self, h: f32, free: f32) -> f32 {
        let (s, c) = h.sin_cos();
        (1..=8)
            .map(|k| k as f32 * 0.5)
            .filter(|&d| {
                visit_cell(self.pos.0 + d * c, self.pos.1 + d * s).is_some_and(|i| !self.visited[i])
            })
            .map(|d| if d <= free + 0.5 { 1.0 } else { 0.33 })
            .sum()
    }

    /// The most open heading seen in the last scan that leads to new ground, avoiding the way
    /// we came.
    fn most_open_heading(&self) -> f32 {
        let mut best = (bin_of(self.heading), f32::NEG_INFINITY);
        for b in 0..HEADING_BINS {
            let mut score = self.free[b] + 0.8 * self.novelty(bin_heading(b), self.free[b]);
            if self
                .came_from
                .is_some_and(|back| wrap(bin_heading(b) - back).abs() < 1.0)
            {
                score -= 1.0;
            }
            if score > best.1 {
                best = (b, score);
            }
        }
        bin_heading(best.0)
    }

    fn target_recent(&self, now_ns: u64) -> bool {
        self.target_seen_ns
            .is_some_and(|t| now_ns.saturating_sub(t) as f32 * 1e-9 <= self.params.memory_s)
    }

    /// Decide one tick. Allocation-free.
    pub fn decide(&mut self, input: &PolicyInput<'_>) -> MotorIntent {
        self.integrate_odometry(input.now_ns, input.body);
        self.update_instruction(input);
        if !self.query.instruction().is_some_and(|i| i.meaningful) {
            self.phase = Phase::Idle;
            self.reason = if input.instruction.is_none() {
                Reason::NoInstruction
            } else {
                Reason::NotUnderstood
            };
            return self.out(Mode::Idle, Twist::ZERO);
        }
        if matches!(self.phase, Phase::Arrived) {
            self.reason = Reason::Arrived;
            return self.out(Mode::Arrived, Twist::ZERO);
        }
        self.update_percept(input);
        let drowsy_now = if input.drowsiness.is_finite() {
            input.drowsiness.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let (held, at) = self.drowsy_hold;
        let released = held - input.now_ns.saturating_sub(at) as f32 * 1e-9 / DROWSY_RELEASE_S;
        let drowsy = drowsy_now.max(released).clamp(0.0, 1.0);
        self.drowsy_hold = (drowsy, input.now_ns);
        let caution = 1.0 + 0.5 * drowsy;
        let speed = self.params.max_linear * (1.0 - 0.4 * drowsy);
        let now = input.now_ns;
        if self.target_recent(now) {
            if !matches!(self.phase, Phase::Approach) {
                tracing::debug!("grounding: target seen, approaching");
            }
            self.phase = Phase::Approach;
        } else if matches!(self.phase, Phase::Approach) {
            tracing::debug!("grounding: target lost, searching again");
            self.start_search();
        }
        let body = input.body;
        match self.phase {
            Phase::Idle | Phase::Arrived => self.out(Mode::Idle, Twist::ZERO),
            Phase::Approach => {
                let bearing = wrap(self.target_heading - self.heading);
                let fresh = now.saturating_sub(self.target_seen_ns.unwrap_or(0)) < 1_500_000_000;
                let r = self.range_at(body, bearing);
                // Whether the target looks near (it fills several cells): only then is the
                // echo along its bearing the target itself rather than something in front of it.
                let looks_near = self
                    .near_seen_ns
                    .is_some_and(|t| now.saturating_sub(t) < 1_500_000_000);
                // The target's own echo: rays near its bearing that read no nearer than it.
                let ignore = looks_near.then_some(Echo {
                    dir: bearing,
                    half: 32f32.to_radians(),
                    min_range: r.unwrap_or(self.params.range_max) - 0.04,
                });
                let close = r.is_some_and(|r| r <= self.params.arrive_range);
                if close && looks_near && bearing.abs() <= self.params.arrive_bearing && fresh {
                    self.phase = Phase::Arrived;
                    self.reason = Reason::Arrived;
                    tracing::info!("grounding: arrived at the target");
                    return self.out(Mode::Arrived, Twist::ZERO);
                }
                let near = r.unwrap_or(self.params.range_max);
                let slow = ((near - self.params.arrive_range) / 0.5).clamp(0.25, 1.0);
                let (mut t, blocked) = self.steer(body, bearing, speed * slow, ignore, caution);
                if !fresh {
                    t.linear *= 0.5;
                }
                if blocked {
                    self.reason = Reason::Avoiding;
                    self.out(Mode::Avoid, t)
                } else {
                    self.reason = Reason::Approaching;
                    self.out(Mode::Approach, t)
                }
            }
            Phase::Settle { until_ns, dir } => {
                if now >= until_ns {
                    self.phase = Phase::Scan {
                        prev: self.heading,
                        turned: 0.0,
                        dir,
                    };
                }
                let back = if now + 200_000_000 < until_ns {
                    -0.1
                } else {
                    0.0
                };
                self.reason = Reason::Scanning;
                self.out(
                    Mode::Search,
                    Twist {
                        linear: back,
                        angular: 0.0,
                    },
                )
            }
            Phase::Scan { prev, turned, dir } => {
                let turned = turned + wrap(self.heading - prev).abs();
                // Close to something: turn away from it (the nose swings towards the side we
                // turn to) and ease back if very close.
                let (near_angle, near_r) = self.nearest_ray(body);
                let dir = if near_r < 0.3 && near_angle.abs() > 0.05 {
                    -near_angle.signum()
                } else {
                    dir
                };
                let back = if near_r < 0.25 { -0.06 } else { 0.0 };
                let all = self.looked.iter().all(|&l| l);
                if all || turned > TAU + 0.5 {
                    self.scans += 1;
                    let heading = match self.lead() {
                        Some((h, c))
                            if c >= 2.0 * self.params.lead_confidence
                                && self.followed.is_none_or(|f| c > 1.3 * f) =>
                        {
                            tracing::debug!(
                                heading = h,
                                confidence = c,
                                "grounding: following a lead"
                            );
                            self.followed = Some(c);
                            h
                        }
                        _ => {
                            self.followed = None;
                            self.most_open_heading()
                        }
                    };
                    self.phase = Phase::TurnTo { heading };
                } else {
                    self.phase = Phase::Scan {
                        prev: self.heading,
                        turned,
                        dir,
                    };
                }
                self.reason = if self.target_seen_ns.is_some() {
                    Reason::Reacquiring
                } else {
                    Reason::Scanning
                };
                self.out(
                    Mode::Search,
                    Twist {
                        linear: back,
                        angular: (dir * self.params.scan_rate) as f64,
                    },
                )
            }
            Phase::TurnTo { heading } => {
                let err = wrap(heading - self.heading);
                if err.abs() < 0.12 {
                    self.phase = Phase::Leg {
                        heading,
                        start_odo: self.odometer,
                        start_ns: now,
                    };
                }
                self.reason = Reason::Turning;
                let w = (2.0 * err).clamp(-self.params.max_angular, self.params.max_angular);
                let w = if w.abs() < 0.4 { 0.4 * err.signum() } else { w };
                let back = if self.nearest_ray(body).1 < 0.16 {
                    -0.06
                } else {
                    0.0
                };
                self.out(
                    Mode::Search,
                    Twist {
                        linear: back,
                        angular: w as f64,
                    },
                )
            }
            Phase::Leg {
                heading,
                start_odo,
                start_ns,
            } => {
                let travelled = self.odometer - start_odo;
                let elapsed = now.saturating_sub(start_ns) as f32 * 1e-9;
                let desired = wrap(heading - self.heading);
                let (t, blocked) = self.steer(body, desired, speed, None, caution);
                let stuck = self.front_min(body, None) < self.params.clearance * 1.1;
                if travelled >= self.params.wander_distance
                    || elapsed >= self.params.wander_time_s
                    || (stuck && elapsed > 0.5)
                {
                    self.came_from = Some(wrap(heading + PI));
                    self.start_search();
                }
                self.reason = if blocked {
                    Reason::Avoiding
                } else {
                    Reason::Exploring
                };
                self.out(if blocked { Mode::Avoid } else { Mode::Search }, t)
            }
        }
    }

    fn out(&mut self, mode: Mode, twist: Twist) -> MotorIntent {
        self.mode = mode;
        let twist = if twist.is_finite() {
            twist
        } else {
            Twist::ZERO
        };
        MotorIntent { twist, mode }
    }
}

impl crate::integrator::Policy for GroundedPolicy {
    fn decide(&mut self, ctx: &crate::integrator::DecisionContext<'_>) -> MotorIntent {
        use crate::msg::RegionId;
        if ctx.body_stale {
            self.mode = Mode::Stopped;
            return MotorIntent {
                twist: Twist::ZERO,
                mode: Mode::Stopped,
            };
        }
        let lang = &ctx.regions[RegionId::Language.index()];
        let vis = &ctx.regions[RegionId::Vision.index()];
        let input = PolicyInput {
            now_ns: ctx.now_ns,
            instruction: ctx.instruction,
            instruction_stamp_ns: lang.stamp_ns,
            vision: (vis.valid && !vis.spatial.is_empty()).then_some(VisionView {
                grid: vis.grid,
                spatial: vis.spatial,
                stamp_ns: vis.stamp_ns,
                stale: vis.stale,
            }),
            body: ctx.body,
            drowsiness: ctx.feedback.held as f32,
        };
        GroundedPolicy::decide(self, &input)
    }

    fn reset(&mut self) {
        GroundedPolicy::reset(self);
    }

    fn name(&self) -> &'static str {
        "grounded"
    }
}
