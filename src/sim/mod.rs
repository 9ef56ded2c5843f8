//! The embedded simulation: physics and fake hardware whose time we control, so the brain can be
//! tried on any machine. May depend on body, link, msg, world and util; never on the brain.
//!
//! [`mujoco`] is the default body (MuJoCo, in-process) behind the simulated motor board
//! ([`board`], speaking the real serial protocol) or behind the real firmware on the emulated
//! board ([`hil`], `--hil`), [`kinematic`] the pure-Rust fallback with range rays from
//! [`raycast`] (`--body kinematic`), and [`bodies`] picks one for an episode;
//! [`scenario`] reads task files and lays out arenas from a seed, [`mjcf`] generates the MuJoCo
//! model from the one robot description, [`sdf`] writes the same arena as a Gazebo world, and
//! [`camera`] renders what the robot sees; [`parts`]
//! holds what the bodies share (wheel motors, range-ray fan, contact episodes) and [`testing`]
//! what their tests share. Running a brain against all this is [`crate::experiment`]'s job.

pub mod board;
pub mod bodies;
pub mod camera;
pub mod hil;
pub mod kinematic;
pub mod mjcf;
pub mod mujoco;
pub mod parts;
pub mod raycast;
pub mod scenario;
pub mod sdf;
pub mod testing;
