//! Which simulated body an episode drives: the MuJoCo robot or the kinematic one (no MuJoCo:
//! `--body kinematic`), behind the in-process simulated board or behind the real firmware on the
//! emulated board (`--hil`). The episode loop sees one [`EpisodeBody`] whatever the choice.

use crate::body::{Body, RobotParams, SimulatedBody};
use crate::sim::board::{BoardLink, Boarded, SimBoard};
use crate::sim::hil::{default_firmware_dir, HilBoard, HilError};
use crate::sim::kinematic::KinematicWorld;
use crate::sim::mujoco::{MujocoBody, MujocoError};
use crate::world::Layout;
use std::path::PathBuf;

/// The physical model of the robot in the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Physics {
    /// MuJoCo: contacts, inertia, rendered camera.
    #[default]
    Mujoco,
    /// The kinematic diff drive in the layout geometry: no MuJoCo, no camera (vision is blind),
    /// range rays cast against the layout.
    Kinematic,
}

impl Physics {
    /// Name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Physics::Mujoco => "mujoco",
            Physics::Kinematic => "kinematic",
        }
    }
}

/// What sits between the brain and the simulated wheels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Board {
    /// The in-process simulated board (`sim::board`: the real wire format, modelled firmware).
    #[default]
    Simulated,
    /// The real firmware on the emulated ATmega328P (`sim::hil`), from this firmware build
    /// directory (None: [`default_firmware_dir`]).
    Firmware(Option<PathBuf>),
}

/// Errors building the body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyBuildError {
    /// MuJoCo problem.
    #[error("{0} (to run without MuJoCo: `--body kinematic`)")]
    Mujoco(#[from] MujocoError),
    /// Emulated board problem.
    #[error(transparent)]
    Hil(#[from] HilError),
}

/// A robot model in an arena (what a board drives).
pub trait ArenaBody: SimulatedBody {
    /// The MuJoCo body, when it is one (for rendering).
    fn mujoco_mut(&mut self) -> Option<&mut MujocoBody>;
    /// Contact onsets so far.
    fn collisions(&self) -> u32;
}

impl ArenaBody for MujocoBody {
    fn mujoco_mut(&mut self) -> Option<&mut MujocoBody> {
        Some(self)
    }
    fn collisions(&self) -> u32 {
        MujocoBody::collisions(self)
    }
}

impl ArenaBody for KinematicWorld {
    fn mujoco_mut(&mut self) -> Option<&mut MujocoBody> {
        None
    }
    fn collisions(&self) -> u32 {
        KinematicWorld::collisions(self)
    }
}

/// The body an episode drives: a board in front of an arena body.
pub trait EpisodeBody: SimulatedBody {
    /// The MuJoCo body, when there is one (for rendering).
    fn mujoco_mut(&mut self) -> Option<&mut MujocoBody>;
    /// Contact onsets so far.
    fn collisions(&self) -> u32;
    /// Frames host -> board and board -> host so far.
    fn frames(&self) -> (u64, u64);
    /// Frames rejected at either end of the link so far (CRC, decode).
    fn link_errors(&self) -> crate::sim::board::LinkErrors;
    /// As a plain body (for the brain).
    fn as_body(&self) -> &dyn Body;
    /// As a plain body, mutably (for the brain).
    fn as_body_mut(&mut self) -> &mut dyn Body;
}

impl<L: BoardLink, B: ArenaBody> EpisodeBody for Boarded<L, B> {
    fn mujoco_mut(&mut self) -> Option<&mut MujocoBody> {
        self.inner_mut().mujoco_mut()
    }
    fn collisions(&self) -> u32 {
        self.inner().collisions()
    }
    fn frames(&self) -> (u64, u64) {
        Boarded::frames(self)
    }
    fn link_errors(&self) -> crate::sim::board::LinkErrors {
        Boarded::link_errors(self)
    }
    fn as_body(&self) -> &dyn Body {
        self
    }
    fn as_body_mut(&mut self) -> &mut dyn Body {
        self
    }
}

/// Build the body for `layout`.
pub fn build(
    physics: Physics,
    board: &Board,
    params: &RobotParams,
    layout: &Layout,
) -> Result<Box<dyn EpisodeBody>, BodyBuildError> {
    let firmware = |dir: &Option<PathBuf>| dir.clone().unwrap_or_else(default_firmware_dir);
    Ok(match (physics, board) {
        (Physics::Mujoco, Board::Simulated) => {
            Box::new(SimBoard::new(MujocoBody::new(params.clone(), layout)?))
        }
        (Physics::Kinematic, Board::Simulated) => {
            Box::new(SimBoard::new(KinematicWorld::new(params.clone(), layout)))
        }
        (Physics::Mujoco, Board::Firmware(dir)) => Box::new(HilBoard::new(
            MujocoBody::new(params.clone(), layout)?,
            params.clone(),
            &firmware(dir),
        )?),
        (Physics::Kinematic, Board::Firmware(dir)) => Box::new(HilBoard::new(
            KinematicWorld::new(params.clone(), layout),
            params.clone(),
            &firmware(dir),
        )?),
    })
}
