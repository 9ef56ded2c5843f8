//! The embedded simulation: bodies whose time we control, for trying the brain on any machine.

pub mod kinematic;
