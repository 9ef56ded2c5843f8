//! The embedded simulation: bodies whose time we control, for trying the brain on any machine.
//!
//! [`mujoco`] is the default body (MuJoCo, in-process), [`kinematic`] the pure-Rust fallback;
//! [`scenario`] describes tasks and lays out arenas from a seed, [`mjcf`] generates the MuJoCo
//! model from the one robot description, [`camera`] renders what the robot sees, and [`episode`]
//! runs the brain against a scenario in lockstep (or real time) and scores it.

pub mod camera;
pub mod kinematic;
pub mod mjcf;
pub mod mujoco;
pub mod scenario;
