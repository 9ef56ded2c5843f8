//! The brain, built from the one config in one place: [`build`] resolves the config's graph,
//! builds every region it names from the registry of region kinds, and the integrator with its
//! input slots. May depend on config, regions, integrator, bus, grounding; `run`, `sim`, `eval`,
//! the benches (and the node processes) build through it, and nothing here depends on them.
//!
//! What runs is what the graph says: a region absent from the config is not built (said once
//! in the log); a region whose input this run does not have (`run` without `--wav`) is turned
//! off before the integrator is built, so the integrator neither waits for it nor grows drowsy
//! over a sense the robot lacks, and the summary lists only the regions that ran.

use crate::body::RobotParams;
use crate::config::graph::{period_ns, Graph};
use crate::config::{Config, RegionConfig};
use crate::integrator::{Integrator, IntegratorError, IntegratorOptions, SlotWriter};
use crate::msg::RegionId;
use crate::regions::audition::AuditionRegion;
use crate::regions::language::{InstructionInbox, LanguageRegion};
use crate::regions::proprioception::ProprioceptionRegion;
use crate::regions::sources::{AudioSource, BodyStateSource, FrameSource};
use crate::regions::vision::VisionRegion;
use crate::regions::{spawn, Region, RegionError, RegionHandle, ShedLevel};
use std::sync::Arc;

/// Where the regions' inputs come from in this run. A region whose input is `None` does not
/// run.
#[derive(Default)]
pub struct Sources {
    /// Camera frames for vision.
    pub frames: Option<Box<dyn FrameSource>>,
    /// Instructions for language (always present: no instruction yet is a normal state).
    pub instructions: InstructionInbox,
    /// Microphone chunks for audition.
    pub audio: Option<Box<dyn AudioSource>>,
    /// Body states for proprioception.
    pub body: Option<Box<dyn BodyStateSource>>,
    /// Regions that run in another process (`brainloop node NAME`): not built here; their
    /// slots are handed back in [`Brain::remote`] for the bus to feed.
    pub remote: Vec<RegionId>,
}

impl Sources {
    fn has(&self, id: RegionId) -> bool {
        if self.remote.contains(&id) {
            return true;
        }
        match id {
            RegionId::Vision => self.frames.is_some(),
            RegionId::Language => true,
            RegionId::Audition => self.audio.is_some(),
            RegionId::Proprioception => self.body.is_some(),
        }
    }
}

fn no_input(region: &str) -> RegionError {
    RegionError::Source(format!("{region}: no input for this run"))
}

/// Builds one region from its config section and this run's sources.
type BuildRegion = fn(
    &RegionConfig,
    &mut Sources,
    &RobotParams,
    ShedLevel,
) -> Result<Box<dyn Region>, RegionError>;

/// One kind of region the brain can build.
pub struct RegionKind {
    /// Which region.
    pub id: RegionId,
    /// The input it needs, for the line that says it does not run without it.
    pub input: &'static str,
    build: BuildRegion,
}

/// The registry of region kinds, in slot order.
pub const REGION_KINDS: [RegionKind; RegionId::COUNT] = [
    RegionKind {
        id: RegionId::Vision,
        input: "a camera (--images / --camera, or the simulator's)",
        build: |rc, s, _, shed| {
            let src = s.frames.take().ok_or_else(|| no_input("vision"))?;
            Ok(Box::new(VisionRegion::new(rc, src, shed)?))
        },
    },
    RegionKind {
        id: RegionId::Language,
        input: "instructions",
        build: |rc, s, _, shed| {
            Ok(Box::new(LanguageRegion::new(
                rc,
                s.instructions.clone(),
                shed,
            )?))
        },
    },
    RegionKind {
        id: RegionId::Audition,
        input: "a microphone (--wav, or the simulator's)",
        build: |rc, s, _, shed| {
            let src = s.audio.take().ok_or_else(|| no_input("audition"))?;
            Ok(Box::new(AuditionRegion::new(rc, src, shed)?))
        },
    },
    RegionKind {
        id: RegionId::Proprioception,
        input: "body states",
        build: |rc, s, params, shed| {
            let src = s.body.take().ok_or_else(|| no_input("proprioception"))?;
            Ok(Box::new(ProprioceptionRegion::new(
                rc,
                params.clone(),
                src,
                shed,
            )?))
        },
    },
];

/// Build region `id` alone from its config section, for a region that runs as its own process
/// (`brainloop node NAME`): the same builder the one-process brain uses, with `shed` set
/// from the integrator's health on the bus.
pub fn build_region(
    cfg: &Config,
    id: RegionId,
    params: &RobotParams,
    mut sources: Sources,
    shed: ShedLevel,
) -> Result<Box<dyn Region>, BuildError> {
    let name = id.name();
    let kind = &REGION_KINDS[id.index()];
    let rc = cfg.regions.get(name).ok_or(BuildError::Region {
        region: name,
        source: RegionError::Source("not in the config".into()),
    })?;
    (kind.build)(rc, &mut sources, params, shed).map_err(|source| BuildError::Region {
        region: name,
        source,
    })
}

