//! Decision: what the brain wants the body to do this tick.
//!
//! [`Policy`] is the seam GROUNDING's language-grounded policy plugs into; the integrator hands
//! it a [`DecisionContext`] that only borrows (nothing is copied or allocated per tick).
//! [`ReactivePolicy`] is the simple default: idle without an instruction; with one, cruise
//! forward and steer away from the nearest obstacle seen by the range sensor.

use crate::bus::slots::SlotView;
use crate::msg::{BodyState, Mode, MotorIntent, RegionId, Twist};

/// Everything a policy may look at in one tick (all borrowed).
#[derive(Debug, Clone, Copy)]
pub struct DecisionContext<'a> {
    /// Tick time, nanoseconds on the brain's clock.
    pub now_ns: u64,
    /// Latest slot contents per region, indexed by [`RegionId::index`].
    pub regions: [SlotView<'a>; RegionId::COUNT],
    /// Each region projected into the common width (zeros when stale or absent).
    pub region_tokens: [&'a [f32]; RegionId::COUNT],
    /// The fused state of this tick.
    pub fused: &'a [f32],
    /// The working-memory readout of this tick.
    pub memory: &'a [f32],
    /// Entries in working memory.
    pub context_len: usize,
    /// Working memory itself (its entries' sightings are what the policy recalls from).
    pub working: &'a super::WorkingMemory,
    /// Long-term memory (the places kept over sleep).
    pub long_term: &'a super::LongTermMemory,
    /// Gain of the edge `memory -> integrator`: how much recall may drive the decision (0: the
    /// edge is cut, the decision must act as if it remembered nothing).
    pub recall_gain: f32,
    /// Gain of the edge `emotion -> integrator`: how much arousal makes the decision careful.
    pub emotion_gain: f32,
    /// What drowsiness feeds back this tick (the decision's caution follows `feedback.held`).
    pub feedback: super::Feedback,
    /// Emotion state: valence, arousal, surprise.
    pub emotion: [f32; 3],
    /// The body's latest state (including range rays).
    pub body: &'a BodyState,
    /// Whether the body state is stale.
    pub body_stale: bool,
    /// The current instruction embedding (language slot, when fresh).
    pub instruction: Option<&'a [f32]>,
    /// Motion limits (linear m/s, angular rad/s) the motor stage will clamp to.
    pub max_speed: (f64, f64),
    /// Range sensor maximum distance, m.
    pub range_max: f64,
}

/// A decision maker: fused state in, motor intent out.
pub trait Policy {
    /// Decide this tick's intent. Must not allocate or block.
    fn decide(&mut self, ctx: &DecisionContext<'_>) -> MotorIntent;
    /// Forget any internal state (after sleep or an e-stop).
    fn reset(&mut self);
    /// Short name for logs.
    fn name(&self) -> &'static str {
        "policy"
    }
    /// What the policy understood of the current instruction (read after every decision, for
    /// the health record and the teleop console). Must not allocate.
    fn understood(&self) -> crate::msg::Understood {
        crate::msg::Understood::default()
    }
    /// Width of the sighting tags this policy attaches to working memory (0: none). Asked once,
    /// when the policy is set (the memory is sized then).
    fn sighting_width(&self) -> usize {
        0
    }
    /// After a decision: what the policy perceived this tick (a new camera frame attended), as a
    /// sighting and its tag written into `tag` (`sighting_width` values). Must not allocate.
    fn sighting(&mut self, _tag: &mut [f32]) -> Option<super::memory::Sighting> {
        None
    }
    /// Names of the concepts [`crate::msg::Understood::concept`] indexes.
    fn concept_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Default policy: idle without an instruction; with one, drive forward and avoid obstacles.
#[derive(Debug, Clone, Default)]
pub struct ReactivePolicy {
    /// Fraction of the linear speed limit to cruise at.
    pub cruise: f64,
}

impl ReactivePolicy {
    /// Cruise at 60 % of the speed limit.
    pub fn new() -> Self {
        Self { cruise: 0.6 }
    }
}

impl Policy for ReactivePolicy {
    fn decide(&mut self, ctx: &DecisionContext<'_>) -> MotorIntent {
        if ctx.instruction.is_none() || ctx.body_stale {
            return MotorIntent {
                twist: Twist::ZERO,
                mode: Mode::Idle,
            };
        }
        let n = (ctx.body.range_count as usize).min(ctx.body.range.len());
        let (vmax, wmax) = ctx.max_speed;
        if n == 0 {
            return MotorIntent {
                twist: Twist {
                    linear: self.cruise * vmax,
                    angular: 0.0,
                },
                mode: Mode::Search,
            };
        }
        // Rays go right to left; find the nearest and steer away from its side.
        let mut nearest = (0usize, f32::INFINITY);
        for (i, &r) in ctx.body.range[..n].iter().enumerate() {
            if r.is_finite() && r > 0.0 && r < nearest.1 {
                nearest = (i, r);
            }
        }
        let rmax = ctx.range_max.max(1e-3);
        let closeness = if nearest.1.is_finite() {
            (1.0 - nearest.1 as f64 / rmax).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let side = if n > 1 {
            (nearest.0 as f64 / (n - 1) as f64) * 2.0 - 1.0 // -1 right .. +1 left
        } else {
            0.0
        };
        let avoid = closeness > 0.5;
        // Obstacle on the left (side > 0): turn right (negative).
        let turn = if avoid {
            -side.signum().max(-1.0) * wmax * closeness
        } else {
            0.0
        };
        let turn = if avoid && side == 0.0 {
            wmax * 0.8
        } else {
            turn
        };
        MotorIntent {
            twist: Twist {
                linear: self.cruise * vmax * (1.0 - closeness).max(0.0),
                angular: turn,
            },
            mode: if avoid { Mode::Avoid } else { Mode::Search },
        }
    }

    fn reset(&mut self) {}

    fn name(&self) -> &'static str {
        "reactive"
    }
}
