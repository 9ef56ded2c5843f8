//! The world's vocabulary: the colours, shapes and object kinds the robot is told about, and the
//! concrete arena layout (walls, obstacles, objects, start). Depends on nothing in the crate.
//!
//! Scenario files and the seeded layout generator live in [`crate::sim::scenario`]; what a
//! layout *is* lives here, so that reports, grounding and training can speak of it without the
//! simulator.

use serde::{Deserialize, Serialize};

/// Colours objects can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    /// Red.
    Red,
    /// Green.
    Green,
    /// Blue.
    Blue,
    /// Yellow.
    Yellow,
    /// Purple.
    Purple,
    /// Orange.
    Orange,
    /// White (not in the shipped connector's training: taught by day, learned in sleep).
    White,
    /// Cyan (not in the shipped connector's training).
    Cyan,
    /// Pink (not in the shipped connector's training).
    Pink,
    /// Brown (not in the shipped connector's training).
    Brown,
}

impl Colour {
    /// The colours the shipped connector was trained on (`brainloop align`) and that the
    /// scenario generator draws distractors from.
    pub const ALL: [Colour; 6] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Purple,
        Colour::Orange,
    ];
    /// Colours the world can render that the shipped connector never saw: only a day's
    /// teaching (`brainloop day`) makes them known.
    pub const UNTRAINED: [Colour; 4] = [Colour::White, Colour::Cyan, Colour::Pink, Colour::Brown];
    /// Every colour the world can render: [`Colour::ALL`] then [`Colour::UNTRAINED`].
    pub const EVERY: [Colour; 10] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Purple,
        Colour::Orange,
        Colour::White,
        Colour::Cyan,
        Colour::Pink,
        Colour::Brown,
    ];
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
            Colour::Purple => "purple",
            Colour::Orange => "orange",
            Colour::White => "white",
            Colour::Cyan => "cyan",
            Colour::Pink => "pink",
            Colour::Brown => "brown",
        }
    }
    /// Linear RGB in 0..1 as rendered.
    pub fn rgb(self) -> [f64; 3] {
        match self {
            Colour::Red => [0.85, 0.08, 0.08],
            Colour::Green => [0.1, 0.7, 0.15],
            Colour::Blue => [0.1, 0.25, 0.9],
            Colour::Yellow => [0.92, 0.85, 0.1],
            Colour::Purple => [0.55, 0.15, 0.75],
            Colour::Orange => [1.0, 0.45, 0.0],
            Colour::White => [0.97, 0.97, 0.97],
            Colour::Cyan => [0.0, 0.8, 0.85],
            Colour::Pink => [1.0, 0.45, 0.75],
            Colour::Brown => [0.45, 0.26, 0.1],
        }
    }
    /// Parse a word (`"red"`; every colour, trained or not).
    pub fn from_word(w: &str) -> Option<Self> {
        Self::EVERY.into_iter().find(|c| c.name() == w)
    }
}

/// Shapes objects can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// A sphere.
    Ball,
    /// A cube.
    Cube,
    /// An upright cylinder.
    Cylinder,
    /// An upright capsule (a cylinder with hemispherical ends; not in the shipped connector's
    /// training).
    Capsule,
}

impl Shape {
    /// The shapes the shipped connector was trained on and distractors are drawn from.
    pub const ALL: [Shape; 3] = [Shape::Ball, Shape::Cube, Shape::Cylinder];
    /// Shapes the shipped connector never saw.
    pub const UNTRAINED: [Shape; 1] = [Shape::Capsule];
    /// Every shape the world can render.
    pub const EVERY: [Shape; 4] = [Shape::Ball, Shape::Cube, Shape::Cylinder, Shape::Capsule];
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Ball => "ball",
            Shape::Cube => "cube",
            Shape::Cylinder => "cylinder",
            Shape::Capsule => "capsule",
        }
    }
    /// Parse a word, with common synonyms.
    pub fn from_word(w: &str) -> Option<Self> {
        match w {
            "ball" | "sphere" | "balls" => Some(Shape::Ball),
            "cube" | "box" | "block" | "cubes" => Some(Shape::Cube),
            "cylinder" | "can" | "pillar" | "cylinders" => Some(Shape::Cylinder),
            "capsule" | "capsules" => Some(Shape::Capsule),
            _ => None,
        }
    }
    /// Footprint radius in metres (for spacing and reachability).
    pub fn radius(self) -> f64 {
        match self {
            Shape::Ball => 0.08,
            Shape::Cube => 0.07 * std::f64::consts::SQRT_2,
            Shape::Cylinder => 0.07,
            Shape::Capsule => CAPSULE_RADIUS,
        }
    }
}

