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
//!
//! What needs neither language nor vision is [`crate::navigation`]'s: the range-ray geometry,
//! dead reckoning, the visited map and heading bins, and the steering controller. This module
//! adds what depends on the instruction and the percept: the phases, leads from weak matches,
//! the target's echo and arrival.
//!
//! **Memory.** Every attended frame goes back to the integrator as a sighting (pose, time and a
//! compact tag of the frame, see [`crate::grounding::recall`]) that joins that tick's
//! working-memory entry. When a search starts (a new instruction, or the target lost) the policy
//! asks working memory and the long-term places where something matching the instruction was
//! last seen; if the answer is trusted enough (`recall_gain x confidence >= recall_threshold`,
//! `recall_gain` being the `memory -> integrator` edge: 0 cuts it) it drives straight to the
//! remembered position, and the approach takes over as soon as the camera confirms the target;
//! if it gets there without seeing it, those memories are set aside and it searches as before.
//!
//! The heading bins, the visited map and the leads are the policy's short-term state for one
//! search (which headings this scan covered, where it drove this episode, which weak matches
//! this scan collected): they are reset with every search and are not memories of what was seen.

use crate::grounding::query::{InstructionInfo, Percept, QueryConnector};
use crate::grounding::recall::{recall, tag_width, Now, RecallParams, Recalled, TAG_COLS};
use crate::integrator::{Sighting, Sightings};
use crate::msg::{BodyState, Mode, MotorIntent, Twist};
use crate::navigation::{
    steer, wrap, DeadReckoning, Echo, HeadingBins, RangeScan, SteerParams, Steering, VisitedMap,
};
use std::f32::consts::{PI, TAU};

/// Heading bins in which weak matches are accumulated during a search.
pub const LEAD_BINS: usize = 24;

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
    /// Recall drives the decision when `recall_gain x confidence` reaches this.
    pub recall_threshold: f32,
    /// How recall weighs what it finds (time and drift decay, attention sharpness).
    pub recall: RecallParams,
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
            recall_threshold: 0.1,
            recall: RecallParams {
                min_match: 0.3,
                sharpness: 8.0,
                half_life_s: 300.0,
                drift_half_m: 30.0,
                jump_factor: 0.3,
                range_max: p.range_max as f32,
                default_distance: 2.0,
                hfov,
            },
        }
    }
}

/// What the policy may recall from: the integrator's working memory and long-term places.
#[derive(Debug, Clone, Copy)]
pub struct MemoryView<'a> {
    /// Working memory's sightings.
    pub working: &'a Sightings,
    /// Long-term places.
    pub places: &'a Sightings,
    /// Gain of the `memory -> integrator` edge.
    pub gain: f32,
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
    /// Drowsiness 0..1, more caution when drowsy: the integrator's held level
    /// (`Feedback::held`: the peak released over a few seconds, so one stall makes the robot
    /// steadily careful instead of flipping between cautious and bold every second).
    pub drowsiness: f32,
    /// What it may recall from (None: nothing).
    pub memory: Option<MemoryView<'a>>,
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
    /// Driving to where working memory says the target was seen.
    Recalling,
}

impl Reason {
    const ALL: [Reason; 10] = [
        Reason::NoInstruction,
        Reason::NotUnderstood,
        Reason::Scanning,
        Reason::Turning,
        Reason::Exploring,
        Reason::Reacquiring,
        Reason::Approaching,
        Reason::Avoiding,
        Reason::Arrived,
        Reason::Recalling,
    ];

