//! Scenarios: what the simulated robot is asked to do and in which world. A scenario file
//! (`scenarios/*.toml`) names an instruction, a goal predicate (within some distance of a named
//! object), a time limit and how the arena is furnished; [`Scenario::layout`] turns it plus a seed
//! into a concrete [`Layout`] (walls, obstacles, coloured objects, start pose) and checks that the
//! goal can be reached at all, so an impossible task is one clear error instead of a silent failure.
//!
//! A scenario may instead list several tasks in order (`[[steps]]`, each with an instruction, a
//! goal and a time limit, optionally `sleep_before = true` and a fixed place `at` for its object):
//! a day in the arena. The first step is also the scenario's own instruction and goal; every
//! later step's object is placed in the layout too.

pub use crate::world::{
    BoxObstacle, Colour, Layout, ObjectKind, PlacedObject, Shape, ROBOT_RADIUS, WALL_HALF_THICKNESS,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors loading a scenario or laying it out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// No scenario with that name.
    #[error("unknown scenario `{name}` (known: {known})")]
    Unknown {
        /// Requested name.
        name: String,
        /// Comma-separated known names.
        known: String,
    },
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("malformed scenario {path}: {message}")]
    Malformed {
        /// File.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The goal cannot be reached in this layout.
    #[error("unreachable goal in scenario `{name}` (seed {seed}): {why}")]
    Unreachable {
        /// Scenario name.
        name: String,
        /// Layout seed.
        seed: u64,
        /// Why.
        why: String,
    },
}

/// How the arena is furnished.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ArenaSpec {
    /// Side of the square arena in metres (2..=20).
    pub size_m: f64,
    /// Number of random box obstacles (0..=40).
    pub obstacles: usize,
    /// Number of distractor objects (0..=20), never of the goal's kind.
    pub distractors: usize,
    /// Distractors of the goal's colour but another shape, included in `distractors` (0..=20).
    pub same_colour_distractors: usize,
    /// Minimum start-to-goal distance in metres.
    pub min_goal_distance_m: f64,
    /// Extra fixed walls `[x, y, half_x, half_y]` in metres (e.g. a barrier between start and
    /// goal), at most [`MAX_WALLS`].
    pub walls: Vec<[f64; 4]>,
    /// Fixed start `[x, y, yaw]` instead of a random one.
    pub start: Option<[f64; 3]>,
    /// Fixed goal object position `[x, y]` instead of a random one.
    pub goal_at: Option<[f64; 2]>,
    /// Named extra objects ("yellow ball"), placed at random after the distractors (at most
    /// 20; never the goal's kind): e.g. the known look-alikes of a taught thing.
    pub objects: Vec<String>,
}

impl Default for ArenaSpec {
    fn default() -> Self {
        Self {
            size_m: 4.0,
            obstacles: 0,
            distractors: 0,
            same_colour_distractors: 0,
            min_goal_distance_m: 1.0,
            walls: Vec::new(),
            start: None,
            goal_at: None,
            objects: Vec::new(),
        }
    }
}

/// The most fixed walls a scenario may have.
pub const MAX_WALLS: usize = 200;

/// The goal predicate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GoalSpec {
    /// The object to reach, "colour shape" (e.g. "red ball").
    pub object: String,
    /// Success when the robot's centre is within this distance of the object's centre, m.
    #[serde(default = "default_within")]
    pub within_m: f64,
}

fn default_within() -> f64 {
    0.5
}

/// One task of a scenario with several (`[[steps]]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The instruction given when the step starts.
    pub instruction: String,
    /// Its goal predicate.
    pub goal: GoalSpec,
    /// Its time limit in simulated seconds (from the moment the instruction is given).
    pub time_limit_s: f64,
    /// Sleep (consolidate, clear working memory) before this step's instruction is given.
    #[serde(default)]
    pub sleep_before: bool,
    /// Where this step's object stands `[x, y]` (a later step's object; random when absent).
    #[serde(default)]
    pub at: Option<[f64; 2]>,
}

/// Longest a sleep between steps may take before the next step starts anyway, s.
pub const STEP_SLEEP_LIMIT_S: f64 = 30.0;

