//! The embedded simulation: bodies whose time we control, for trying the brain on any machine.
//!
//! [`mujoco`] is the default body (MuJoCo, in-process) behind the simulated motor board
//! ([`board`], speaking the real serial protocol), [`kinematic`] the pure-Rust fallback;
//! [`scenario`] describes tasks and lays out arenas from a seed, [`mjcf`] generates the MuJoCo
//! model from the one robot description, [`camera`] renders what the robot sees, [`pilot`] is the
//! classical baseline, and [`episode`] runs a brain against a scenario in lockstep (or real time)
//! and scores it.

pub mod board;
pub mod brain;
pub mod camera;
pub mod commands;
pub mod episode;
pub mod kinematic;
pub mod mjcf;
pub mod mujoco;
pub mod pilot;
pub mod scenario;
