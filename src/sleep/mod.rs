//! Sleep that learns (seed 001: sleep is fine-tuning on the day's context). May depend on
//! grounding, regions, util and world; never on the simulator or experiments. By day an operator
//! names what the robot is looking at ("this is the white ball") or teaches a word ("vermilion
//! is a red"); each such moment is kept with its views, pose and words. At night
//! [`night::sleep_on`] fits the vision-language connector and the instruction head on them,
//! regularised towards the current model, within a time budget, and checks the result before
//! it may replace anything. The learned [`state::BrainState`] is saved with its sha256 and the
//! night's report and loaded the next morning (`sim` / `eval` `--state FILE`).
//!
//! Learning happens here, off the integrator's tick; the tick only ever sees a finished
//! connector.

pub mod night;
pub mod state;
pub mod utterance;

pub use night::{sleep_on, Embedder, Moment, NightConfig, NightError, NightReport, View};
pub use state::{BrainState, StateError};
