//! Language grounding: how the brain ties what it is told to what it sees and does.
//!
//! * [`connector`]: the vision-language alignment connector, a linear map from the vision
//!   region's spatial features into the language region's embedding space, fitted here in closed
//!   form (ridge regression) on labelled simulated views, with its concept bank.
//! * [`query`]: the query-based connector: the instruction's embedding attends over the aligned
//!   spatial tokens and gives a heat map over image columns, a bearing and a confidence.
//! * [`policy`]: the decision: search (remembering where it looked), approach, avoid, arrive.
//! * [`linalg`]: the small dense solvers the fit uses.
//!
//! No keyword tables, no colour thresholds on pixels, no simulator ground truth at run time: the
//! instruction reaches the decision only as the language region's embedding.

pub mod connector;
pub mod linalg;
pub mod policy;
pub mod query;

pub use connector::{AlignConnector, Concept, ConnectorError};
pub use policy::{GroundedPolicy, PolicyInput, PolicyParams, PolicyStatus, Reason, VisionView};
pub use query::{InstructionInfo, Percept, QueryConnector};

/// Where `brainloop align` saves the alignment connector, relative to the project root.
pub const DEFAULT_CONNECTOR: &str = "models/connectors/vision_align.bin";
