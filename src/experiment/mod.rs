//! Experiments: the brain run against the simulator (episodes, evaluation, the `sim`/`eval`
//! commands, the classical baseline) and the loop benchmark. May depend on every folder; none
//! depends on it.
//!
//! [`brain`] steps the integrator and its regions in simulation time, [`episode`] runs a brain
//! against a scenario in lockstep (or real time) and scores it, [`commands`] are the `sim`,
//! `eval`, `replay` and `bench sim` commands, [`pilot`] is the classical colour pilot (a
//! baseline), [`loop_bench`] is `bench loop`: the real integrator loop beside CPU burners, and
//! [`bus_bench`] is `bench bus`: pub-to-sub latency and throughput of the in-process slots and
//! bus, zenoh across processes and DDS.

pub mod brain;
pub mod bus_bench;
pub mod commands;
pub mod console_bench;
pub mod day;
pub mod episode;
pub mod loop_bench;
pub mod pilot;
pub mod soak;
mod soak_bus;