/// Radius of a capsule, m (its cylindrical part is [`CAPSULE_HALF_LENGTH`] x 2 tall).
pub const CAPSULE_RADIUS: f64 = 0.06;
/// Half length of a capsule's cylindrical part, m (total height 2 x (0.06 + 0.06) = 0.24 m).
pub const CAPSULE_HALF_LENGTH: f64 = 0.06;

/// A named object kind: colour and shape, e.g. "red ball".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKind {
    /// Colour.
    pub colour: Colour,
    /// Shape.
    pub shape: Shape,
}

impl ObjectKind {
    /// "red ball".
    pub fn label(&self) -> String {
        format!("{} {}", self.colour.name(), self.shape.name())
    }
    /// Parse "red ball" (also "the red ball", "red_ball").
    pub fn parse(text: &str) -> Option<Self> {
        let lower = text.to_lowercase().replace(['_', '-'], " ");
        let mut colour = None;
        let mut shape = None;
        for w in lower.split(|c: char| !c.is_alphanumeric()) {
            colour = colour.or(Colour::from_word(w));
            shape = shape.or(Shape::from_word(w));
        }
        Some(Self {
            colour: colour?,
            shape: shape?,
        })
    }
}

/// The robot's footprint radius used for clearance and reachability, m.
pub const ROBOT_RADIUS: f64 = 0.125;
/// Wall thickness (half), m.
pub const WALL_HALF_THICKNESS: f64 = 0.025;

/// A placed object.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PlacedObject {
    /// Colour.
    pub colour: Colour,
    /// Shape.
    pub shape: Shape,
    /// Position, m.
    pub x: f64,
    /// Position, m.
    pub y: f64,
    /// Whether this is the goal object.
    pub goal: bool,
}

impl PlacedObject {
    /// Its kind.
    pub fn kind(&self) -> ObjectKind {
        ObjectKind {
            colour: self.colour,
            shape: self.shape,
        }
    }
}

/// An axis-aligned box obstacle (walls and clutter): centre and half sizes, m.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BoxObstacle {
    /// Centre x.
    pub x: f64,
    /// Centre y.
    pub y: f64,
    /// Half size along x.
    pub hx: f64,
    /// Half size along y.
    pub hy: f64,
    /// Whether it is part of the boundary wall.
    pub boundary: bool,
}

impl BoxObstacle {
    /// Distance from a point to the box (0 inside).
    pub fn distance(&self, x: f64, y: f64) -> f64 {
        let dx = ((x - self.x).abs() - self.hx).max(0.0);
        let dy = ((y - self.y).abs() - self.hy).max(0.0);
        dx.hypot(dy)
    }
}

/// A concrete world: what the MJCF, the reachability check, the scoring and the plots use.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    /// Arena side, m (centred on the origin).
    pub size_m: f64,
    /// Walls (boundary and extra) and obstacles.
    pub boxes: Vec<BoxObstacle>,
    /// Coloured objects; exactly one has `goal = true`.
    pub objects: Vec<PlacedObject>,
    /// Robot start `(x, y, yaw)`.
    pub start: (f64, f64, f64),
    /// Index of the goal in `objects`.
    pub goal_index: usize,
    /// Success radius, m.
    pub within_m: f64,
    /// Length of the shortest collision-free path from start into the goal region, m.
    pub shortest_path_m: f64,
}

impl Layout {
    /// The goal object.
    pub fn goal(&self) -> &PlacedObject {
        &self.objects[self.goal_index]
    }

    /// Distance from a point to the nearest obstacle surface (boxes and non-goal objects).
    pub fn clearance(&self, x: f64, y: f64) -> f64 {
        let b = self
            .boxes
            .iter()
            .map(|b| b.distance(x, y))
            .fold(f64::INFINITY, f64::min);
        let o = self
            .objects
            .iter()
            .filter(|o| !o.goal)
            .map(|o| ((x - o.x).hypot(y - o.y) - o.shape.radius()).max(0.0))
            .fold(f64::INFINITY, f64::min);
        b.min(o)
    }
}
