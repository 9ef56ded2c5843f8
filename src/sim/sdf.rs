//! Gazebo worlds from scenario layouts: the same arena the MuJoCo model ([`super::mjcf`]) is built
//! from a [`Layout`] (ground, boundary walls, extra walls and obstacles, the coloured balls, cubes
//! and cylinders with the same sizes, poses and colours, all static as in MuJoCo, where they are
//! world geoms), written as an SDFormat 1.9 world with the systems a ROS 2 robot needs in Gazebo
//! (physics at a 1 ms step, user commands so `ros_gz_sim create` can spawn the robot, the scene
//! broadcaster, sensors rendered with ogre2, IMU) and a sun.
//!
//! SDFormat 1.9 is what Debian's libsdformat 12 reads; Gazebo Harmonic's libsdformat 14 reads it
//! too, so only elements both know are used. `brainloop scenario export` writes it and
//! `make check-gazebo` loads it with the official parser. The robot is not in the world: the
//! launch file spawns it from the URDF at [`Layout::start`].
//!
//! The XML is written by [`Xml`], a small writer that escapes every text and attribute value.

use crate::sim::scenario::{Scenario, ScenarioError};
use crate::world::{BoxObstacle, Layout, PlacedObject, Shape};
use std::path::{Path, PathBuf};

/// The SDFormat version written.
pub const SDF_VERSION: &str = "1.9";
/// Physics step, s (MuJoCo's is [`super::mjcf::TIMESTEP`]; Gazebo's DART is run finer).
pub const STEP_SIZE: f64 = 0.001;
/// The world systems every exported world loads: (plugin file, system class).
pub const WORLD_SYSTEMS: [(&str, &str); 5] = [
    ("gz-sim-physics-system", "gz::sim::systems::Physics"),
    (
        "gz-sim-user-commands-system",
        "gz::sim::systems::UserCommands",
    ),
    (
        "gz-sim-scene-broadcaster-system",
        "gz::sim::systems::SceneBroadcaster",
    ),
    ("gz-sim-sensors-system", "gz::sim::systems::Sensors"),
    ("gz-sim-imu-system", "gz::sim::systems::Imu"),
];
/// Name of the ground model.
pub const GROUND: &str = "ground_plane";
/// Friction of every surface in the MuJoCo model (its `<default><geom friction>`).
const MU: f64 = 0.9;

/// Escape text or an attribute value for XML: `& < > " '`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A small indenting XML writer. Element and attribute names come from this code; every text and
/// attribute value is escaped.
#[derive(Debug)]
pub struct Xml {
    out: String,
    open: Vec<&'static str>,
}

impl Default for Xml {
    fn default() -> Self {
        Self::new()
    }
}

impl Xml {
    /// A document with the XML declaration.
    pub fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\"?>\n"),
            open: Vec::new(),
        }
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        debug_assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "element name {name:?}"
        );
        for _ in 0..self.open.len() {
            self.out.push_str("  ");
        }
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            self.out.push_str(&escape(v));
            self.out.push('"');
        }
    }

    /// Open an element; [`Xml::close`] ends it.
    pub fn open(&mut self, name: &'static str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs);
        self.out.push_str(">\n");
        self.open.push(name);
        self
    }

    /// Close the innermost open element (nothing when none is open).
    pub fn close(&mut self) -> &mut Self {
        if let Some(name) = self.open.pop() {
            for _ in 0..self.open.len() {
                self.out.push_str("  ");
            }
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push_str(">\n");
        }
        self
    }

    /// An element holding only text.
    pub fn leaf(&mut self, name: &'static str, text: &str) -> &mut Self {
        self.leaf_with(name, &[], text)
    }

    /// An element with attributes holding only text.
    pub fn leaf_with(
        &mut self,
        name: &'static str,
        attrs: &[(&str, &str)],
        text: &str,
    ) -> &mut Self {
        self.start_tag(name, attrs);
        self.out.push('>');
        self.out.push_str(&escape(text));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
        self
    }

    /// An empty element.
    pub fn empty(&mut self, name: &'static str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs);
        self.out.push_str("/>\n");
        self
    }

    /// A comment (`--` cannot appear in one: it is written as `- -`).
    pub fn comment(&mut self, text: &str) -> &mut Self {
        for _ in 0..self.open.len() {
            self.out.push_str("  ");
        }
        let mut t = text.to_string();
        while t.contains("--") {
            t = t.replace("--", "- -");
        }
        if t.ends_with('-') {
            t.push(' ');
        }
        self.out.push_str("<!-- ");
        self.out.push_str(&t);
        self.out.push_str(" -->\n");
        self
    }

    /// Close every open element and return the document.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.out
    }
}

