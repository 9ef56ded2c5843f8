//! `brainloop align`: learn the vision-language alignment connector from the simulator.
//!
//! 1. **Labelled views.** Random arenas (layouts from a seed: walls, obstacles, coloured balls,
//!    cubes and cylinders) are built in MuJoCo; the robot is placed at many poses (near and far
//!    from objects, objects centred or off to a side, slight camera tilt), the camera renders RGB
//!    and segmentation, and the RGB is re-lit (gain, white balance, gamma, noise). The vision
//!    region's model gives the 7x7x1504 spatial map; segmentation labels each cell with the
//!    object (or floor / wall / obstacle / empty background) that covers it.
//! 2. **Descriptions.** Each concept gets several phrasings (colour and shape words, synonyms),
//!    embedded by the language region's model; their normalised mean is the concept prototype.
//! 3. **Fit.** Closed-form ridge regression from cell features to prototypes, the penalty and the
//!    token temperature chosen on held-out arenas; the instruction temperature and the
//!    "meaningless instruction" threshold calibrated on generic instruction templates.
//! 4. **Held-out test.** Arenas never used in fitting: top-1 retrieval of the right description
//!    among all object descriptions, for training phrasings and, if given, for a paraphrase set
//!    kept apart from training.
//!
//! Ground truth (segmentation, object kinds) is used here only, to make training data and score it.

use crate::body::RobotParams;
use crate::grounding::connector::{self, dot, normalize, AlignConnector, CellSamples, Concept};
use crate::grounding::instruction;
use crate::regions::language::LanguageModel;
use crate::regions::vision::VisionModel;
use crate::regions::Frame;
use crate::sim::camera::SimCamera;
use crate::sim::mjcf::OBSTACLE_PREFIX;
use crate::sim::mujoco::MujocoBody;
use crate::sim::scenario::{
    ArenaSpec, Colour, GoalSpec, Layout, Rng, Scenario, Shape, ROBOT_RADIUS,
};
use mujoco_rs::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Errors of the alignment pipeline (each one line saying what failed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlignError {
    /// A model could not be loaded or run.
    #[error(transparent)]
    Region(#[from] crate::regions::RegionError),
    /// The simulator failed.
    #[error("simulator: {0}")]
    Sim(String),
    /// Fitting or saving failed.
    #[error(transparent)]
    Connector(#[from] connector::ConnectorError),
    /// The paraphrase file is unusable.
    #[error("paraphrase set {path}: {message}")]
    Paraphrases {
        /// File.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Bad option.
    #[error("{0}")]
    Options(String),
    /// Writing the report failed.
    #[error("{path}: {message}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        message: String,
    },
}

/// Options of `brainloop align`.
#[derive(Debug, Clone)]
pub struct AlignOptions {
    /// Where to save the connector (`.sha256` and `.report.json` go beside it).
    pub out: PathBuf,
    /// Arenas used for fitting (a fifth of them held out to choose the penalty).
    pub layouts: usize,
    /// Arenas used only for the final held-out test.
    pub test_layouts: usize,
    /// Camera views rendered per arena.
    pub views_per_layout: usize,
    /// Seed of everything random here.
    pub seed: u64,
    /// Threads for the vision model.
    pub threads: usize,
    /// Held-out paraphrase set to report retrieval on (never used for fitting).
    pub paraphrases: Option<PathBuf>,
    /// Signed square root on the features before the linear map.
    pub sqrt_features: bool,
}

impl Default for AlignOptions {
    fn default() -> Self {
        Self {
            out: PathBuf::from(crate::grounding::DEFAULT_CONNECTOR),
            layouts: 30,
            test_layouts: 8,
            views_per_layout: 48,
            seed: 2026,
            threads: 2,
            paraphrases: None,
            sqrt_features: true,
        }
    }
}

/// A concept to learn: an object kind or a background, with its training phrasings.
#[derive(Debug, Clone)]
pub struct ConceptSpec {
    /// Name.
    pub name: String,
    /// Background?
    pub background: bool,
    /// Training phrasings.
    pub descriptions: Vec<String>,
}

fn shape_words(s: Shape) -> &'static [&'static str] {
    match s {
        Shape::Ball => &["ball", "sphere"],
        Shape::Cube => &["cube", "box", "block"],
        Shape::Cylinder => &["cylinder", "cylindrical post"],
        Shape::Capsule => &["capsule", "pill shape"],
    }
}

/// Index of an object kind's concept (colours x shapes, then the backgrounds).
pub fn object_concept(c: Colour, s: Shape) -> usize {
    let ci = Colour::ALL.iter().position(|&x| x == c).unwrap_or(0);
    let si = Shape::ALL.iter().position(|&x| x == s).unwrap_or(0);
    ci * Shape::ALL.len() + si
}

const FLOOR: usize = 18;
const WALL: usize = 19;
const OBSTACLE: usize = 20;
const EMPTY: usize = 21;

/// The concepts and their training phrasings.
pub fn concept_specs() -> Vec<ConceptSpec> {
    let mut v = Vec::new();
    for c in Colour::ALL {
        for s in Shape::ALL {
            let mut d = Vec::new();
            for w in shape_words(s) {
                let c = c.name();
                d.push(format!("{c} {w}"));
                d.push(format!("a {c} {w}"));
                d.push(format!("the {c} {w}"));
                d.push(format!("a {w} that is {c}"));
                d.push(format!("a {c} coloured {w}"));
            }
            v.push(ConceptSpec {
                name: format!("{} {}", c.name(), s.name()),
                background: false,
                descriptions: d,
            });
        }
    }
    let bg = |name: &str, d: &[&str]| ConceptSpec {
        name: name.into(),
        background: true,
        descriptions: d.iter().map(|s| s.to_string()).collect(),
    };
    v.push(bg(
        "floor",
        &[
            "the floor",
            "the ground",
            "a grey floor",
            "the floor surface",
        ],
    ));
    v.push(bg(
        "wall",
        &[
            "a wall",
            "the arena wall",
            "a pale wall",
            "the boundary wall",
        ],
    ));
    v.push(bg(
        "obstacle",
        &["an obstacle", "a dark grey obstacle", "a grey barrier"],
    ));
    v.push(bg(
        "empty",
        &["empty background", "nothing", "empty dark space"],
    ));
    debug_assert_eq!(v.len(), EMPTY + 1);
    v
}

/// Generic instruction templates for calibrating the instruction side (training-side wording;
/// the held-out paraphrase set is separate).
const CALIBRATION_TEMPLATES: [&str; 3] = ["go to the {}", "find the {}", "drive to the {}"];

/// The held-out paraphrase set (`tests/fixtures/grounding/paraphrases.toml`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ParaphraseSet {
    /// Instructions naming an object kind, phrased unlike the training descriptions.
    #[serde(default)]
    pub instruction: Vec<ParaphraseItem>,
    /// Instructions that name nothing the robot can see.
    #[serde(default)]
    pub meaningless: Vec<String>,
}

/// One held-out phrasing.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ParaphraseItem {
    /// The instruction.
    pub text: String,
    /// The object kind it names, "colour shape".
    pub object: String,
}

