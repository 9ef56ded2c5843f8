//! Language grounding: how the brain ties what it is told to what it sees and does.
//! May depend on regions, integrator (the `Policy` seam), navigation, body, msg, world and util;
//! never on the simulator (training lives in `crate::training`).
//!
//! * [`connector`]: the vision-language alignment connector, a linear map from the vision
//!   region's spatial features into the language region's embedding space, fitted here in closed
//!   form (ridge regression) on labelled simulated views, with its concept bank.
//! * [`query`]: the query-based connector: the instruction's embedding attends over the aligned
//!   spatial tokens and gives a heat map over image columns, a bearing and a confidence.
//! * [`recall`]: attention over working memory's sightings: where the target was last seen.
//! * [`policy`]: the decision: search (remembering where it looked), approach, avoid, arrive;
//!   its range geometry, odometry, exploration memory and steering are
//!   [`crate::navigation`]'s, which knows nothing of language or vision.
//!
//! No keyword tables, no colour thresholds on pixels, no simulator ground truth at run time: the
//! instruction reaches the decision only as the language region's embedding.

pub mod connector;
pub mod instruction;
pub mod policy;
pub mod query;
pub mod recall;

pub use connector::{AlignConnector, Concept, ConnectorError};
pub use policy::{GroundedPolicy, PolicyInput, PolicyParams, PolicyStatus, Reason, VisionView};
pub use query::{InstructionInfo, Percept, QueryConnector};

/// Where `brainloop align` saves the alignment connector, relative to the project root.
pub const DEFAULT_CONNECTOR: &str = "models/connectors/vision_align.bin";

/// The trained connector's path: `DEFAULT_CONNECTOR` under the project root.
pub fn default_connector_path() -> std::path::PathBuf {
    crate::regions::models::project_root().join(DEFAULT_CONNECTOR)
}

/// The language-grounded policy for this robot, with the trained connector from
/// [`default_connector_path`] (checked against its sha256). This is what the integrator's
/// `set_policy` should get: `integrator.set_policy(Box::new(grounding::load_policy(params)?))`.
pub fn load_policy(params: &crate::body::RobotParams) -> Result<GroundedPolicy, ConnectorError> {
    load_policy_from(&default_connector_path(), params)
}

/// [`load_policy`] with a connector file of your choice.
pub fn load_policy_from(
    path: &std::path::Path,
    params: &crate::body::RobotParams,
) -> Result<GroundedPolicy, ConnectorError> {
    let connector = std::sync::Arc::new(AlignConnector::load(path)?);
    policy_with(connector, path, params)
}

/// The grounded policy around an already loaded connector (a learned state's, from
/// [`crate::sleep::BrainState`]); `path` names it in errors.
pub fn policy_with(
    connector: std::sync::Arc<AlignConnector>,
    path: &std::path::Path,
    params: &crate::body::RobotParams,
) -> Result<GroundedPolicy, ConnectorError> {
    // A connector fitted on another vision model's features would match nothing, silently.
    let want = crate::regions::vision::SPATIAL_DIM;
    if connector.in_dim() != want {
        return Err(ConnectorError::Format {
            path: path.to_path_buf(),
            message: format!(
                "fitted on {}-channel vision features, but the vision region gives {want}; refit it with `brainloop align`",
                connector.in_dim()
            ),
        });
    }
    let p = PolicyParams::for_robot(params);
    let query = QueryConnector::new(connector, p.hfov);
    Ok(GroundedPolicy::new(query, p))
}
