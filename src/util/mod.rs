//! Leaf utilities every folder may use: the monotonic clock and the seeded PRNG.
//! Depends on nothing in the crate.

pub mod clock;
pub mod rng;

pub use clock::monotonic_ns;
pub use rng::SplitMix;