impl ParaphraseSet {
    /// Read and check a paraphrase file.
    pub fn load(path: &Path) -> Result<Self, AlignError> {
        let err = |message: String| AlignError::Paraphrases {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let set: ParaphraseSet = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        for p in &set.instruction {
            if crate::world::ObjectKind::parse(&p.object).is_none() {
                return Err(err(format!("`{}` is not `<colour> <shape>`", p.object)));
            }
        }
        Ok(set)
    }
}

/// What `brainloop align` measured (saved as the training report).
#[derive(Debug, Clone, Serialize)]
pub struct AlignReport {
    /// Connector file and its sha256.
    pub connector: String,
    /// sha256 of the connector file.
    pub sha256: String,
    /// Options.
    pub layouts: usize,
    /// Held-out test arenas.
    pub test_layouts: usize,
    /// Views per arena.
    pub views_per_layout: usize,
    /// Seed.
    pub seed: u64,
    /// Labelled cells used for fitting.
    pub fit_cells: usize,
    /// Labelled cells in the held-out test arenas.
    pub test_cells: usize,
    /// Concepts (names) in bank order.
    pub concepts: Vec<String>,
    /// Fit details (penalty search, temperature).
    pub fit: connector::FitReport,
    /// Held-out: top-1 concept of each labelled cell (objects and backgrounds).
    pub test_cell_accuracy: f64,
    /// Held-out: top-1 concept of object cells only.
    pub test_object_cell_accuracy: f64,
    /// Held-out: for a view of object X, the right description ranks first among all object
    /// descriptions (training phrasings).
    pub test_retrieval_top1: f64,
    /// Same, top-3.
    pub test_retrieval_top3: f64,
    /// Object views scored.
    pub test_object_views: usize,
    /// Same retrieval against the held-out paraphrase set, if given.
    pub paraphrase_retrieval_top1: Option<f64>,
    /// Paraphrase instructions whose posterior's best concept is the named one.
    pub paraphrase_instruction_accuracy: Option<f64>,
    /// Meaningless paraphrase-set sentences correctly refused.
    pub paraphrase_meaningless_refused: Option<f64>,
    /// Chance level of the retrieval (1 / object kinds).
    pub chance: f64,
    /// Calibrated instruction temperature and meaningfulness threshold.
    pub tau_query: f32,
    /// Threshold on the raw cosine to the nearest object prototype.
    pub min_query_similarity: f32,
    /// Wall-clock seconds: data, fit, total.
    pub seconds_data: f64,
    /// Fit seconds.
    pub seconds_fit: f64,
    /// Total seconds.
    pub seconds_total: f64,
}

/// One labelled object appearance in a view (for view-level retrieval).
struct ObjectView {
    concept: usize,
    rows: Vec<usize>,
}

struct Data {
    samples: CellSamples,
    objects: Vec<ObjectView>,
}

fn random_layout(rng: &mut Rng, seed: u64) -> Option<Layout> {
    let colour = Colour::ALL[rng.below(Colour::ALL.len())];
    let shape = Shape::ALL[rng.below(Shape::ALL.len())];
    let size = rng.range(3.0, 5.0);
    let distractors = 4 + rng.below(7);
    let s = Scenario {
        name: "align".into(),
        description: String::new(),
        difficulty: 1,
        instruction: "align".into(),
        seed,
        time_limit_s: 60.0,
        goal: GoalSpec {
            object: format!("{} {}", colour.name(), shape.name()),
            within_m: 0.5,
        },
        arena: ArenaSpec {
            size_m: size,
            obstacles: rng.below(5),
            distractors,
            same_colour_distractors: rng.below(3).min(distractors),
            min_goal_distance_m: 0.5,
            ..ArenaSpec::default()
        },
        steps: Vec::new(),
        teach: Vec::new(),
    };
    s.layout(seed).ok()
}

/// Per-geom label: concept index, `-1` empty, `-2` ignore (the robot itself).
fn geom_labels(body: &MujocoBody, layout: &Layout) -> Vec<i32> {
    let model = body.model();
    let ngeom = model.ffi().ngeom as usize;
    (0..ngeom)
        .map(|g| {
            if let Some(i) = body.object_of_geom(g) {
                let o = &layout.objects[i];
                return object_concept(o.colour, o.shape) as i32;
            }
            match model.id_to_name(MjtObjBase::mjOBJ_GEOM, g) {
                Some("floor") => FLOOR as i32,
                Some(n) if n.starts_with(OBSTACLE_PREFIX) => {
                    let boundary = n[OBSTACLE_PREFIX.len()..]
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| layout.boxes.get(i))
                        .is_none_or(|b| b.boundary);
                    if boundary {
                        WALL as i32
                    } else {
                        OBSTACLE as i32
                    }
                }
                _ => -2,
            }
        })
        .collect()
}