/// Numbers as the shortest text that reads back to the same `f64` (deterministic).
fn num(x: f64) -> String {
    // `-0` reads back fine but looks odd in a world file.
    if x == 0.0 {
        "0".into()
    } else {
        format!("{x}")
    }
}

fn nums(v: &[f64]) -> String {
    v.iter().map(|x| num(*x)).collect::<Vec<_>>().join(" ")
}

fn rgba(c: [f64; 3]) -> String {
    nums(&[c[0], c[1], c[2], 1.0])
}

/// A world name Gazebo accepts in its topic names (`/world/<name>/...`): letters, digits, `_`
/// and `-`; anything else becomes `_`.
pub fn world_name(scenario: &str) -> String {
    let s: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("brainloop_{s}")
}

/// The name of the model for box `i` of the layout (boundary walls and obstacles share the index
/// space of [`Layout::boxes`], as `obstacle:<i>` does in the MJCF).
pub fn box_model_name(i: usize, b: &BoxObstacle) -> String {
    if b.boundary {
        format!("wall_{i}")
    } else {
        format!("obstacle_{i}")
    }
}

/// The name of the model for object `i` (`object_<i>_<colour>_<shape>`, as
/// `object:<i>:<colour>_<shape>` in the MJCF).
pub fn object_model_name(i: usize, o: &PlacedObject) -> String {
    format!("object_{i}_{}_{}", o.colour.name(), o.shape.name())
}

/// Every model the world holds for `layout`, in file order: the ground, the boxes, the objects.
pub fn model_names(layout: &Layout) -> Vec<String> {
    std::iter::once(GROUND.to_string())
        .chain(
            layout
                .boxes
                .iter()
                .enumerate()
                .map(|(i, b)| box_model_name(i, b)),
        )
        .chain(
            layout
                .objects
                .iter()
                .enumerate()
                .map(|(i, o)| object_model_name(i, o)),
        )
        .collect()
}

/// A geometry: what both the collision and the visual hold.
enum Geometry {
    Plane { size: f64 },
    Box { size: [f64; 3] },
    Sphere { radius: f64 },
    Cylinder { radius: f64, length: f64 },
    Capsule { radius: f64, length: f64 },
}

impl Geometry {
    fn write(&self, x: &mut Xml) {
        x.open("geometry", &[]);
        match self {
            Geometry::Plane { size } => {
                x.open("plane", &[])
                    .leaf("normal", "0 0 1")
                    .leaf("size", &nums(&[*size, *size]))
                    .close();
            }
            Geometry::Box { size } => {
                x.open("box", &[]).leaf("size", &nums(size)).close();
            }
            Geometry::Sphere { radius } => {
                x.open("sphere", &[]).leaf("radius", &num(*radius)).close();
            }
            Geometry::Cylinder { radius, length } => {
                x.open("cylinder", &[])
                    .leaf("radius", &num(*radius))
                    .leaf("length", &num(*length))
                    .close();
            }
            Geometry::Capsule { radius, length } => {
                x.open("capsule", &[])
                    .leaf("radius", &num(*radius))
                    .leaf("length", &num(*length))
                    .close();
            }
        }
        x.close();
    }
}