/// A scenario file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name (defaults to the file stem).
    #[serde(default)]
    pub name: String,
    /// One line for humans.
    #[serde(default)]
    pub description: String,
    /// Difficulty 1 (easy) ..= 5 (hard), for ordering.
    #[serde(default = "one")]
    pub difficulty: u8,
    /// The instruction given to the brain (with `[[steps]]`: the first step's).
    #[serde(default)]
    pub instruction: String,
    /// Default layout seed (the CLI's `--seed` overrides it).
    #[serde(default = "one64")]
    pub seed: u64,
    /// Time limit in simulated seconds (with `[[steps]]`: all steps' and sleeps' together).
    #[serde(default)]
    pub time_limit_s: f64,
    /// Goal predicate (with `[[steps]]`: the first step's).
    #[serde(default = "no_goal")]
    pub goal: GoalSpec,
    /// Arena.
    #[serde(default)]
    pub arena: ArenaSpec,
    /// Several tasks in order (empty: the one task above).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Teaching steps (`brainloop day` runs them): drive to an object, then say what it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teach: Vec<TeachStep>,
}

fn no_goal() -> GoalSpec {
    GoalSpec {
        object: String::new(),
        within_m: default_within(),
    }
}

/// One teaching step of a scenario: the privileged planner drives the robot up to an object
/// (several views on the way), then the operator's utterance names it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TeachStep {
    /// What the operator says ("this is the white ball", "vermilion is a red").
    pub say: String,
    /// The object to drive to, "colour shape" (default: the scenario's goal object). Used by the
    /// planner only; the brain hears just `say`.
    #[serde(default)]
    pub object: Option<String>,
    /// Layout seed of the scene (default: the scenario's).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Drive up to the object first (false: say it from the start pose, looking ahead).
    #[serde(default = "yes")]
    pub drive: bool,
    /// Camera views kept on the way (1..=12, default 8).
    #[serde(default = "six")]
    pub views: usize,
}

fn yes() -> bool {
    true
}
fn six() -> usize {
    8
}

fn one() -> u8 {
    1
}
fn one64() -> u64 {
    1
}

impl Scenario {
    /// Parse scenario text; `name` is used when the file names none.
    pub fn parse(text: &str, path: &str, name: &str) -> Result<Self, ScenarioError> {
        let malformed = |message: String| ScenarioError::Malformed {
            path: path.to_string(),
            message,
        };
        let mut s: Scenario =
            toml::from_str(text).map_err(|e| malformed(e.to_string().trim().replace('\n', " ")))?;
        if s.name.is_empty() {
            s.name = name.to_string();
        }
        if let Some(first) = s.steps.first().cloned() {
            if !s.instruction.is_empty() || !s.goal.object.is_empty() || s.time_limit_s != 0.0 {
                return Err(malformed(
                    "with [[steps]], the instruction, goal and time limit belong to the steps"
                        .into(),
                ));
            }
            s.instruction = first.instruction;
            s.goal = first.goal;
            s.time_limit_s = s
                .steps
                .iter()
                .map(|t| {
                    t.time_limit_s
                        + if t.sleep_before {
                            STEP_SLEEP_LIMIT_S
                        } else {
                            0.0
                        }
                })
                .sum();
        }
        s.validate().map_err(malformed)?;
        Ok(s)
    }