/// Place the robot (free joint `root`) at `(x, y, yaw)` with a small tilt, and update kinematics.
pub(crate) fn place(
    body: &mut MujocoBody,
    x: f64,
    y: f64,
    yaw: f64,
    tilt: f64,
) -> Result<(), AlignError> {
    let model = body.model().clone();
    let j = model
        .name_to_id(MjtObjBase::mjOBJ_JOINT, "root")
        .ok_or_else(|| AlignError::Sim("the robot has no free joint `root`".into()))?;
    let adr = model.jnt_qposadr()[j] as usize;
    let data = body.data_mut();
    let q = data.qpos_mut();
    q[adr] = x;
    q[adr + 1] = y;
    // yaw about z, then a small pitch about the body y axis.
    let (sy, cy) = (yaw / 2.0).sin_cos();
    let (sp, cp) = (tilt / 2.0).sin_cos();
    q[adr + 3] = cy * cp;
    q[adr + 4] = -sy * sp;
    q[adr + 5] = cy * sp;
    q[adr + 6] = sy * cp;
    data.forward();
    Ok(())
}

/// Re-light an RGB frame: gain, white balance, gamma and a little noise.
fn relight(data: &mut [u8], rng: &mut Rng) {
    let gain = rng.range(0.65, 1.3);
    let wb = [
        rng.range(0.9, 1.1),
        rng.range(0.9, 1.1),
        rng.range(0.9, 1.1),
    ];
    let gamma = rng.range(0.8, 1.25);
    let noise = rng.range(0.0, 6.0);
    for (i, px) in data.iter_mut().enumerate() {
        let v = (*px as f64 / 255.0).powf(gamma) * 255.0 * gain * wb[i % 3];
        let n = (rng.uniform() - 0.5) * 2.0 * noise;
        *px = (v + n).round().clamp(0.0, 255.0) as u8;
    }
}