/// A region as built: the region, the slot it publishes into and its period.
pub struct BuiltRegion {
    /// Which region.
    pub id: RegionId,
    /// The region.
    pub region: Box<dyn Region>,
    /// Its input slot in the integrator.
    pub writer: SlotWriter,
    /// Its period, ns.
    pub period_ns: u64,
}

/// Errors building the brain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The integrator refused the configuration.
    #[error(transparent)]
    Integrator(#[from] IntegratorError),
    /// A region could not be built (e.g. its model file is missing).
    #[error("region {region}: {source} (build the models with `make bootstrap` or `brainloop models build`)")]
    Region {
        /// Region name.
        region: &'static str,
        /// Cause.
        source: RegionError,
    },
    /// A region's slot was taken twice.
    #[error("region {0}: its input slot is already taken")]
    Slot(&'static str),
}

/// The brain as built: its graph, the integrator and the regions that run.
pub struct Brain {
    /// The graph that runs (regions without an input turned off).
    pub graph: Graph,
    /// The integrator, with its slots and motor stage (set its policy before running).
    pub integrator: Integrator,
    /// The regions that run here, in slot order.
    pub regions: Vec<BuiltRegion>,
    /// The slots of the regions that run in other processes ([`Sources::remote`]).
    pub remote: Vec<(RegionId, SlotWriter)>,
}

impl std::fmt::Debug for Brain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Brain")
            .field("integrator", &self.integrator)
            .field("regions", &self.region_names())
            .finish()
    }
}

/// The config as it runs with these sources: configured regions without an input are turned
/// off (and said so once).
pub fn effective_config(cfg: &Config, sources: &Sources) -> Config {
    let mut cfg = cfg.clone();
    for kind in &REGION_KINDS {
        let name = kind.id.name();
        match cfg.regions.get_mut(name) {
            None => tracing::info!("{name}: not in the config, not run"),
            Some(rc) if rc.enabled && !sources.has(kind.id) => {
                tracing::warn!("{name}: no input ({} needed): region off", kind.input);
                rc.enabled = false;
            }
            Some(_) => {}
        }
    }
    cfg
}

/// Build the brain from `cfg`: the graph, the integrator (with `opts`) and every region that
/// runs, each bound to its slot.
pub fn build(
    cfg: &Config,
    params: &RobotParams,
    opts: IntegratorOptions,
    mut sources: Sources,
) -> Result<Brain, BuildError> {
    let cfg = effective_config(cfg, &sources);
    let integrator = Integrator::with_options(&cfg, params, opts)?;
    let graph = integrator.graph().clone();
    let slots = integrator.slots();
    let shed = ShedLevel::from_atomic(integrator.shed_level());
    let mut regions = Vec::new();
    let mut remote = Vec::new();
    for kind in &REGION_KINDS {
        let name = kind.id.name();
        let Some(rc) = cfg.regions.get(name).filter(|_| graph.runs(name)) else {
            continue;
        };
        if sources.remote.contains(&kind.id) {
            remote.push((
                kind.id,
                slots.writer(kind.id).ok_or(BuildError::Slot(name))?,
            ));
            continue;
        }
        let region = (kind.build)(rc, &mut sources, params, shed.clone()).map_err(|source| {
            BuildError::Region {
                region: name,
                source,
            }
        })?;
        let writer = slots.writer(kind.id).ok_or(BuildError::Slot(name))?;
        regions.push(BuiltRegion {
            id: kind.id,
            period_ns: period_ns(rc.rate_hz),
            region,
            writer,
        });
    }
    Ok(Brain {
        graph,
        integrator,
        regions,
        remote,
    })
}

impl Brain {
    /// Names of the regions that run.
    pub fn region_names(&self) -> Vec<&'static str> {
        let mut v: Vec<RegionId> = self.regions.iter().map(|r| r.id).collect();
        v.extend(self.remote.iter().map(|r| r.0));
        v.sort_by_key(|r| r.index());
        v.into_iter().map(|r| r.name()).collect()
    }
}

/// Start every region on its own thread at its rate on `clock`, publishing into its slot.
pub fn spawn_regions(
    regions: Vec<BuiltRegion>,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
) -> Result<Vec<(RegionId, RegionHandle)>, BuildError> {
    let mut handles = Vec::new();
    for r in regions {
        let (id, writer) = (r.id, r.writer);
        let h = spawn(r.region, clock.clone(), move |e| {
            // A rejected embedding (wrong size) is counted by the slot; the region goes on.
            let _ = writer.publish(e);
        })
        .map_err(|e| BuildError::Region {
            region: id.name(),
            source: RegionError::Source(format!("cannot start its thread: {e}")),
        })?;
        handles.push((id, h));
    }
    Ok(handles)
}