    /// A stable code (what crosses the integrator's tick record).
    pub fn code(self) -> u8 {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0) as u8
    }

    /// From [`Reason::code`].
    pub fn from_code(c: u8) -> Self {
        Self::ALL
            .get(c as usize)
            .copied()
            .unwrap_or(Reason::NoInstruction)
    }

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
            Reason::Recalling => "remembering: driving to where the target was seen",
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
    /// Drive to a remembered target position (odometry frame).
    Recall {
        x: f32,
        y: f32,
        start_ns: u64,
        bearing_only: bool,
        start_odo: f32,
        /// A committed detour around what blocks the straight way: (world heading, odometer
        /// at its start).
        detour: Option<(f32, f32)>,
    },
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
    /// Dead-reckoned pose (odometry frame) and the low-passed forward accelerometer reading
    /// (gravity shows there when the body pitches).
    odo: DeadReckoning,
    last_frame_ns: u64,
    percept: Percept,
    seen_frames: u32,
    target_heading: f32,
    target_seen_ns: Option<u64>,
    near_seen_ns: Option<u64>,
    /// Where the current search has looked, and how open each heading was.
    bins: HeadingBins,
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
    /// Where the robot has been: a coarse map around the start, so exploring prefers new ground.
    visited: VisitedMap,
    /// Odometry jumps seen (implausible encoder steps): each lowers the trust of older memories.
    jumps: u32,
    /// Whether the search that just started should ask memory first.
    want_recall: bool,
    /// Sightings before this are set aside (a recall that was followed and found nothing).
    recall_floor_ns: u64,
    /// The last recall's answer (for the status and logs).
    recalled: Option<Recalled>,
    /// The last attended frame as a sighting, until the integrator takes it.
    pending: Option<Sighting>,
    /// Its tag.
    tag: Vec<f32>,
}

impl GroundedPolicy {
    /// A policy around a query connector.
    pub fn new(query: QueryConnector, params: PolicyParams) -> Self {
        let odo = DeadReckoning::new(
            params.wheel_radius,
            params.wheel_separation,
            params.ticks_per_rev,
        );
        Self {
            params,
            query,
            phase: Phase::Idle,
            reason: Reason::NoInstruction,
            mode: Mode::Idle,
            instr_stamp: None,
            instr_sig: 0.0,
            odo,
            last_frame_ns: 0,
            percept: Percept::default(),
            seen_frames: 0,
            target_heading: 0.0,
            target_seen_ns: None,
            near_seen_ns: None,
            bins: HeadingBins::new(),
            came_from: None,
            lead_sum: [0.0; LEAD_BINS],
            lead_n: [0; LEAD_BINS],
            lead_best: [(0.0, 0.0); LEAD_BINS],
            followed: None,
            scans: 0,
            visited: VisitedMap::new(),
            jumps: 0,
            want_recall: false,
            recall_floor_ns: 0,
            recalled: None,
            pending: None,
            tag: Vec::new(),
        }
        .with_tag()
    }

    fn with_tag(mut self) -> Self {
        self.tag = vec![0.0; tag_width(self.query.connector().concepts().len())];
        self
    }