/// Render and label views of `n_layouts` arenas, appending to `data`. Group ids start at
/// `group0` (one group per arena).
#[allow(clippy::too_many_arguments)]
fn collect(
    params: &RobotParams,
    vision: &mut VisionModel,
    rng: &mut Rng,
    n_layouts: usize,
    views: usize,
    group0: u32,
    data: &mut Data,
    log: &mut dyn FnMut(&str),
) -> Result<(), AlignError> {
    let (w, h) = (params.camera_width as usize, params.camera_height as usize);
    let grid = crate::regions::vision::GRID;
    let dim = crate::regions::vision::SPATIAL_DIM;
    let mut made = 0usize;
    let mut attempts = 0u64;
    while made < n_layouts {
        attempts += 1;
        if attempts > n_layouts as u64 * 20 + 20 {
            return Err(AlignError::Sim("could not lay out arenas".into()));
        }
        let seed = rng.next_u64() % 1_000_000_007;
        let Some(layout) = random_layout(rng, seed) else {
            continue;
        };
        let group = group0 + made as u32;
        made += 1;
        let mut body =
            MujocoBody::new(params.clone(), &layout).map_err(|e| AlignError::Sim(e.to_string()))?;
        let mut camera = SimCamera::new(&body, w as u32, h as u32)
            .map_err(|e| AlignError::Sim(e.to_string()))?;
        let labels = geom_labels(&body, &layout);
        let half = layout.size_m / 2.0;
        let z0 = body.data_mut().qpos()[2];
        let _ = z0;
        for v in 0..views {
            // A pose: mostly looking at some object from some distance, sometimes anywhere.
            let mut pose = None;
            for _ in 0..40 {
                let (x, y, yaw) = if v % 4 != 3 && !layout.objects.is_empty() {
                    let o = &layout.objects[rng.below(layout.objects.len())];
                    let d = 0.3 + 0.105 + o.shape.radius() * 0.5 + rng.uniform().powf(1.2) * 2.4;
                    let phi = rng.range(-std::f64::consts::PI, std::f64::consts::PI);
                    let x = o.x + d * phi.cos();
                    let y = o.y + d * phi.sin();
                    let off = rng.range(-0.5, 0.5);
                    (x, y, phi + std::f64::consts::PI + off)
                } else {
                    (
                        rng.range(-half, half),
                        rng.range(-half, half),
                        rng.range(-std::f64::consts::PI, std::f64::consts::PI),
                    )
                };
                let inside = x.abs() < half - ROBOT_RADIUS && y.abs() < half - ROBOT_RADIUS;
                if inside && layout.clearance(x, y) > ROBOT_RADIUS + 0.02 {
                    pose = Some((x, y, yaw));
                    break;
                }
            }
            let Some((x, y, yaw)) = pose else { continue };
            // Tilt: mostly level; sometimes pitched as the body is when it accelerates or
            // brakes hard (it rests on its rear caster, its mass behind the axle).
            let tilt = if rng.uniform() < 0.1 {
                rng.range(-0.08, 0.2)
            } else {
                rng.range(-0.03, 0.04)
            };
            place(&mut body, x, y, yaw, tilt)?;
            let rgb = camera
                .render_rgb(&mut body)
                .map_err(|e| AlignError::Sim(e.to_string()))?;
            let seg = camera
                .render_segmentation(&mut body)
                .map_err(|e| AlignError::Sim(e.to_string()))?;
            let mut pixels = rgb.data;
            relight(&mut pixels, rng);
            let frame = Frame {
                width: rgb.width,
                height: rgb.height,
                stamp_ns: 0,
                data: pixels,
            };
            vision.run_frame(&frame)?;
            // Label cells from segmentation (the camera frame is square and maps 1:1 to the
            // model input, so cell (r, c) covers that block of pixels).
            let (cw, ch) = (w / grid, h / grid);
            let k = EMPTY + 1;
            let mut cell_objects: Vec<(usize, usize)> = Vec::new();
            for r in 0..grid {
                for c in 0..grid {
                    let mut counts = vec![0usize; k];
                    let mut total = 0usize;
                    for py in r * ch..(r + 1) * ch {
                        for px in c * cw..(c + 1) * cw {
                            let g = seg.geom[py * w + px];
                            let l = if g < 0 {
                                EMPTY as i32
                            } else {
                                labels.get(g as usize).copied().unwrap_or(-2)
                            };
                            if l >= 0 {
                                counts[l as usize] += 1;
                                total += 1;
                            }
                        }
                    }
                    if total == 0 {
                        continue;
                    }
                    let (best_obj, obj_count) = (0..FLOOR)
                        .map(|i| (i, counts[i]))
                        .max_by_key(|x| x.1)
                        .unwrap_or((0, 0));
                    let frac = obj_count as f64 / total as f64;
                    let label = if frac >= 0.2 {
                        best_obj
                    } else if frac >= 0.03 {
                        continue; // ambiguous: a sliver of an object
                    } else {
                        let (b, _) = (FLOOR..k)
                            .map(|i| (i, counts[i]))
                            .max_by_key(|x| x.1)
                            .unwrap_or((FLOOR, 0));
                        // Background cells are many: keep about a third of them.
                        if rng.uniform() > 0.35 {
                            continue;
                        }
                        b
                    };
                    let cell = r * grid + c;
                    let row = data.samples.len();
                    data.samples.push(
                        &vision.spatial[cell * dim..(cell + 1) * dim],
                        label as u32,
                        group,
                    );
                    if label < FLOOR {
                        cell_objects.push((label, row));
                    }
                }
            }
            cell_objects.sort();
            let mut i = 0;
            while i < cell_objects.len() {
                let concept = cell_objects[i].0;
                let mut rows = Vec::new();
                while i < cell_objects.len() && cell_objects[i].0 == concept {
                    rows.push(cell_objects[i].1);
                    i += 1;
                }
                data.objects.push(ObjectView { concept, rows });
            }
        }
        log(&format!(
            "align: arena {}/{} done ({} labelled cells so far)",
            made,
            n_layouts,
            data.samples.len()
        ));
    }
    Ok(())
}

