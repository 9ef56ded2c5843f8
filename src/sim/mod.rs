//! The embedded simulation: bodies whose time we control, for trying the brain on any machine.
//!
//! [`mujoco`] is the default body (MuJoCo, in-process) behind the simulated motor board
//! ([`board`], speaking the real serial protocol) or behind the real firmware on the emulated
//! board ([`hil`], `--hil`), [`kinematic`] the pure-Rust fallback with range rays from
//! [`raycast`] (`--body kinematic`), and [`bodies`] picks one for an episode;
//! [`scenario`] describes tasks and lays out arenas from a seed, [`mjcf`] generates the MuJoCo
//! model from the one robot description, [`camera`] renders what the robot sees, [`pilot`] is the
//! classical baseline, and [`episode`] runs a brain against a scenario in lockstep (or real time)
//! and scores it.

pub mod board;
pub mod bodies;
pub mod brain;
pub mod camera;
pub mod commands;
pub mod episode;
pub mod hil;
pub mod kinematic;
pub mod mjcf;
pub mod mujoco;
pub mod pilot;
pub mod raycast;
pub mod scenario;