/// An object's geometry and the height of its centre, as in [`super::mjcf::mjcf`].
fn object_geometry(shape: Shape) -> (Geometry, f64) {
    match shape {
        Shape::Ball => (Geometry::Sphere { radius: 0.08 }, 0.08),
        Shape::Cube => (Geometry::Box { size: [0.14; 3] }, 0.07),
        Shape::Cylinder => (
            Geometry::Cylinder {
                radius: 0.07,
                length: 0.2,
            },
            0.1,
        ),
        Shape::Capsule => (
            Geometry::Capsule {
                radius: crate::world::CAPSULE_RADIUS,
                length: 2.0 * crate::world::CAPSULE_HALF_LENGTH,
            },
            crate::world::CAPSULE_RADIUS + crate::world::CAPSULE_HALF_LENGTH,
        ),
    }
}

/// A box's half height and colour, as in [`super::mjcf::mjcf`].
fn box_style(b: &BoxObstacle) -> (f64, [f64; 3]) {
    if b.boundary {
        (0.15, [0.8, 0.8, 0.78])
    } else {
        (0.12, [0.45, 0.42, 0.4])
    }
}

/// One static model with one link whose collision and visual share `geometry`.
fn static_model(x: &mut Xml, name: &str, pose: [f64; 3], geometry: &Geometry, colour: [f64; 3]) {
    x.open("model", &[("name", name)])
        .leaf("static", "true")
        .leaf("pose", &nums(&[pose[0], pose[1], pose[2], 0.0, 0.0, 0.0]))
        .open("link", &[("name", "link")])
        .open("collision", &[("name", "collision")]);
    geometry.write(x);
    x.open("surface", &[])
        .open("friction", &[])
        .open("ode", &[])
        .leaf("mu", &num(MU))
        .leaf("mu2", &num(MU))
        .close()
        .close()
        .close();
    x.close().open("visual", &[("name", "visual")]);
    geometry.write(x);
    let c = rgba(colour);
    x.open("material", &[])
        .leaf("ambient", &c)
        .leaf("diffuse", &c)
        .leaf("specular", "0.1 0.1 0.1 1")
        .close();
    x.close().close().close();
}

/// The SDFormat world for `layout`, named `name` (see [`world_name`]).
pub fn world_sdf(layout: &Layout, name: &str) -> String {
    let mut x = Xml::new();
    x.comment(
        "Generated by `brainloop scenario export` (src/sim/sdf.rs) from a scenario layout; do not edit.",
    );
    x.open("sdf", &[("version", SDF_VERSION)])
        .open("world", &[("name", name)]);
    x.open("physics", &[("name", "1ms"), ("type", "ignored")])
        .leaf("max_step_size", &num(STEP_SIZE))
        .leaf("real_time_factor", "1")
        .leaf("real_time_update_rate", &num(1.0 / STEP_SIZE))
        .close();
    for (file, class) in WORLD_SYSTEMS {
        if class.ends_with("::Sensors") {
            x.open("plugin", &[("filename", file), ("name", class)])
                .leaf("render_engine", "ogre2")
                .close();
        } else {
            x.empty("plugin", &[("filename", file), ("name", class)]);
        }
    }
    x.leaf("gravity", "0 0 -9.81");
    // MuJoCo renders without shadows (shadowsize 0) under a 0.45 ambient headlight and a 0.4 sun
    // straight down; Gazebo has no headlight, so the sun carries both diffuse terms.
    x.open("scene", &[])
        .leaf("ambient", "0.45 0.45 0.45 1")
        .leaf("background", "0.7 0.7 0.7 1")
        .leaf("shadows", "false")
        .close();
    x.open("light", &[("type", "directional"), ("name", "sun")])
        .leaf("cast_shadows", "false")
        .leaf("pose", "0 0 4 0 0 0")
        .leaf("diffuse", "0.9 0.9 0.9 1")
        .leaf("specular", "0.1 0.1 0.1 1")
        .leaf("direction", "0 0 -1")
        .close();
    static_model(
        &mut x,
        GROUND,
        [0.0, 0.0, 0.0],
        &Geometry::Plane {
            size: layout.size_m + 1.0,
        },
        [0.55, 0.55, 0.52],
    );
    for (i, b) in layout.boxes.iter().enumerate() {
        let (hz, colour) = box_style(b);
        static_model(
            &mut x,
            &box_model_name(i, b),
            [b.x, b.y, hz],
            &Geometry::Box {
                size: [2.0 * b.hx, 2.0 * b.hy, 2.0 * hz],
            },
            colour,
        );
    }
    for (i, o) in layout.objects.iter().enumerate() {
        let (g, z) = object_geometry(o.shape);
        static_model(
            &mut x,
            &object_model_name(i, o),
            [o.x, o.y, z],
            &g,
            o.colour.rgb(),
        );
    }
    x.finish()
}

