//! brainloop: an open controller for language-driven mobile robots, organised like a brain.
//!
//! Sensory [`regions`] wrap ONNX Runtime models and publish embeddings; the fixed-rate
//! [`integrator`] fuses the latest embeddings each tick, keeps a working memory, accounts for
//! missed deadlines as *drowsiness*, decides, and drives the [`body`] through the motor stage —
//! over the serial [`link`] to the motor-controller firmware, or in the embedded [`sim`]ulation.
//! The [`teleop`] console can take over, stop and watch at any time. Everything is described by
//! one [`config`] file.
#![warn(missing_docs)]

pub mod body;
pub mod brain;
pub mod bus;
pub mod config;
pub mod console;
pub mod experiment;
pub mod grounding;
pub mod integrator;
pub mod link;
pub mod msg;
pub mod navigation;
pub mod nodes;
pub mod regions;
pub mod report;
pub mod robot;
#[cfg(feature = "ros2")]
pub mod ros2;
pub mod sim;
pub mod sleep;
pub mod teleop;
pub mod training;
pub mod util;
pub mod world;