    /// Read a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        Self::parse(&text, &path.display().to_string(), &stem)
    }

    /// Find a scenario by name in `dir` (file `dir/NAME.toml`), or load a path ending in `.toml`.
    pub fn find(dir: &Path, name: &str) -> Result<Self, ScenarioError> {
        if name.ends_with(".toml") && Path::new(name).is_file() {
            return Self::load(Path::new(name));
        }
        let path = dir.join(format!("{name}.toml"));
        if path.is_file() {
            return Self::load(&path);
        }
        let known = list_files(dir)
            .iter()
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        Err(ScenarioError::Unknown {
            name: name.to_string(),
            known: if known.is_empty() {
                format!("none in {}", dir.display())
            } else {
                known
            },
        })
    }

    /// The goal object's kind.
    pub fn goal_kind(&self) -> Option<ObjectKind> {
        ObjectKind::parse(&self.goal.object)
    }

    /// The tasks in order: the `[[steps]]`, or the one task of a scenario without them.
    pub fn tasks(&self) -> Vec<Step> {
        if self.steps.is_empty() {
            vec![Step {
                instruction: self.instruction.clone(),
                goal: self.goal.clone(),
                time_limit_s: self.time_limit_s,
                sleep_before: false,
                at: None,
            }]
        } else {
            self.steps.clone()
        }
    }

    /// Kinds of the later steps' objects (not the first goal's kind), each once.
    fn step_kinds(&self) -> Vec<(ObjectKind, Option<[f64; 2]>)> {
        let mut v: Vec<(ObjectKind, Option<[f64; 2]>)> = Vec::new();
        let first = self.goal_kind();
        for s in self.steps.iter().skip(1) {
            if let Some(k) = ObjectKind::parse(&s.goal.object) {
                if Some(k) != first && v.iter().all(|(o, _)| *o != k) {
                    v.push((k, s.at));
                }
            }
        }
        v
    }

    fn validate(&self) -> Result<(), String> {
        let mut errs = Vec::new();
        if self.instruction.trim().is_empty() {
            errs.push("instruction: must not be empty".to_string());
        }
        if !(self.time_limit_s.is_finite() && (1.0..=3600.0).contains(&self.time_limit_s)) {
            errs.push("time_limit_s: must be within 1..=3600".into());
        }
        if self.goal_kind().is_none() {
            errs.push(format!(
                "goal.object: `{}` is not `<colour> <shape>` (colours: {}; shapes: ball, cube, cylinder, capsule)",
                self.goal.object,
                Colour::EVERY.map(|c| c.name()).join(", ")
            ));
        }
        if !(self.goal.within_m.is_finite() && (0.05..=5.0).contains(&self.goal.within_m)) {
            errs.push("goal.within_m: must be within 0.05..=5".into());
        }
        let a = &self.arena;
        if !(a.size_m.is_finite() && (2.0..=20.0).contains(&a.size_m)) {
            errs.push("arena.size_m: must be within 2..=20".into());
        }
        if a.obstacles > 40 {
            errs.push("arena.obstacles: at most 40".into());
        }
        if a.distractors > 20 || a.same_colour_distractors > a.distractors {
            errs.push(
                "arena.distractors: at most 20, and same_colour_distractors <= distractors".into(),
            );
        }
        if !(a.min_goal_distance_m.is_finite() && a.min_goal_distance_m >= 0.0) {
            errs.push("arena.min_goal_distance_m: must be >= 0".into());
        }
        if a.walls.len() > MAX_WALLS {
            errs.push(format!(
                "arena.walls: at most {MAX_WALLS} ({} given: the layout and its path check grow with every wall)",
                a.walls.len()
            ));
        }
        if self.instruction.chars().count() > 1000 {
            errs.push("instruction: at most 1000 characters".into());
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if a.walls
            .iter()
            .any(|w| !finite(w) || w[2] <= 0.0 || w[3] <= 0.0)
            || a.start.is_some_and(|s| !finite(&s))
            || a.goal_at.is_some_and(|g| !finite(&g))
        {
            errs.push("arena.walls/start/goal_at: finite numbers, positive half sizes".into());
        }
        if self.steps.len() > 16 {
            errs.push("steps: at most 16".into());
        }
        for (i, t) in self.steps.iter().enumerate() {
            if t.instruction.trim().is_empty() || t.instruction.chars().count() > 1000 {
                errs.push(format!("steps[{i}].instruction: 1..=1000 characters"));
            }
            if ObjectKind::parse(&t.goal.object).is_none() {
                errs.push(format!(
                    "steps[{i}].goal.object: `{}` is not `<colour> <shape>`",
                    t.goal.object
                ));
            }
            if !(t.goal.within_m.is_finite() && (0.05..=5.0).contains(&t.goal.within_m)) {
                errs.push(format!("steps[{i}].goal.within_m: must be within 0.05..=5"));
            }
            if !(t.time_limit_s.is_finite() && (1.0..=3600.0).contains(&t.time_limit_s)) {
                errs.push(format!("steps[{i}].time_limit_s: must be within 1..=3600"));
            }
            if t.at.is_some_and(|a| !a.iter().all(|v| v.is_finite())) {
                errs.push(format!("steps[{i}].at: finite numbers"));
            }
        }
        if a.objects.len() > 20 {
            errs.push("arena.objects: at most 20".into());
        }
        for o in &a.objects {
            match ObjectKind::parse(o) {
                None => errs.push(format!("arena.objects: `{o}` is not `<colour> <shape>`")),
                Some(k) if Some(k) == self.goal_kind() => {
                    errs.push(format!("arena.objects: `{o}` is the goal's kind"))
                }
                _ => {}
            }
        }
        for (i, t) in self.teach.iter().enumerate() {
            if t.say.trim().is_empty() || t.say.chars().count() > 200 {
                errs.push(format!("teach[{i}].say: 1..=200 characters"));
            }
            if !(1..=12).contains(&t.views) {
                errs.push(format!("teach[{i}].views: must be within 1..=12"));
            }
            if t.object
                .as_deref()
                .is_some_and(|o| ObjectKind::parse(o).is_none())
            {
                errs.push(format!("teach[{i}].object: not `<colour> <shape>`"));
            }
        }
        if !(1..=5).contains(&self.difficulty) {
            errs.push("difficulty: must be within 1..=5".into());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }
}

/// `*.toml` files in a directory, sorted by name.
pub fn list_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Load every scenario in a directory (sorted by difficulty, then name).
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, ScenarioError> {
    let files = list_files(dir);
    if files.is_empty() {
        return Err(ScenarioError::Io {
            path: dir.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no *.toml scenario files"),
        });
    }
    let mut v = files
        .iter()
        .map(|p| Scenario::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    v.sort_by(|a, b| (a.difficulty, &a.name).cmp(&(b.difficulty, &b.name)));
    Ok(v)
}

/// The seeded PRNG layouts are drawn from (SplitMix64): layouts depend only on the seed.
pub use crate::util::SplitMix as Rng;

impl Scenario {
    /// Lay the scenario out for `seed` and check that the goal is reachable.
    pub fn layout(&self, seed: u64) -> Result<Layout, ScenarioError> {
        let unreachable = |why: String| ScenarioError::Unreachable {
            name: self.name.clone(),
            seed,
            why,
        };
        let goal_kind = self
            .goal_kind()
            .ok_or_else(|| unreachable("goal object has no colour and shape".into()))?;
        let a = &self.arena;
        let half = a.size_m / 2.0;
        let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EED);
        let mut boxes = Vec::new();
        let t = WALL_HALF_THICKNESS;
        for (x, y, hx, hy) in [
            (0.0, half + t, half + 2.0 * t, t),
            (0.0, -half - t, half + 2.0 * t, t),
            (half + t, 0.0, t, half),
            (-half - t, 0.0, t, half),
        ] {
            boxes.push(BoxObstacle {
                x,
                y,
                hx,
                hy,
                boundary: true,
            });
        }
        for w in &a.walls {
            boxes.push(BoxObstacle {
                x: w[0],
                y: w[1],
                hx: w[2],
                hy: w[3],
                boundary: false,
            });
        }
        let margin = 0.35;
        let start = match a.start {
            Some(s) => (s[0], s[1], s[2]),
            None => (
                -half + margin + 0.15,
                rng.range(-half + margin, half - margin),
                rng.range(-std::f64::consts::PI, std::f64::consts::PI),
            ),
        };
        let inside = |x: f64, y: f64, r: f64| x.abs() <= half - r && y.abs() <= half - r;
        if !inside(start.0, start.1, ROBOT_RADIUS) {
            return Err(unreachable("the start pose is outside the arena".into()));
        }
        let mut objects: Vec<PlacedObject> = Vec::new();
        let free = |x: f64, y: f64, r: f64, boxes: &[BoxObstacle], objects: &[PlacedObject]| {
            boxes.iter().all(|b| b.distance(x, y) > r + 0.05)
                && objects
                    .iter()
                    .all(|o| (x - o.x).hypot(y - o.y) > r + o.shape.radius() + 0.15)
        };
        // Goal.
        let (gx, gy) = match a.goal_at {
            Some(g) => (g[0], g[1]),
            None => {
                let mut found = None;
                for _ in 0..2000 {
                    let x = rng.range(-half + margin, half - margin);
                    let y = rng.range(-half + margin, half - margin);
                    if (x - start.0).hypot(y - start.1) >= a.min_goal_distance_m
                        && free(x, y, goal_kind.shape.radius(), &boxes, &objects)
                    {
                        found = Some((x, y));
                        break;
                    }
                }
                found.ok_or_else(|| {
                    unreachable(format!(
                        "no place for the goal at least {} m from the start in a {} m arena",
                        a.min_goal_distance_m, a.size_m
                    ))
                })?
            }
        };
        objects.push(PlacedObject {
            colour: goal_kind.colour,
            shape: goal_kind.shape,
            x: gx,
            y: gy,
            goal: true,
        });
        // Later steps' objects: at their fixed place, or anywhere free.
        let step_kinds = self.step_kinds();
        for (k, at) in &step_kinds {
            let r = k.shape.radius();
            let place = match at {
                Some(p) => Some((p[0], p[1])),
                None => (0..2000).find_map(|_| {
                    let x = rng.range(-half + margin, half - margin);
                    let y = rng.range(-half + margin, half - margin);
                    ((x - start.0).hypot(y - start.1) > ROBOT_RADIUS + 0.4
                        && free(x, y, r, &boxes, &objects))
                    .then_some((x, y))
                }),
            };
            let (x, y) = place.filter(|&(x, y)| inside(x, y, r)).ok_or_else(|| {
                unreachable(format!("no place in the arena for the {}", k.label()))
            })?;
            objects.push(PlacedObject {
                colour: k.colour,
                shape: k.shape,
                x,
                y,
                goal: false,
            });
        }
        // Distractors: never the goal's kind (nor a later step's).
        for i in 0..a.distractors {
            let colour = if i < a.same_colour_distractors {
                goal_kind.colour
            } else {
                let others: Vec<Colour> = Colour::ALL
                    .into_iter()
                    .filter(|c| *c != goal_kind.colour)
                    .collect();
                others[rng.below(others.len())]
            };
            let shapes: Vec<Shape> = Shape::ALL
                .into_iter()
                .filter(|s| colour != goal_kind.colour || *s != goal_kind.shape)
                .collect();
            let shape = shapes[rng.below(shapes.len())];
            if step_kinds
                .iter()
                .any(|(k, _)| k.colour == colour && k.shape == shape)
            {
                continue;
            }
            for _ in 0..500 {
                let x = rng.range(-half + margin, half - margin);
                let y = rng.range(-half + margin, half - margin);
                if (x - start.0).hypot(y - start.1) > ROBOT_RADIUS + 0.4
                    && free(x, y, shape.radius(), &boxes, &objects)
                {
                    objects.push(PlacedObject {
                        colour,
                        shape,
                        x,
                        y,
                        goal: false,
                    });
                    break;
                }
            }
        }
        // Named extra objects.
        for kind in a.objects.iter().filter_map(|o| ObjectKind::parse(o)) {
            for _ in 0..500 {
                let x = rng.range(-half + margin, half - margin);
                let y = rng.range(-half + margin, half - margin);
                if (x - start.0).hypot(y - start.1) > ROBOT_RADIUS + 0.4
                    && free(x, y, kind.shape.radius(), &boxes, &objects)
                {
                    objects.push(PlacedObject {
                        colour: kind.colour,
                        shape: kind.shape,
                        x,
                        y,
                        goal: false,
                    });
                    break;
                }
            }
        }
        // Obstacles.
        for _ in 0..a.obstacles {
            for _ in 0..500 {
                let hx = rng.range(0.05, 0.2);
                let hy = rng.range(0.05, 0.2);
                let x = rng.range(-half + 0.3, half - 0.3);
                let y = rng.range(-half + 0.3, half - 0.3);
                let b = BoxObstacle {
                    x,
                    y,
                    hx,
                    hy,
                    boundary: false,
                };
                let clear_start = b.distance(start.0, start.1) > ROBOT_RADIUS + 0.35;
                let clear_goal = b.distance(gx, gy) > goal_kind.shape.radius() + 0.3;
                let clear_objects = objects
                    .iter()
                    .all(|o| b.distance(o.x, o.y) > o.shape.radius() + 0.1);
                if clear_start && clear_goal && clear_objects {
                    boxes.push(b);
                    break;
                }
            }
        }
        let mut layout = Layout {
            size_m: a.size_m,
            boxes,
            objects,
            start,
            goal_index: 0,
            within_m: self.goal.within_m,
            shortest_path_m: 0.0,
        };
        layout.shortest_path_m = shortest_path(&layout).ok_or_else(|| {
            unreachable(format!(
                "no collision-free path for a robot of radius {ROBOT_RADIUS} m from the start to within {} m of the {}",
                self.goal.within_m,
                goal_kind.label()
            ))
        })?;
        Ok(layout)
    }
}

/// Shortest collision-free path length from the start into the goal region on a 5 cm grid
/// (8-connected Dijkstra), or `None` when the goal region cannot be reached.
pub fn shortest_path(layout: &Layout) -> Option<f64> {
    let cell = 0.05;
    let half = layout.size_m / 2.0;
    let n = (layout.size_m / cell).ceil() as usize + 1;
    let to_xy = |i: usize, j: usize| (-half + i as f64 * cell, -half + j as f64 * cell);
    let goal = layout.goal();
    let mut blocked = vec![false; n * n];
    let mut target = vec![false; n * n];
    for i in 0..n {
        for j in 0..n {
            let (x, y) = to_xy(i, j);
            let near_box = layout.boxes.iter().any(|b| b.distance(x, y) < ROBOT_RADIUS);
            let near_obj = layout
                .objects
                .iter()
                .any(|o| (x - o.x).hypot(y - o.y) < o.shape.radius() + ROBOT_RADIUS);
            blocked[i * n + j] = near_box || near_obj || x.abs() > half || y.abs() > half;
            target[i * n + j] = (x - goal.x).hypot(y - goal.y) <= layout.within_m;
        }
    }
    let (sx, sy, _) = layout.start;
    let si = (((sx + half) / cell).round() as usize).min(n - 1);
    let sj = (((sy + half) / cell).round() as usize).min(n - 1);
    let mut dist = vec![f64::INFINITY; n * n];
    let mut parent: Vec<Option<(usize, usize)>> = vec![None; n * n];
    let mut heap = std::collections::BinaryHeap::new();
    dist[si * n + sj] = 0.0;
    // Ordered by negated distance in millimetres (integers keep the heap total-ordered).
    heap.push((0i64, si, sj));
    while let Some((negd, i, j)) = heap.pop() {
        let d = -negd as f64 / 1e6;
        if d > dist[i * n + j] + 1e-9 {
            continue;
        }
        if target[i * n + j] {
            // String-pull the grid path (keep a waypoint only where the straight line to the
            // next one would cross an inflated obstacle): close to the any-angle shortest path.
            let mut cells = vec![(i, j)];
            let mut c = (i, j);
            while let Some(pc) = parent[c.0 * n + c.1] {
                cells.push(pc);
                c = pc;
            }
            cells.reverse();
            let visible = |a: (usize, usize), b: (usize, usize)| {
                let (ax, ay) = (a.0 as f64, a.1 as f64);
                let (bx, by) = (b.0 as f64, b.1 as f64);
                let steps = ((bx - ax).hypot(by - ay) * 3.0).ceil().max(1.0) as usize;
                (0..=steps).all(|k| {
                    let t = k as f64 / steps as f64;
                    let x = (ax + (bx - ax) * t).round() as usize;
                    let y = (ay + (by - ay) * t).round() as usize;
                    !blocked[x * n + y]
                })
            };
            let mut length = 0.0;
            let mut anchor = 0;
            let mut k = 1;
            while k < cells.len() {
                if k + 1 < cells.len() && visible(cells[anchor], cells[k + 1]) {
                    k += 1;
                    continue;
                }
                let (a, b) = (cells[anchor], cells[k]);
                length += cell * ((a.0 as f64 - b.0 as f64).hypot(a.1 as f64 - b.1 as f64));
                anchor = k;
                k += 1;
            }
            return Some(length.min(d));
        }
        for (di, dj) in [
            (-1i64, 0i64),
            (1, 0),
            (0, -1),
            (0, 1),
            (-1, -1),
            (-1, 1),
            (1, -1),
            (1, 1),
        ] {
            let (ni, nj) = (i as i64 + di, j as i64 + dj);
            if ni < 0 || nj < 0 || ni >= n as i64 || nj >= n as i64 {
                continue;
            }
            let (ni, nj) = (ni as usize, nj as usize);
            if blocked[ni * n + nj] {
                continue;
            }
            let step = cell * ((di * di + dj * dj) as f64).sqrt();
            let nd = d + step;
            if nd < dist[ni * n + nj] {
                dist[ni * n + nj] = nd;
                parent[ni * n + nj] = Some((i, j));
                heap.push((-((nd * 1e6) as i64), ni, nj));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Scenario {
        Scenario::parse(
            r#"instruction = "go to the red ball"
time_limit_s = 30
[goal]
object = "red ball"
[arena]
obstacles = 4
distractors = 3
"#,
            "t.toml",
            "t",
        )
        .unwrap()
    }

    #[test]
    fn layout_is_deterministic_and_reachable() {
        let s = base();
        let a = s.layout(7).unwrap();
        let b = s.layout(7).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let c = s.layout(8).unwrap();
        assert_ne!(format!("{a:?}"), format!("{c:?}"));
        assert!(a.shortest_path_m > 0.3);
        assert_eq!(a.objects.iter().filter(|o| o.goal).count(), 1);
        let gk = a.goal().kind();
        assert!(a.objects.iter().filter(|o| !o.goal).all(|o| o.kind() != gk));
    }

    #[test]
    fn walled_off_goal_is_unreachable() {
        let mut s = base();
        s.arena.obstacles = 0;
        s.arena.start = Some([-1.5, 0.0, 0.0]);
        s.arena.goal_at = Some([1.5, 0.0]);
        s.arena.walls = vec![[0.0, 0.0, 0.05, 2.0]];
        let e = s.layout(1).unwrap_err().to_string();
        assert!(e.contains("unreachable goal"), "{e}");
    }

    #[test]
    fn malformed_files_are_one_clear_error() {
        let e = Scenario::parse("instruction = 3", "x.toml", "x")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("malformed scenario x.toml"), "{e}");
        let e = Scenario::parse(
            "instruction = \"a\"\ntime_limit_s = 5\n[goal]\nobject = \"shiny thing\"\n",
            "y.toml",
            "y",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("goal.object"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn steps_fill_the_first_task_and_place_every_object() {
        let text = r#"seed = 3
[arena]
distractors = 6
[[steps]]
instruction = "go to the blue cube"
goal = { object = "blue cube" }
time_limit_s = 20
[[steps]]
instruction = "now the red ball"
goal = { object = "red ball", within_m = 0.4 }
time_limit_s = 30
sleep_before = true
at = [1.0, 1.0]
"#;
        let s = Scenario::parse(text, "m.toml", "m").unwrap();
        assert_eq!(s.instruction, "go to the blue cube");
        assert_eq!(s.goal.object, "blue cube");
        assert_eq!(s.time_limit_s, 20.0 + 30.0 + STEP_SLEEP_LIMIT_S);
        let tasks = s.tasks();
        assert_eq!(tasks.len(), 2);
        assert!(tasks[1].sleep_before && !tasks[0].sleep_before);
        for seed in 0..20 {
            let l = s.layout(seed).unwrap();
            let red: Vec<_> = l
                .objects
                .iter()
                .filter(|o| o.colour == Colour::Red && o.shape == Shape::Ball)
                .collect();
            assert_eq!(red.len(), 1, "seed {seed}: exactly one red ball");
            assert_eq!((red[0].x, red[0].y), (1.0, 1.0));
            assert!(!red[0].goal && l.goal().kind() == ObjectKind::parse("blue cube").unwrap());
        }
        // Steps and a top-level task do not mix; a bad step is one clear error.
        let e = Scenario::parse(&format!("instruction = \"x\"\n{text}"), "m.toml", "m")
            .unwrap_err()
            .to_string();
        assert!(e.contains("belong to the steps"), "{e}");
        let bad = text.replace("\"red ball\"", "\"shiny thing\"");
        let e = Scenario::parse(&bad, "m.toml", "m")
            .unwrap_err()
            .to_string();
        assert!(e.contains("steps[1].goal.object"), "{e}");
        // One-task scenarios are one step.
        assert_eq!(base().tasks().len(), 1);
    }

    #[test]
    fn object_names_parse() {
        let k = ObjectKind::parse("Go to the BLUE cube please").unwrap();
        assert_eq!((k.colour, k.shape), (Colour::Blue, Shape::Cube));
        assert!(ObjectKind::parse("the thing").is_none());
    }
}