/// Errors of `brainloop scenario export`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The scenario could not be found, read or laid out.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The world file could not be written.
    #[error("cannot write the world file {path}: {cause}")]
    Write {
        /// File.
        path: String,
        /// Cause (in the message, not a `source`, so a `{:#}` chain does not say it twice).
        cause: std::io::Error,
    },
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Export {
    /// Scenario name.
    pub scenario: String,
    /// Layout seed used.
    pub seed: u64,
    /// The scenario's instruction.
    pub instruction: String,
    /// The world file.
    pub sdf: PathBuf,
    /// The world's name.
    pub world: String,
    /// The robot's start pose `[x, y, yaw]` (m, m, rad): where to spawn it.
    pub start: [f64; 3],
    /// Every model in the world, in file order.
    pub models: Vec<String>,
    /// The layout itself.
    pub layout: Layout,
}

/// Export `scenario` (a path to a `.toml`, or a name in `dir`) laid out with `seed` (default:
/// the scenario's, as `brainloop sim` does) as a Gazebo world to `out`.
pub fn export(
    dir: &Path,
    scenario: &str,
    seed: Option<u64>,
    out: &Path,
) -> Result<Export, ExportError> {
    let looks_like_path = scenario.ends_with(".toml") || scenario.contains('/');
    let s = if looks_like_path {
        Scenario::load(Path::new(scenario))?
    } else {
        Scenario::find(dir, scenario)?
    };
    let seed = seed.unwrap_or(s.seed);
    let layout = s.layout(seed)?;
    let world = world_name(&s.name);
    let text = world_sdf(&layout, &world);
    std::fs::write(out, text).map_err(|cause| ExportError::Write {
        path: out.display().to_string(),
        cause,
    })?;
    Ok(Export {
        scenario: s.name,
        seed,
        instruction: s.instruction,
        sdf: out.to_path_buf(),
        world,
        start: [layout.start.0, layout.start.1, layout.start.2],
        models: model_names(&layout),
        layout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::RobotParams;

    fn scenario() -> Scenario {
        Scenario::parse(
            r#"instruction = "go to the red ball"
time_limit_s = 30
[goal]
object = "red ball"
[arena]
obstacles = 5
distractors = 4
same_colour_distractors = 1
walls = [[0.5, 0.0, 0.05, 0.6]]
"#,
            "t.toml",
            "t",
        )
        .unwrap()
    }

    #[test]
    fn escaping_covers_every_special_character() {
        assert_eq!(
            escape(r#"a<b>&"c"'d'"#),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;"
        );
        let mut x = Xml::new();
        x.open("root", &[("name", "x\"<y>&'")])
            .leaf("t", "1 < 2 && 3 > 2")
            .comment("no -- inside, none at the end-");
        let s = x.finish();
        assert!(
            s.contains(r#"<root name="x&quot;&lt;y&gt;&amp;&apos;">"#),
            "{s}"
        );
        assert!(s.contains("<t>1 &lt; 2 &amp;&amp; 3 &gt; 2</t>"), "{s}");
        assert!(
            s.contains("<!-- no - - inside, none at the end-  -->"),
            "{s}"
        );
        assert!(s.trim_end().ends_with("</root>"), "finish closes: {s}");
    }

    #[test]
    fn world_names_are_safe_for_gazebo_topics() {
        assert_eq!(world_name("01-red-ball"), "brainloop_01-red-ball");
        assert_eq!(world_name("a b/<c>"), "brainloop_a_b__c_");
    }

    /// Count `needle` in `hay`.
    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    #[test]
    fn every_layout_object_is_a_static_model_with_its_pose_size_and_colour() {
        let layout = scenario().layout(11).unwrap();
        assert!(layout.boxes.iter().any(|b| !b.boundary), "has obstacles");
        assert!(layout.objects.len() >= 4, "has distractors");
        let sdf = world_sdf(&layout, "w");
        assert!(sdf.starts_with("<?xml version=\"1.0\"?>\n"));
        assert!(sdf.contains("<sdf version=\"1.9\">"));
        let names = model_names(&layout);
        assert_eq!(names.len(), 1 + layout.boxes.len() + layout.objects.len());
        assert_eq!(count(&sdf, "<model name="), names.len());
        assert_eq!(count(&sdf, "<static>true</static>"), names.len());
        for n in &names {
            assert_eq!(count(&sdf, &format!("<model name=\"{n}\">")), 1, "{n}");
        }
        // Each model's block holds its pose, geometry and colour.
        let block = |name: &str| {
            let start = sdf.find(&format!("<model name=\"{name}\">")).unwrap();
            let end = start + sdf[start..].find("</model>").unwrap();
            sdf[start..end].to_string()
        };
        for (i, o) in layout.objects.iter().enumerate() {
            let b = block(&object_model_name(i, o));
            let (geom, z) = object_geometry(o.shape);
            assert!(
                b.contains(&format!(
                    "<pose>{} {} {} 0 0 0</pose>",
                    num(o.x),
                    num(o.y),
                    num(z)
                )),
                "{b}"
            );
            let tag = match geom {
                Geometry::Sphere { .. } => "<sphere>",
                Geometry::Box { .. } => "<box>",
                Geometry::Cylinder { .. } => "<cylinder>",
                Geometry::Capsule { .. } => "<capsule>",
                Geometry::Plane { .. } => unreachable!(),
            };
            assert_eq!(count(&b, tag), 2, "collision and visual: {b}");
            assert!(b.contains(&format!("<diffuse>{}</diffuse>", rgba(o.colour.rgb()))));
        }
        for (i, bx) in layout.boxes.iter().enumerate() {
            let b = block(&box_model_name(i, bx));
            let (hz, _) = box_style(bx);
            let size = nums(&[2.0 * bx.hx, 2.0 * bx.hy, 2.0 * hz]);
            assert_eq!(count(&b, &format!("<size>{size}</size>")), 2, "{b}");
            assert!(b.contains(&format!(
                "<pose>{} {} {} 0 0 0</pose>",
                num(bx.x),
                num(bx.y),
                num(hz)
            )));
        }
        for (file, class) in WORLD_SYSTEMS {
            assert!(
                sdf.contains(&format!("<plugin filename=\"{file}\" name=\"{class}\"")),
                "{file}"
            );
        }
        assert!(sdf.contains("<render_engine>ogre2</render_engine>"));
        assert!(sdf.contains("<max_step_size>0.001</max_step_size>"));
        assert!(sdf.contains("<light type=\"directional\" name=\"sun\">"));
    }

    /// `key="..."` in an MJCF line.
    fn attr<'a>(line: &'a str, key: &str) -> &'a str {
        let k = format!(" {key}=\"");
        let s = line.find(&k).unwrap() + k.len();
        &line[s..s + line[s..].find('"').unwrap()]
    }

    fn floats(s: &str) -> Vec<f64> {
        s.split_whitespace().map(|v| v.parse().unwrap()).collect()
    }

    #[test]
    fn the_arena_matches_the_mujoco_model() {
        let layout = scenario().layout(5).unwrap();
        let mjcf = super::super::mjcf::mjcf(&RobotParams::load_default(), &layout);
        let sdf = world_sdf(&layout, "w");
        for (i, o) in layout.objects.iter().enumerate() {
            let line = mjcf
                .lines()
                .find(|l| l.contains(&format!("name=\"object:{i}:")))
                .unwrap();
            let pos = floats(attr(line, "pos"));
            let size = floats(attr(line, "size"));
            let (geom, z) = object_geometry(o.shape);
            assert_eq!(pos, vec![o.x, o.y, z], "{line}");
            match geom {
                Geometry::Sphere { radius } => assert_eq!(size, vec![radius]),
                Geometry::Box { size: s } => {
                    assert_eq!(size, s.iter().map(|v| v / 2.0).collect::<Vec<_>>())
                }
                Geometry::Cylinder { radius, length } | Geometry::Capsule { radius, length } => {
                    assert_eq!(size, vec![radius, length / 2.0])
                }
                Geometry::Plane { .. } => unreachable!(),
            }
            let rgba_m = floats(attr(line, "rgba"));
            for (a, b) in rgba_m.iter().zip(o.colour.rgb()) {
                assert!((a - b).abs() < 1e-3, "{line}");
            }
            assert!(sdf.contains(&object_model_name(i, o)));
        }
        for (i, b) in layout.boxes.iter().enumerate() {
            let line = mjcf
                .lines()
                .find(|l| l.contains(&format!("name=\"obstacle:{i}\"")))
                .unwrap();
            let (hz, colour) = box_style(b);
            assert_eq!(floats(attr(line, "size")), vec![b.hx, b.hy, hz]);
            assert_eq!(floats(attr(line, "pos")), vec![b.x, b.y, hz]);
            assert_eq!(floats(attr(line, "rgba"))[..3], colour);
        }
    }

    #[test]
    fn export_is_deterministic_per_seed_and_reports_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("my scenario.toml");
        std::fs::write(
            &toml,
            "instruction = \"go to the red ball\"\ntime_limit_s = 30\n[goal]\nobject = \"red ball\"\n[arena]\nobstacles = 3\ndistractors = 2\nseed_note = 1\n",
        )
        .unwrap();
        // A malformed file is one clear error.
        let e = export(
            dir.path(),
            toml.to_str().unwrap(),
            None,
            &dir.path().join("x.sdf"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("malformed scenario"), "{e}");
        std::fs::write(
            &toml,
            "instruction = \"go to the red ball\"\ntime_limit_s = 30\nseed = 4\n[goal]\nobject = \"red ball\"\n[arena]\nobstacles = 3\ndistractors = 2\n",
        )
        .unwrap();
        let a = dir.path().join("a.sdf");
        let b = dir.path().join("b.sdf");
        let c = dir.path().join("c.sdf");
        let ea = export(dir.path(), "my scenario", None, &a).unwrap();
        let eb = export(dir.path(), toml.to_str().unwrap(), Some(4), &b).unwrap();
        let ec = export(dir.path(), "my scenario", Some(5), &c).unwrap();
        assert_eq!(ea.seed, 4, "the scenario's seed by default");
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
        assert_eq!(ea.start, eb.start);
        assert_ne!(ea.start, ec.start);
        assert_eq!(ea.world, "brainloop_my_scenario");
        let s = std::fs::read_to_string(&a).unwrap();
        assert!(s.contains("<world name=\"brainloop_my_scenario\">"));
        // Unknown names and unwritable files are clear errors.
        let e = export(dir.path(), "nope", None, &a)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown scenario `nope`") && e.contains("my scenario"),
            "{e}"
        );
        let e = export(dir.path(), "missing.toml", None, &a)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read scenario missing.toml"), "{e}");
        let bad = dir.path().join("no-such-dir").join("w.sdf");
        let e = export(dir.path(), "my scenario", None, &bad)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot write the world file"), "{e}");
    }
}
