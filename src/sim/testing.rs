//! Helpers for the simulated bodies' tests (unit and integration alike): an open arena and
//! driving a body at a twist.

use crate::body::{RobotParams, SimulatedBody};
use crate::msg::Twist;
use crate::sim::scenario::{Layout, Scenario};

/// The walled arena with nothing in it but the red ball at `goal_at`, the robot at `start`
/// (x, y, yaw), laid out with seed 1.
pub fn open_arena(start: [f64; 3], goal_at: [f64; 2]) -> Layout {
    Scenario::parse(
        &format!(
            "instruction = \"go\"\ntime_limit_s = 10\n[goal]\nobject = \"red ball\"\n[arena]\nstart = {start:?}\ngoal_at = {goal_at:?}\n"
        ),
        "t",
        "t",
    )
    .expect("the open arena parses")
    .layout(1)
    .expect("the open arena lays out")
}

/// Command the wheels of `body` for (`linear` m/s, `angular` rad/s), then advance it `steps`
/// times by `dt` seconds. Panics if the body refuses the command.
pub fn drive<B: SimulatedBody + ?Sized>(
    body: &mut B,
    params: &RobotParams,
    (linear, angular): (f64, f64),
    steps: usize,
    dt: f64,
) {
    body.command(params.twist_to_wheels(Twist { linear, angular }))
        .expect("the body takes the command");
    for _ in 0..steps {
        body.advance(dt);
    }
}