fn embed_all(lang: &mut LanguageModel, texts: &[String]) -> Result<Vec<Vec<f32>>, AlignError> {
    texts.iter().map(|t| Ok(lang.embed(t)?.to_vec())).collect()
}

fn prototype(embs: &[Vec<f32>]) -> Vec<f32> {
    let d = embs.first().map_or(0, |e| e.len());
    let mut p = vec![0.0f32; d];
    for e in embs {
        for (a, b) in p.iter_mut().zip(e) {
            *a += b;
        }
    }
    normalize(&mut p);
    p
}

/// Top-k retrieval of the right description among `descs` (concept, embedding) for each object
/// view: the view's token is the mean projected token over its cells.
fn retrieval(c: &AlignConnector, data: &Data, descs: &[(usize, Vec<f32>)], k: usize) -> f64 {
    if data.objects.is_empty() || descs.is_empty() {
        return 0.0;
    }
    let out = c.out_dim();
    let mut z = vec![0.0f32; out];
    let mut mean = vec![0.0f32; out];
    let centre = text_centre(c);
    let keys: Vec<(usize, Vec<f32>)> = descs
        .iter()
        .map(|(k, e)| {
            let mut v: Vec<f32> = e.iter().zip(&centre).map(|(a, m)| a - m).collect();
            normalize(&mut v);
            (*k, v)
        })
        .collect();
    let mut hits = 0usize;
    for ov in &data.objects {
        mean.iter_mut().for_each(|x| *x = 0.0);
        for &r in &ov.rows {
            c.project_token(data.samples.row(r), &mut z);
            for (m, v) in mean.iter_mut().zip(&z) {
                *m += v;
            }
        }
        let mut q: Vec<f32> = mean
            .iter()
            .zip(&centre)
            .map(|(a, m)| a / ov.rows.len() as f32 - m)
            .collect();
        normalize(&mut q);
        let mut scored: Vec<(f32, usize)> = keys.iter().map(|(k, e)| (dot(&q, e), *k)).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        // Top-k distinct concepts.
        let mut seen = Vec::new();
        for (_, kk) in scored {
            if !seen.contains(&kk) {
                seen.push(kk);
            }
            if seen.len() == k {
                break;
            }
        }
        if seen.contains(&ov.concept) {
            hits += 1;
        }
    }
    hits as f64 / data.objects.len() as f64
}

/// The connector's language-space centre (mean of the concept prototypes).
fn text_centre(c: &AlignConnector) -> Vec<f32> {
    let d = c.out_dim();
    let n = c.concepts().len() as f32;
    let mut m = vec![0.0f32; d];
    for k in c.concepts() {
        for (a, b) in m.iter_mut().zip(&k.prototype) {
            *a += b / n;
        }
    }
    m
}

/// The objectness threshold in use (the head's when there is one).
fn meaningful_above(c: &AlignConnector) -> f32 {
    c.instruction_head
        .as_ref()
        .map_or(c.min_query_similarity, |h| h.min_objectness)
}

