//! `brainloop day`: a reproducible day in simulation. The day file names teaching scenes
//! (scenarios with `[[teach]]` steps) and the scenarios that test what they teach (unseen
//! layouts). For each step the privileged planner brings the robot up to the object (the robot
//! is placed at poses along the approach, several views on the way: a kinematic drive, no
//! physics), the vision region sees each view, and the operator's utterance labels the moment.
//! Which cells are "this" is the robot's own inference: the thing its forward range ray hits,
//! projected through its camera model (the cells where an object of this world's size at that
//! range would be); the segmentation and the object's identity are never used. Then the brain
//! sleeps ([`crate::sleep::sleep_on`]) and the state is saved. With `--eval` the test
//! scenarios and the shipped ones are run before and after, and one JSON object says what
//! changed.

use crate::body::RobotParams;
use crate::config::Config;
use crate::experiment::episode::EpisodeOptions;
use crate::regions::language::LanguageModel;
use crate::regions::vision::VisionModel;
use crate::regions::Frame;
use crate::sim::camera::SimCamera;
use crate::sim::mujoco::MujocoBody;
use crate::sim::scenario::{self, Layout, ObjectKind, Scenario, ROBOT_RADIUS};
use crate::sleep::{self, BrainState, Moment, NightConfig, View};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A day file (`days/*.toml`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DayFile {
    /// One line for humans.
    #[serde(default)]
    pub description: String,
    /// Teaching scenes: scenario files (relative to the day file) with `[[teach]]` steps.
    pub teach: Vec<String>,
    /// Scenarios that test what the day teaches (relative to the day file).
    pub test: Vec<String>,
    /// Scenario directory whose success must not drop (the shipped scenarios).
    #[serde(default = "shipped_dir")]
    pub shipped: String,
    /// The night's time budget, s.
    #[serde(default = "night_budget")]
    pub night_max_s: f64,
}

fn shipped_dir() -> String {
    "scenarios".into()
}
fn night_budget() -> f64 {
    120.0
}

/// Errors of a day (each one line naming the file or the moment).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DayError {
    /// The day file.
    #[error("day {path}: {message}")]
    File {
        /// File.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A teaching step cannot be carried out.
    #[error("{scene}, teaching step {step} (\"{say}\"): {message}")]
    Teach {
        /// Scenario.
        scene: String,
        /// 1-based step.
        step: usize,
        /// Utterance.
        say: String,
        /// Why.
        message: String,
    },
    /// Scenario problem.
    #[error(transparent)]
    Scenario(#[from] scenario::ScenarioError),
    /// Simulation problem.
    #[error(transparent)]
    Sim(#[from] crate::experiment::episode::SimError),
    /// Model problem.
    #[error(transparent)]
    Region(#[from] crate::regions::RegionError),
    /// The night.
    #[error(transparent)]
    Night(#[from] sleep::NightError),
    /// The state file.
    #[error(transparent)]
    State(#[from] sleep::StateError),
    /// The shipped connector.
    #[error(transparent)]
    Connector(#[from] crate::grounding::ConnectorError),
}

/// Options of `brainloop day`.
#[derive(Debug, Clone)]
pub struct DayOptions {
    /// The day file.
    pub day: PathBuf,
    /// Where to save the learned state.
    pub state: PathBuf,
    /// Start from this state (a previous night's) instead of the shipped connector.
    pub from: Option<PathBuf>,
    /// Measure before and after.
    pub eval: bool,
    /// Seeds per scenario when measuring.
    pub episodes: usize,
    /// Vision threads.
    pub threads: usize,
    /// Episodes run side by side when measuring.
    pub workers: usize,
}

/// What `brainloop day --eval` prints.
#[derive(Debug, Clone, Serialize)]
pub struct DayResult {
    /// The day file.
    pub day: String,
    /// Concepts the night added.
    pub concepts: Vec<String>,
    /// Words it learned.
    pub words: Vec<String>,
    /// Showings per taught concept.
    pub showings: Vec<(String, usize)>,
    /// Success on the day's test scenarios before the night (None without `--eval`).
    pub before: Option<f64>,
    /// After.
    pub after: Option<f64>,
    /// Success on the shipped scenarios before.
    pub shipped_before: Option<f64>,
    /// After.
    pub shipped_after: Option<f64>,
    /// Seeds per scenario.
    pub episodes: usize,
    /// The night's wall-clock seconds.
    pub night_s: f64,
    /// Teaching (views and vision) seconds.
    pub teach_s: f64,
    /// Where the state went, and its sha256.
    pub state: String,
    /// sha256 of the state file.
    pub sha256: String,
    /// The night's training report.
    pub report: sleep::NightReport,
    /// Per test scenario: before / after success.
    pub per_test: Vec<(String, f64, f64)>,
}

fn resolve(base: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Load a day file and its scenarios.
pub fn load_day(path: &Path) -> Result<(DayFile, Vec<Scenario>, Vec<Scenario>), DayError> {
    let err = |message: String| DayError::File {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let day: DayFile =
        toml::from_str(&text).map_err(|e| err(e.to_string().trim().replace('\n', " ")))?;
    if day.teach.is_empty() {
        return Err(err("teach: name at least one teaching scene".into()));
    }
    if day.test.is_empty() {
        return Err(err(
            "test: name at least one scenario that tests the day".into()
        ));
    }
    if !(day.night_max_s.is_finite() && (1.0..=3600.0).contains(&day.night_max_s)) {
        return Err(err("night_max_s: must be within 1..=3600".into()));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let teach = day
        .teach
        .iter()
        .map(|t| Scenario::load(&resolve(base, t)))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(s) = teach.iter().find(|s| s.teach.is_empty()) {
        return Err(err(format!(
            "teaching scene {} has no [[teach]] steps",
            s.name
        )));
    }
    let test = day
        .test
        .iter()
        .map(|t| Scenario::load(&resolve(base, t)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((day, teach, test))
}

/// Distances (m, robot centre to object centre) of the views on the way up to an object.
const APPROACH: [f64; 12] = [
    1.8, 1.4, 1.1, 0.9, 0.75, 0.6, 0.5, 0.45, 1.6, 1.0, 0.8, 0.55,
];

/// Views of each teaching step's room turned away from the thing (distillation only).
const ELSEWHERE_VIEWS: usize = 4;

/// The forward range reading of the robot at `(x, y, yaw)`, from its range site.
fn range_ahead(params: &RobotParams, layout: &Layout, x: f64, y: f64, yaw: f64, da: f64) -> f64 {
    let site = params.chassis_length / 2.0 + 0.005;
    let (s, c) = yaw.sin_cos();
    crate::sim::raycast::cast(
        layout,
        x + site * c,
        y + site * s,
        yaw + da,
        params.range_max,
    ) + site
}

/// Which cells a thing straight ahead at `dist` m (from the robot's centre) covers: the cells
/// whose block is mostly inside the projected core of an object of this world (0.05 m each side,
/// 0.02..0.13 m up), and the cells well clear of a generous box around it.
fn cells_ahead(params: &RobotParams, dist: f64) -> (Vec<usize>, Vec<usize>) {
    let grid = crate::regions::vision::GRID;
    let (w, h) = (params.camera_width as f64, params.camera_height as f64);
    let fovy = params.camera_fovy_deg.to_radians();
    let fy = (h / 2.0) / (fovy / 2.0).tan();
    let fx = fy; // square pixels
    let cam_h = params.wheel_radius + params.camera_z;
    let (sp, cp) = params.camera_pitch.sin_cos();
    let f = dist - params.camera_x;
    let project = |lat: f64, z: f64| {
        let dz = z - cam_h;
        let depth = f * cp - dz * sp;
        let up = f * sp + dz * cp;
        (w / 2.0 - lat / depth * fx, h / 2.0 - up / depth * fy)
    };
    let bbox = |half: f64, z0: f64, z1: f64| {
        let (xl, yt) = project(half, z1);
        let (xr, yb) = project(-half, z0);
        let (_, yt2) = project(-half, z1);
        let (_, yb2) = project(half, z0);
        (xl, xr, yt.min(yt2), yb.max(yb2))
    };
    let core = bbox(0.05, 0.02, 0.13);
    let wide = bbox(0.2, -0.05, 0.4);
    let (cw, ch) = (w / grid as f64, h / grid as f64);
    let overlap = |b: (f64, f64, f64, f64), r: usize, c: usize| {
        let (x0, x1) = (c as f64 * cw, (c + 1) as f64 * cw);
        let (y0, y1) = (r as f64 * ch, (r + 1) as f64 * ch);
        let ox = (x1.min(b.1) - x0.max(b.0)).max(0.0);
        let oy = (y1.min(b.3) - y0.max(b.2)).max(0.0);
        ox * oy / (cw * ch)
    };
    let mut pos = Vec::new();
    let mut neg = Vec::new();
    for r in 0..grid {
        for c in 0..grid {
            let cell = r * grid + c;
            if overlap(core, r, c) >= 0.45 {
                pos.push(cell);
            } else if overlap(wide, r, c) == 0.0 {
                neg.push(cell);
            }
        }
    }
    if pos.is_empty() {
        // Far away: the one cell with the most of the core.
        let mut best = (0usize, 0.0f64);
        for r in 0..grid {
            for c in 0..grid {
                let o = overlap(core, r, c);
                if o > best.1 {
                    best = (r * grid + c, o);
                }
            }
        }
        if best.1 > 0.15 {
            pos.push(best.0);
            neg.retain(|&c| c != best.0);
        }
    }
    (pos, neg)
}

/// The vision region's spatial tokens (`GRID`² cells of `dim`) seen by the camera with the robot
/// placed at `pose` (x, y, yaw) in `body`'s room.
fn view_at(
    body: &mut MujocoBody,
    camera: &mut SimCamera,
    vision: &mut VisionModel,
    dim: usize,
    (x, y, yaw): (f64, f64, f64),
    fail: &dyn Fn(String) -> DayError,
) -> Result<Vec<f32>, DayError> {
    crate::training::align::place(body, x, y, yaw, 0.0).map_err(|e| fail(e.to_string()))?;
    let rgb = camera
        .render_rgb(body)
        .map_err(|e| fail(format!("camera: {e}")))?;
    vision.run_frame(&Frame {
        width: rgb.width,
        height: rgb.height,
        stamp_ns: 0,
        data: rgb.data,
    })?;
    Ok(vision.spatial[..crate::regions::vision::GRID.pow(2) * dim].to_vec())
}

/// Carry out one scene's teaching steps: the moments they leave in the day's memory.
pub fn teach_scene(
    params: &RobotParams,
    scene: &Scenario,
    vision: &mut VisionModel,
) -> Result<Vec<Moment>, DayError> {
    let mut moments = Vec::new();
    for (i, step) in scene.teach.iter().enumerate() {
        let fail = |message: String| DayError::Teach {
            scene: scene.name.clone(),
            step: i + 1,
            say: step.say.clone(),
            message,
        };
        let seed = step.seed.unwrap_or(scene.seed);
        // A new word is taught by words alone: no drive, no views.
        if matches!(
            sleep::utterance::parse(&step.say),
            Ok(sleep::utterance::Teaching::Synonym { .. })
        ) {
            moments.push(Moment {
                utterance: step.say.clone(),
                scene: format!("{}#{seed}", scene.name),
                pose: [0.0; 3],
                target: [f64::NAN; 2],
                views: Vec::new(),
            });
            continue;
        }
        let layout = scene.layout(seed)?;
        // Where the planner drives: the named object (privileged: the planner's map).
        let goal = match &step.object {
            None => Some(*layout.goal()),
            Some(o) => {
                let kind = ObjectKind::parse(o)
                    .ok_or_else(|| fail(format!("`{o}` is not `<colour> <shape>`")))?;
                let found = layout.objects.iter().find(|x| x.kind() == kind).copied();
                if found.is_none() {
                    return Err(fail(format!("there is no {o} in this scene to drive to")));
                }
                found
            }
        };
        let mut poses: Vec<(f64, f64, f64)> = Vec::new();
        let half = layout.size_m / 2.0;
        if step.drive {
            let g = goal.ok_or_else(|| fail("nothing to drive to".into()))?;
            let base = (layout.start.1 - g.y).atan2(layout.start.0 - g.x);
            'views: for (v, &d) in APPROACH.iter().enumerate().take(step.views) {
                // Come from the start's side, a little around it for other backgrounds.
                for k in 0..16 {
                    let off = [
                        0.0, 0.35, -0.35, 0.7, -0.7, 1.05, -1.05, 1.4, -1.4, 1.75, -1.75, 2.1,
                        -2.1, 2.45, -2.45, 3.0,
                    ][k] + 0.12 * (v as f64 - 3.0);
                    let phi = base + off;
                    let (x, y) = (g.x + d * phi.cos(), g.y + d * phi.sin());
                    let yaw = phi + std::f64::consts::PI;
                    let inside = x.abs() < half - ROBOT_RADIUS && y.abs() < half - ROBOT_RADIUS;
                    let clear = layout
                        .objects
                        .iter()
                        .filter(|o| (o.x - g.x).hypot(o.y - g.y) > 1e-6)
                        .all(|o| (o.x - x).hypot(o.y - y) > ROBOT_RADIUS + o.shape.radius() + 0.03)
                        && layout
                            .boxes
                            .iter()
                            .all(|b| b.distance(x, y) > ROBOT_RADIUS + 0.03);
                    // The object must be what the range ray ahead hits.
                    if inside
                        && clear
                        && (range_ahead(params, &layout, x, y, yaw, 0.0) - (d - g.shape.radius()))
                            .abs()
                            < 0.05
                    {
                        poses.push((x, y, yaw));
                        continue 'views;
                    }
                }
            }
            if poses.is_empty() {
                return Err(fail("the planner found no clear view of the object".into()));
            }
        } else {
            poses.push(layout.start);
        }
        let mut body = MujocoBody::new(params.clone(), &layout)
            .map_err(|e| fail(format!("simulator: {e}")))?;
        let mut camera = SimCamera::new(&body, params.camera_width, params.camera_height)
            .map_err(|e| fail(format!("camera: {e}")))?;
        let dim = crate::regions::vision::SPATIAL_DIM;
        let mut views = Vec::new();
        let mut target = [0.0, 0.0];
        let mut last_pose = [0.0; 3];
        for &(x, y, yaw) in &poses {
            // What the robot senses: a thing ahead (the forward ray is short and its
            // neighbours 15 degrees off are longer), at the range the ray reads.
            let ahead = range_ahead(params, &layout, x, y, yaw, 0.0);
            let step_deg = params.range_fov_deg / (params.range_rays.max(2) - 1) as f64;
            let side = |s: f64| range_ahead(params, &layout, x, y, yaw, s * step_deg.to_radians());
            let small = side(1.0) > ahead + 0.15 && side(-1.0) > ahead + 0.15;
            if ahead > 2.0 || !small {
                if step.drive {
                    continue;
                }
                return Err(fail(format!(
                    "no object in view: the range ahead reads {ahead:.2} m ({}); drive up to the thing first",
                    if ahead > 2.0 { "nothing near" } else { "a wall or something wide, not an object" }
                )));
            }
            // Centre of the thing: the ray's hit plus a nominal object radius.
            let dist = ahead + 0.07;
            let (pos, neg) = cells_ahead(params, dist);
            if pos.is_empty() {
                continue;
            }
            let spatial = view_at(&mut body, &mut camera, vision, dim, (x, y, yaw), &fail)?;
            views.push(View {
                spatial,
                positive: pos,
                negative: neg,
            });
            target = [x + dist * yaw.cos(), y + dist * yaw.sin()];
            last_pose = [x, y, yaw];
        }
        if views.is_empty() {
            return Err(fail("no object in view from any pose on the way".into()));
        }
        // The rest of the day in that room: views turned away from the thing (it is behind the
        // robot, so none of their cells is it), some of them close to a wall. Their cells keep
        // what the robot already made of them.
        let mut rng = crate::util::SplitMix::new(seed ^ 0xD41);
        let mut extra = 0;
        for _ in 0..400 {
            if extra >= ELSEWHERE_VIEWS {
                break;
            }
            let near_wall = extra % 2 == 0;
            let (x, y, yaw) = if near_wall {
                // Facing one of the four walls from 0.3..0.7 m.
                let side = rng.below(4);
                let along = rng.range(-half + 0.4, half - 0.4);
                let d = rng.range(0.3, 0.7);
                let yaw = side as f64 * std::f64::consts::FRAC_PI_2 + rng.range(-0.4, 0.4);
                match side {
                    0 => (half - d, along, yaw),
                    1 => (along, half - d, yaw),
                    2 => (-half + d, along, yaw),
                    _ => (along, -half + d, yaw),
                }
            } else {
                (
                    rng.range(-half + 0.3, half - 0.3),
                    rng.range(-half + 0.3, half - 0.3),
                    rng.range(-std::f64::consts::PI, std::f64::consts::PI),
                )
            };
            let to_t = (target[1] - y).atan2(target[0] - x);
            let off = (to_t - yaw + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU)
                - std::f64::consts::PI;
            let inside = x.abs() < half - ROBOT_RADIUS && y.abs() < half - ROBOT_RADIUS;
            if !inside || off.abs() < 1.9 || layout.clearance(x, y) < ROBOT_RADIUS + 0.05 {
                continue;
            }
            let spatial = view_at(&mut body, &mut camera, vision, dim, (x, y, yaw), &fail)?;
            let cells = crate::regions::vision::GRID.pow(2);
            views.push(View {
                spatial,
                positive: Vec::new(),
                negative: (0..cells).collect(),
            });
            extra += 1;
        }
        moments.push(Moment {
            utterance: step.say.clone(),
            scene: format!("{}#{seed}", scene.name),
            pose: last_pose,
            target,
            views,
        });
    }
    Ok(moments)
}

/// Success over a set of scenarios: overall and per scenario.
#[derive(Debug, Clone)]
struct SetResult {
    overall: f64,
    episodes: usize,
    per: std::collections::BTreeMap<String, f64>,
}

/// Every scenario of `set` over `episodes` seeds (scenario seed + k, as `eval`), the episodes
/// spread over `workers` threads (lockstep episodes are pure functions of their inputs, so the
/// result does not depend on the split).
fn eval_set(
    config: &Config,
    params: &RobotParams,
    set: &[Scenario],
    episodes: usize,
    opts: &EpisodeOptions,
    workers: usize,
) -> Result<SetResult, DayError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let jobs: Vec<(usize, u64)> = set
        .iter()
        .enumerate()
        .flat_map(|(i, s)| (0..episodes).map(move |k| (i, s.seed.wrapping_add(k as u64))))
        .collect();
    let next = AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<Result<bool, String>>>> =
        std::sync::Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|sc| {
        for _ in 0..workers.clamp(1, 8) {
            sc.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(i, seed)) = jobs.get(j) else {
                    break;
                };
                let o = EpisodeOptions {
                    seed: Some(seed),
                    report_dir: None,
                    ..opts.clone()
                };
                let r = crate::experiment::episode::run_episode(
                    config,
                    params,
                    &set[i],
                    &o,
                    &mut |_| {},
                )
                .map(|s| s.success)
                .map_err(|e| e.to_string());
                if let Ok(mut v) = results.lock() {
                    v[j] = Some(r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    let mut per: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut wins = 0usize;
    for (j, r) in results.into_iter().enumerate() {
        let ok = match r {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                return Err(DayError::File {
                    path: set[jobs[j].0].name.clone(),
                    message: e,
                })
            }
            None => false,
        };
        let e = per.entry(set[jobs[j].0].name.clone()).or_default();
        e.0 += ok as usize;
        e.1 += 1;
        wins += ok as usize;
    }
    Ok(SetResult {
        overall: wins as f64 / jobs.len().max(1) as f64,
        episodes: jobs.len(),
        per: per
            .into_iter()
            .map(|(k, (w, n))| (k, w as f64 / n.max(1) as f64))
            .collect(),
    })
}

/// Run a day: teach, sleep, save; with `eval`, measure before and after.
pub fn run_day(
    config: &Config,
    params: &RobotParams,
    opts: &DayOptions,
    base: &EpisodeOptions,
    log: &mut dyn FnMut(&str),
) -> Result<DayResult, DayError> {
    let (day, scenes, tests) = load_day(&opts.day)?;
    let start = match &opts.from {
        Some(p) => BrainState::load(p)?,
        None => BrainState::shipped()?,
    };
    let shipped = if opts.eval {
        Some(scenario::load_dir(Path::new(&day.shipped))?)
    } else {
        None
    };
    let eval = |conn: &Arc<crate::grounding::AlignConnector>,
                set: &[Scenario],
                log: &mut dyn FnMut(&str),
                what: &str|
     -> Result<SetResult, DayError> {
        if opts.episodes == 0 {
            return Err(DayError::File {
                path: opts.day.display().to_string(),
                message: "--episodes must be at least 1".into(),
            });
        }
        let o = EpisodeOptions {
            connector: Some(conn.clone()),
            ..base.clone()
        };
        let t = Instant::now();
        let r = eval_set(config, params, set, opts.episodes, &o, opts.workers)?;
        log(&format!(
            "day: {what}: success {:.1} % over {} episodes ({:.0} s)",
            100.0 * r.overall,
            r.episodes,
            t.elapsed().as_secs_f64()
        ));
        Ok(r)
    };
    let before_conn = Arc::new(start.connector.clone());
    let mut before = None;
    if opts.eval {
        before = Some(eval(
            &before_conn,
            &tests,
            log,
            "before the night, the day's tests",
        )?);
    }
    // Teaching.
    let t_teach = Instant::now();
    let mut vision = VisionModel::load("vision", opts.threads.max(1))?;
    let mut moments = Vec::new();
    for s in &scenes {
        let m = teach_scene(params, s, &mut vision)?;
        log(&format!(
            "day: {}: {} teaching moment(s), {} view(s)",
            s.name,
            m.len(),
            m.iter().map(|m| m.views.len()).sum::<usize>()
        ));
        moments.extend(m);
    }
    drop(vision);
    let teach_s = t_teach.elapsed().as_secs_f64();
    // Night.
    let t_night = Instant::now();
    let mut lang = LanguageModel::load("language", 1)?;
    let cfg = NightConfig {
        max_seconds: day.night_max_s,
        ..NightConfig::default()
    };
    let (learned, report) = sleep::sleep_on(&start, &moments, &mut lang, &cfg)?;
    let night_s = t_night.elapsed().as_secs_f64();
    let sha256 = learned.save(&opts.state)?;
    log(&format!(
        "day: night of {night_s:.1} s learned {} (state {} sha256 {sha256})",
        if report.new_concepts.is_empty() {
            "no new concept".to_string()
        } else {
            report.new_concepts.join(", ")
        },
        opts.state.display()
    ));
    // The morning: load what was saved (the same checks as `--state`).
    let morning = BrainState::load(&opts.state)?;
    let after_conn = Arc::new(morning.connector);
    let (mut after, mut sb, mut sa) = (None, None, None);
    let mut per_test = Vec::new();
    if opts.eval {
        let a = eval(&after_conn, &tests, log, "after the night, the day's tests")?;
        if let Some(b) = &before {
            for (name, s) in &b.per {
                let x = a.per.get(name).copied().unwrap_or(0.0);
                per_test.push((name.clone(), *s, x));
            }
        }
        after = Some(a.overall);
        if let Some(sh) = &shipped {
            sb = Some(eval(&before_conn, sh, log, "before the night, shipped")?.overall);
            sa = Some(eval(&after_conn, sh, log, "after the night, shipped")?.overall);
        }
    }
    Ok(DayResult {
        day: opts.day.display().to_string(),
        concepts: report.new_concepts.clone(),
        words: report.new_words.clone(),
        showings: report.showings.clone(),
        before: before.as_ref().map(|b| b.overall),
        after,
        shipped_before: sb,
        shipped_after: sa,
        episodes: opts.episodes,
        night_s,
        teach_s,
        state: opts.state.display().to_string(),
        sha256,
        report,
        per_test,
    })
}
