//! Leaf utilities every folder may use: the monotonic clock, the seeded PRNG and the dense
//! solvers (nalgebra). Depends on nothing in the crate.

pub mod children;
pub mod clock;
pub mod linalg;
pub mod rng;

pub use clock::{monotonic_ns, wall_ns};
pub use rng::SplitMix;