/// Posterior argmax and raw similarity of instruction embeddings under a connector.
fn instruction_posterior(c: &AlignConnector, q: &[f32], tau: f32) -> (usize, f32, f32) {
    if let Some(h) = &c.instruction_head {
        let mut post = vec![0.0f32; c.concepts().len()];
        h.posterior(q, &mut post);
        let best = connector::argmax(&post).unwrap_or(0);
        return (best, post[best], h.objectness(q));
    }
    let mut sims = vec![0.0f32; c.concepts().len()];
    c.concept_similarities(q, &mut sims);
    for (s, k) in sims.iter_mut().zip(c.concepts()) {
        if k.background {
            *s = f32::NEG_INFINITY;
        }
    }
    let m = sims.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let z: f32 = sims.iter().map(|s| ((s - m) / tau).exp()).sum();
    let best = connector::argmax(&sims).unwrap_or(0);
    (best, 1.0 / z, c.max_object_similarity(q))
}

/// Run the whole pipeline: data, fit, held-out test, save. `log` gets progress lines.
pub fn run_align(
    opts: &AlignOptions,
    params: &RobotParams,
    log: &mut dyn FnMut(&str),
) -> Result<AlignReport, AlignError> {
    if opts.layouts < 2 || opts.views_per_layout == 0 || opts.test_layouts == 0 {
        return Err(AlignError::Options(
            "align needs --layouts >= 2, --views >= 1 and --test-layouts >= 1".into(),
        ));
    }
    let paraphrases = match &opts.paraphrases {
        Some(p) => Some(ParaphraseSet::load(p)?),
        None => None,
    };
    let t0 = Instant::now();
    let mut lang = LanguageModel::load("language", 1)?;
    let mut vision = VisionModel::load("vision", opts.threads.max(1))?;
    // Concepts and their prototypes.
    let specs = concept_specs();
    let mut descs: Vec<(usize, Vec<f32>)> = Vec::new();
    let mut concepts = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let e = embed_all(&mut lang, &s.descriptions)?;
        concepts.push(Concept {
            name: s.name.clone(),
            background: s.background,
            prototype: prototype(&e),
        });
        if !s.background {
            descs.extend(e.into_iter().map(|e| (i, e)));
        }
    }
    log(&format!(
        "align: {} concepts, {} object descriptions embedded",
        concepts.len(),
        descs.len()
    ));
    // Data.
    let mut rng = Rng::new(opts.seed);
    let mut train = Data {
        samples: CellSamples {
            in_dim: crate::regions::vision::SPATIAL_DIM,
            ..Default::default()
        },
        objects: Vec::new(),
    };
    collect(
        params,
        &mut vision,
        &mut rng,
        opts.layouts,
        opts.views_per_layout,
        0,
        &mut train,
        log,
    )?;
    let mut test = Data {
        samples: CellSamples {
            in_dim: crate::regions::vision::SPATIAL_DIM,
            ..Default::default()
        },
        objects: Vec::new(),
    };
    let mut test_rng = Rng::new(opts.seed ^ 0x7E57_7E57);
    collect(
        params,
        &mut vision,
        &mut test_rng,
        opts.test_layouts,
        opts.views_per_layout,
        1_000_000,
        &mut test,
        log,
    )?;
    let seconds_data = t0.elapsed().as_secs_f64();
    log(&format!(
        "align: {} fit cells, {} test cells in {:.1} s; fitting",
        train.samples.len(),
        test.samples.len(),
        seconds_data
    ));
    // Fit (a fifth of the training arenas held out for the penalty and temperature).
    let t1 = Instant::now();
    let (mut c, fit) = connector::fit(
        &train.samples,
        opts.sqrt_features,
        concepts,
        &|g| g % 5 == 4,
        &[1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0],
    )?;
    let seconds_fit = t1.elapsed().as_secs_f64();
    // Instruction side: temperature and the meaningless threshold, on generic templates.
    let mut calib: Vec<(usize, Vec<f32>)> = Vec::new();
    for (i, s) in specs.iter().enumerate().filter(|(_, s)| !s.background) {
        for t in CALIBRATION_TEMPLATES {
            calib.push((i, lang.embed(&t.replace("{}", &s.name))?.to_vec()));
        }
    }
    let off: Vec<Vec<f32>> = instruction::OFF_TOPIC
        .iter()
        .map(|t| Ok(lang.embed(t)?.to_vec()))
        .collect::<Result<_, AlignError>>()?;
    // The softest temperature that still gives the named concept >= 0.9 on average on the
    // templates (soft enough to keep near-miss paraphrases alive, sharp enough to tell a red
    // ball from a red cube).
    let mut best_tau = (0.01f32, 0.0f64);
    for tau in [0.01f32, 0.015, 0.02, 0.03, 0.04, 0.05, 0.07, 0.1] {
        let mean_p: f64 = calib
            .iter()
            .map(|(k, q)| {
                let mut sims = vec![0.0f32; c.concepts().len()];
                c.concept_similarities(q, &mut sims);
                let m = sims.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let z: f32 = sims
                    .iter()
                    .zip(c.concepts())
                    .filter(|(_, k)| !k.background)
                    .map(|(s, _)| ((s - m) / tau).exp())
                    .sum();
                (((sims[*k] - m) / tau).exp() / z) as f64
            })
            .sum::<f64>()
            / calib.len() as f64;
        if mean_p >= 0.9 {
            best_tau = (tau, mean_p);
        }
    }
    c.tau_query = best_tau.0;
    let min_on = calib
        .iter()
        .map(|(_, q)| c.max_object_similarity(q))
        .fold(f32::INFINITY, f32::min);
    let max_off = off
        .iter()
        .map(|q| c.max_object_similarity(q))
        .fold(f32::NEG_INFINITY, f32::max);
    // Lean towards accepting: held-out phrasings of real objects are further from the
    // prototypes than the calibration templates.
    c.min_query_similarity = if max_off < min_on {
        max_off + 0.35 * (min_on - max_off)
    } else {
        max_off
    };
    log(&format!(
        "align: instruction temperature {:.3}, meaningful above {:.3} (templates >= {:.3}, off-topic <= {:.3})",
        c.tau_query, c.min_query_similarity, min_on, max_off
    ));
    // Instruction head: a classifier over generated instruction sentences (training
    // vocabulary only; the paraphrase set stays held out).
    let t2 = Instant::now();
    let colour_names: Vec<&str> = Colour::ALL.iter().map(|c| c.name()).collect();
    let shape_names: Vec<&str> = Shape::ALL.iter().map(|s| s.name()).collect();
    // Its own random stream, so the sentences do not depend on how many views were drawn.
    let mut sentence_rng = Rng::new(opts.seed ^ 0x5e47_e9ce);
    let mut pick = |n: usize| sentence_rng.below(n);
    let sents = instruction::sentences(&colour_names, &shape_names, 160, &mut pick);
    let texts: Vec<String> = sents.iter().map(|s| s.text.clone()).collect();
    let labels: Vec<usize> = sents.iter().map(|s| s.output).collect();
    let sent_embs = embed_all(&mut lang, &texts)?;
    let outputs: Vec<usize> = Colour::ALL
        .iter()
        .flat_map(|&c| Shape::ALL.iter().map(move |&s| object_concept(c, s)))
        .collect();
    // "About an object": the same sentence frames naming places and other things, and
    // off-topic sentences, are not.
    let mut not_objects = embed_all(&mut lang, &instruction::not_object_sentences(8, &mut pick))?;
    not_objects.extend(off.iter().cloned());
    let (head, head_val) = instruction::fit(
        &sent_embs,
        &labels,
        shape_names.len(),
        outputs,
        &not_objects,
    )
    .map_err(AlignError::Options)?;
    log(&format!(
        "align: instruction head on {} sentences: validation accuracy {:.1} %, temperature {:.3}, about an object above score {:.3} ({:.1} s)",
        sents.len(),
        head_val * 100.0,
        head.tau,
        head.min_objectness,
        t2.elapsed().as_secs_f64()
    ));
    c.instruction_head = Some(head);
    // Held-out test.
    let all_rows: Vec<usize> = (0..test.samples.len()).collect();
    let obj_rows: Vec<usize> = all_rows
        .iter()
        .copied()
        .filter(|&r| (test.samples.labels[r] as usize) < FLOOR)
        .collect();
    let test_cell_accuracy = connector::cell_accuracy(&c, &test.samples, &all_rows);
    let test_object_cell_accuracy = connector::cell_accuracy(&c, &test.samples, &obj_rows);
    let top1 = retrieval(&c, &test, &descs, 1);
    let top3 = retrieval(&c, &test, &descs, 3);
    let (mut p_ret, mut p_instr, mut p_refuse) = (None, None, None);
    if let Some(set) = &paraphrases {
        let mut pd = Vec::new();
        let mut right = 0usize;
        for item in &set.instruction {
            let kind = crate::world::ObjectKind::parse(&item.object)
                .ok_or_else(|| AlignError::Options(item.object.clone()))?;
            let k = object_concept(kind.colour, kind.shape);
            let e = lang.embed(&item.text)?.to_vec();
            let (best, _, sim) = instruction_posterior(&c, &e, c.tau_query);
            if best == k && sim >= meaningful_above(&c) {
                right += 1;
            } else {
                log(&format!(
                    "align: paraphrase \"{}\" -> {} (similarity {sim:.3}), want {}",
                    item.text,
                    c.concepts()[best].name,
                    item.object
                ));
            }
            pd.push((k, e));
        }
        if !pd.is_empty() {
            p_ret = Some(retrieval(&c, &test, &pd, 1));
            p_instr = Some(right as f64 / pd.len() as f64);
        }
        if !set.meaningless.is_empty() {
            let mut refused = 0usize;
            for t in &set.meaningless {
                let ok = if t.trim().is_empty() {
                    true
                } else {
                    let e = lang.embed(t)?.to_vec();
                    instruction_posterior(&c, &e, c.tau_query).2 < meaningful_above(&c)
                };
                refused += ok as usize;
            }
            p_refuse = Some(refused as f64 / set.meaningless.len() as f64);
        }
    }
    let sha256 = c.save(&opts.out)?;
    let report = AlignReport {
        connector: opts.out.display().to_string(),
        sha256,
        layouts: opts.layouts,
        test_layouts: opts.test_layouts,
        views_per_layout: opts.views_per_layout,
        seed: opts.seed,
        fit_cells: train.samples.len(),
        test_cells: test.samples.len(),
        concepts: c.concepts().iter().map(|k| k.name.clone()).collect(),
        fit,
        test_cell_accuracy,
        test_object_cell_accuracy,
        test_retrieval_top1: top1,
        test_retrieval_top3: top3,
        test_object_views: test.objects.len(),
        paraphrase_retrieval_top1: p_ret,
        paraphrase_instruction_accuracy: p_instr,
        paraphrase_meaningless_refused: p_refuse,
        chance: 1.0 / FLOOR as f64,
        tau_query: c.tau_query,
        min_query_similarity: c.min_query_similarity,
        seconds_data,
        seconds_fit,
        seconds_total: t0.elapsed().as_secs_f64(),
    };
    let report_path = report_path(&opts.out);
    let json = serde_json::to_string_pretty(&report).map_err(|e| AlignError::Io {
        path: report_path.display().to_string(),
        message: e.to_string(),
    })?;
    std::fs::write(&report_path, json + "\n").map_err(|e| AlignError::Io {
        path: report_path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(report)
}

/// `<connector>.report.json`.
pub fn report_path(connector: &Path) -> PathBuf {
    let mut s = connector.as_os_str().to_owned();
    s.push(".report.json");
    PathBuf::from(s)
}

/// The lines `brainloop align` prints.
pub fn summary_text(r: &AlignReport) -> String {
    let pct = |x: f64| format!("{:.1} %", 100.0 * x);
    let mut s = format!(
        "connector: {} (sha256 {})\n\
         data: {} arenas x {} views -> {} labelled cells; held-out test: {} arenas, {} cells, {} object views\n\
         fit: ridge lambda {} (validation top-1 by lambda: {}), token temperature {}\n\
         held-out retrieval (right description ranks first among {} object kinds' descriptions): top-1 {}, top-3 {} (chance {})\n\
         held-out cell accuracy: all cells {}, object cells {}\n\
         instruction side: temperature {}, meaningful above cosine {:.3}\n",
        r.connector,
        r.sha256,
        r.layouts,
        r.views_per_layout,
        r.fit_cells,
        r.test_layouts,
        r.test_cells,
        r.test_object_views,
        r.fit.lambda,
        r.fit
            .lambda_search
            .iter()
            .map(|(l, a)| format!("{l}: {:.3}", a))
            .collect::<Vec<_>>()
            .join(", "),
        r.fit.tau_token,
        FLOOR,
        pct(r.test_retrieval_top1),
        pct(r.test_retrieval_top3),
        pct(r.chance),
        pct(r.test_cell_accuracy),
        pct(r.test_object_cell_accuracy),
        r.tau_query,
        r.min_query_similarity,
    );
    if let Some(p) = r.paraphrase_retrieval_top1 {
        s += &format!("paraphrase set (held out): retrieval top-1 {}", pct(p));
        if let Some(i) = r.paraphrase_instruction_accuracy {
            s += &format!(", instruction -> right concept {}", pct(i));
        }
        if let Some(m) = r.paraphrase_meaningless_refused {
            s += &format!(", meaningless refused {}", pct(m));
        }
        s += "\n";
    }
    s += &format!(
        "time: data {:.1} s, fit {:.1} s, total {:.1} s",
        r.seconds_data, r.seconds_fit, r.seconds_total
    );
    s
}