    /// The last recall's answer.
    pub fn recalled(&self) -> Option<Recalled> {
        self.recalled
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
            heading: self.odo.heading(),
            scans: self.scans,
        }
    }

    /// After a pause (sleep or an e-stop): the instruction, the plan, the odometry and where
    /// the target was last seen are still true, so only the frame counters restart.
    pub fn reset(&mut self) {
        self.seen_frames = 0;
        self.odo.restart_clock();
    }

    /// Forget everything, the instruction included (a new episode).
    pub fn clear(&mut self) {
        let q = self.query.clone();
        let p = self.params.clone();
        *self = Self::new(q, p);
        self.query.clear_instruction();
    }

    fn start_search(&mut self) {
        self.want_recall = true;
        self.bins.clear();
        self.lead_sum = [0.0; LEAD_BINS];
        self.lead_n = [0; LEAD_BINS];
        self.lead_best = [(0.0, 0.0); LEAD_BINS];
        // Turn towards where the target was last seen, if it was seen at all.
        let dir = match self.target_seen_ns {
            Some(_) if wrap(self.target_heading - self.odo.heading()) < 0.0 => -1.0,
            _ => 1.0,
        };
        // Braking tips this body forward onto its nose (the camera then sees only the floor
        // near it): when the accelerometer says so, back up briefly first.
        self.phase = if self.odo.pitch_accel() < -1.2 {
            Phase::Settle {
                until_ns: self.odo.last_ns().unwrap_or(0) + 500_000_000,
                dir,
            }
        } else {
            Phase::Scan {
                prev: self.odo.heading(),
                turned: 0.0,
                dir,
            }
        };
    }

    /// Dead reckoning, and the visited map from the dead-reckoned position.
    fn integrate_odometry(&mut self, now_ns: u64, body: &BodyState) {
        let first = self.odo.last_ns().is_none();
        if self.odo.update(now_ns, body) {
            self.visited.mark(self.odo.pos());
        } else if !first {
            // An implausible encoder step (a wheel slip, a teleport): what was remembered
            // before it is less trustworthy.
            self.jumps = self.jumps.saturating_add(1);
        }
    }

    /// The range rays of `body`, with this robot's range sensor.
    fn scan<'b>(&self, body: &'b BodyState) -> RangeScan<'b> {
        RangeScan::new(body, self.params.range_fov, self.params.range_max)
    }

    /// The steering controller's tunables.
    fn steer_params(&self) -> SteerParams {
        let p = &self.params;
        SteerParams {
            clearance: p.clearance,
            stop_distance: p.stop_distance,
            corridor_half_width: p.corridor_half_width,
            max_angular: p.max_angular,
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
                    self.recall_floor_ns = 0;
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
        self.record_sighting(input.now_ns, v.stamp_ns, input.body);
        tracing::trace!(
            t = input.now_ns as f64 * 1e-9,
            confidence = p.confidence,
            bearing = p.bearing,
            cells = p.cells,
            heading = self.odo.heading(),
            reason = ?self.reason,
            heat = ?&p.heat[..p.cols],
            range = ?&input.body.range[..input.body.range_count as usize],
            accel = ?input.body.accel,
            "grounding: percept"
        );
        // Mark the headings this frame covered, with the free range straight ahead.
        let half = self.params.hfov / 2.0;
        let scan = self.scan(input.body);
        let centre_free = scan.corridor_free(0.0, self.params.corridor_half_width, None);
        self.bins.look(self.odo.heading(), half, centre_free);
        // A weak match is a lead only where the range sensor sees nothing near along it: a
        // small far object matches weakly, but a weak match on something close (a wall corner,
        // an obstacle) is a look-alike.
        let open = scan
            .range_at(p.bearing)
            .is_none_or(|r| r >= self.params.lead_min_range);
        if open && p.confidence >= self.params.lead_confidence / 2.0 {
            let h = wrap(self.odo.heading() + p.bearing);
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
                self.target_heading = wrap(self.odo.heading() + p.bearing);
                self.target_seen_ns = Some(input.now_ns);
                if p.cells >= self.params.near_cells {
                    self.near_seen_ns = Some(input.now_ns);
                }
            }
        } else {
            self.seen_frames = 0;
        }
    }

    /// Tag the attended frame for working memory: per column, the concept posteriors and the
    /// free range along the column's bearing.
    fn record_sighting(&mut self, now_ns: u64, stamp_ns: u64, body: &BodyState) {
        let (post, cols) = self.query.column_posteriors();
        let k = self.query.connector().concepts().len();
        if cols == 0 || cols > TAG_COLS || post.len() != cols * k || self.tag.len() != tag_width(k)
        {
            self.pending = None;
            return;
        }
        let scan = RangeScan::new(body, self.params.range_fov, self.params.range_max);
        let mut salience = 0.0f32;
        self.tag.iter_mut().for_each(|v| *v = 0.0);
        self.tag[0] = cols as f32;
        let backgrounds = self.query.connector().concepts();
        for c in 0..cols {
            let base = 1 + c * (k + 1);
            let col = &post[c * k..(c + 1) * k];
            self.tag[base..base + k].copy_from_slice(col);
            for (p, concept) in col.iter().zip(backgrounds) {
                if !concept.background {
                    salience = salience.max(*p);
                }
            }
            let b = crate::grounding::query::column_bearing(c as f32 + 0.5, cols, self.params.hfov);
            self.tag[base + k] = scan.range_at(b).unwrap_or(self.params.range_max);
        }
        let (x, y) = self.odo.pos();
        self.pending = Some(Sighting {
            stamp_ns: stamp_ns.min(now_ns),
            x,
            y,
            heading: self.odo.heading(),
            odometer: self.odo.odometer(),
            jumps: self.jumps,
            salience,
        });
    }

    /// Ask memory where the target was last seen.
    fn ask_memory(&mut self, now_ns: u64, memory: &MemoryView<'_>) -> Option<Recalled> {
        if memory.gain.is_nan() || memory.gain <= 0.0 {
            return None;
        }
        let k = self.query.connector().concepts().len();
        let q = &self.query;
        let score = |post: &[f32]| q.match_posterior(post);
        let now = Now {
            ns: now_ns,
            odometer: self.odo.odometer(),
            jumps: self.jumps,
            floor_ns: self.recall_floor_ns,
        };
        let r = recall(
            memory.working,
            memory.places,
            k,
            &score,
            &now,
            &self.params.recall,
        );
        self.recalled = r;
        r.filter(|r| memory.gain * r.confidence >= self.params.recall_threshold)
    }

    /// The lead since the search started: the heading bin with the most weak-match evidence
    /// over at least two frames, as (heading of its strongest match, summed confidence).
    fn lead(&self) -> Option<(f32, f32)> {
        (0..LEAD_BINS)
            .filter(|&b| self.lead_n[b] >= 2)
            .max_by(|&a, &b| self.lead_sum[a].total_cmp(&self.lead_sum[b]))
            .map(|b| (self.lead_best[b].0, self.lead_sum[b]))
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
        let drowsy = drowsy_now;
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
        if self.want_recall && matches!(self.phase, Phase::Settle { .. } | Phase::Scan { .. }) {
            self.want_recall = false;
            if let Some(r) = input.memory.and_then(|m| self.ask_memory(now, &m)) {
                let (px, py) = self.odo.pos();
                if (r.x - px).hypot(r.y - py) > 0.45 {
                    tracing::debug!(
                        x = r.x,
                        y = r.y,
                        confidence = r.confidence,
                        evidence = r.evidence,
                        "grounding: remembered where the target was seen, driving there"
                    );
                    self.phase = Phase::Recall {
                        x: r.x,
                        y: r.y,
                        start_ns: now,
                        bearing_only: r.bearing_only,
                        start_odo: self.odo.odometer(),
                        detour: None,
                    };
                }
            }
        }
        let body = input.body;
        match self.phase {
            Phase::Idle | Phase::Arrived => self.out(Mode::Idle, Twist::ZERO),
            Phase::Recall {
                x,
                y,
                start_ns,
                bearing_only,
                start_odo,
                detour,
            } => {
                let (px, py) = self.odo.pos();
                let heading = self.odo.heading();
                let dist = (x - px).hypot(y - py);
                let towards = wrap((y - py).atan2(x - px) - heading);
                let elapsed = now.saturating_sub(start_ns) as f32 * 1e-9;
                let travelled = self.odo.odometer() - start_odo;
                let scan = self.scan(body);
                let half_fov = scan.fov() / 2.0;
                let hw = self.params.corridor_half_width;
                // Whether the straight way is seen free up to the target (or far enough).
                let need = dist.min(self.params.range_max * 0.75);
                let line_free =
                    towards.abs() < half_fov && scan.corridor_free(towards, hw, None) >= need;
                let line_blocked = towards.abs() < half_fov && !line_free;
                let detour = match detour {
                    // A detour ends when the straight way is free again, or after a leg.
                    Some((_, d0)) if line_free || self.odo.odometer() - d0 > 1.5 => None,
                    Some(d) => Some(d),
                    None if line_blocked => {
                        // Something is in the way: commit to the free heading nearest the
                        // target's, a little beyond the obstacle's edge.
                        let steps = 24;
                        let mut best: Option<(f32, f32)> = None;
                        for i in 0..=steps {
                            let a = -half_fov + scan.fov() * i as f32 / steps as f32;
                            if scan.corridor_free(a, hw, None) >= self.params.clearance * 2.0 {
                                let cost = (a - towards).abs();
                                if best.is_none_or(|(_, c)| cost < c) {
                                    best = Some((a, cost));
                                }
                            }
                        }
                        let a = match best {
                            Some((a, _)) => a + 0.2 * (a - towards).signum(),
                            // Nothing free ahead: turn well away and look again.
                            None => towards + if towards >= 0.0 { -1.6 } else { 1.6 },
                        };
                        Some((wrap(heading + a), self.odo.odometer()))
                    }
                    None => None,
                };
                let desired = match detour {
                    Some((h, _)) => wrap(h - heading),
                    None => towards,
                };
                let Steering { twist: t, blocked } =
                    steer(&scan, desired, speed, None, caution, &self.steer_params());
                let there = dist < 0.4 || (bearing_only && travelled > dist + 1.0);
                let limit = 10.0 + 4.0 * dist / speed.max(0.05);
                if there || elapsed > limit {
                    // Got there without seeing it: set these memories aside and search.
                    tracing::debug!(
                        x = px,
                        y = py,
                        dist,
                        elapsed,
                        "grounding: nothing where the target was remembered; searching"
                    );
                    self.recall_floor_ns = now;
                    self.start_search();
                    self.want_recall = false;
                } else {
                    self.phase = Phase::Recall {
                        x,
                        y,
                        start_ns,
                        bearing_only,
                        start_odo,
                        detour,
                    };
                }
                self.reason = if blocked || detour.is_some() {
                    Reason::Avoiding
                } else {
                    Reason::Recalling
                };
                self.out(if blocked { Mode::Avoid } else { Mode::Search }, t)
            }
            Phase::Approach => {
                let bearing = wrap(self.target_heading - self.odo.heading());
                let fresh = now.saturating_sub(self.target_seen_ns.unwrap_or(0)) < 1_500_000_000;
                let scan = self.scan(body);
                let r = scan.range_at(bearing);
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
                let Steering {
                    twist: mut t,
                    blocked,
                } = steer(
                    &scan,
                    bearing,
                    speed * slow,
                    ignore,
                    caution,
                    &self.steer_params(),
                );
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
                        prev: self.odo.heading(),
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
                let turned = turned + wrap(self.odo.heading() - prev).abs();
                // Close to something: turn away from it (the nose swings towards the side we
                // turn to) and ease back if very close.
                let (near_angle, near_r) = self.scan(body).nearest_ray();
                let dir = if near_r < 0.3 && near_angle.abs() > 0.05 {
                    -near_angle.signum()
                } else {
                    dir
                };
                let back = if near_r < 0.25 { -0.06 } else { 0.0 };
                let all = self.bins.all_looked();
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
                            self.bins.most_open_heading(
                                self.odo.heading(),
                                self.odo.pos(),
                                self.came_from,
                                &self.visited,
                            )
                        }
                    };
                    self.phase = Phase::TurnTo { heading };
                } else {
                    self.phase = Phase::Scan {
                        prev: self.odo.heading(),
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
                let err = wrap(heading - self.odo.heading());
                if err.abs() < 0.12 {
                    self.phase = Phase::Leg {
                        heading,
                        start_odo: self.odo.odometer(),
                        start_ns: now,
                    };
                }
                self.reason = Reason::Turning;
                let w = (2.0 * err).clamp(-self.params.max_angular, self.params.max_angular);
                let w = if w.abs() < 0.4 { 0.4 * err.signum() } else { w };
                let back = if self.scan(body).nearest_ray().1 < 0.16 {
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
                let travelled = self.odo.odometer() - start_odo;
                let elapsed = now.saturating_sub(start_ns) as f32 * 1e-9;
                let desired = wrap(heading - self.odo.heading());
                let scan = self.scan(body);
                let Steering { twist: t, blocked } =
                    steer(&scan, desired, speed, None, caution, &self.steer_params());
                let stuck = scan.front_min(None) < self.params.clearance * 1.1;
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
            memory: Some(MemoryView {
                working: ctx.working.sightings(),
                places: ctx.long_term.places(),
                gain: ctx.recall_gain,
            }),
        };
        GroundedPolicy::decide(self, &input)
    }

    fn reset(&mut self) {
        GroundedPolicy::reset(self);
    }

    fn name(&self) -> &'static str {
        "grounded"
    }

    fn understood(&self) -> crate::msg::Understood {
        let info = self.query.instruction();
        crate::msg::Understood {
            instruction: info.is_some(),
            about_object: info.is_some_and(|i| i.meaningful),
            concept: info.map_or(0, |i| i.best_concept.min(u16::MAX as usize) as u16),
            probability: info.map_or(0.0, |i| i.best_probability),
            seen: self.percept.confidence,
            reason: self.reason.code(),
        }
    }

    fn sighting_width(&self) -> usize {
        self.tag.len()
    }

    fn sighting(&mut self, tag: &mut [f32]) -> Option<Sighting> {
        let s = self.pending.take()?;
        (tag.len() == self.tag.len()).then(|| {
            tag.copy_from_slice(&self.tag);
            s
        })
    }

    fn concept_names(&self) -> Vec<String> {
        self.query
            .connector()
            .concepts()
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }
}
