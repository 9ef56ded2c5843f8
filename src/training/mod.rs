//! Training: learning the vision-language connector and the instruction head from labelled
//! simulated views (`brainloop align`). May depend on the simulator; runtime grounding does not.

pub mod align;
