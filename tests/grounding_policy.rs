//! Closed-loop tests of the language-grounded decision on a small synthetic 2-D world: a
//! unicycle robot, range rays cast against circles and the arena walls, and a "vision region"
//! that writes each object's concept prototype into the 7x7 cells its image covers (the toy
//! connector is the identity, so these are exactly the aligned tokens). Deterministic.

use brainloop::grounding::connector::{normalize, AlignConnector, Concept};
use brainloop::grounding::{GroundedPolicy, PolicyInput, PolicyParams, QueryConnector, VisionView};
use brainloop::msg::{BodyState, Mode};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::f32::consts::PI;
use std::sync::Arc;

struct Counting;
thread_local! { static ALLOCS: Cell<usize> = const { Cell::new(0) }; }
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

const D: usize = 8;
const BACKGROUND: usize = 3;

fn connector() -> Arc<AlignConnector> {
    let concepts: Vec<Concept> = (0..4)
        .map(|k| {
            let mut p = vec![0.15f32; D];
            p[k] = 1.0;
            normalize(&mut p);
            Concept {
                name: format!("concept{k}"),
                background: k == BACKGROUND,
                prototype: p,
            }
        })
        .collect();
    let mut w = vec![0.0f32; D * D];
    for i in 0..D {
        w[i * D + i] = 1.0;
    }
    let mut c = AlignConnector::from_parts(
        D,
        D,
        vec![0.0; D],
        vec![1.0; D],
        w,
        vec![0.0; D],
        concepts,
        0.0,
    )
    .unwrap();
    c.min_query_similarity = 0.5;
    Arc::new(c)
}

#[derive(Clone, Copy)]
struct Obj {
    x: f32,
    y: f32,
    r: f32,
    concept: Option<usize>, // None: a plain obstacle (background to the camera)
}

struct World {
    pose: (f32, f32, f32),
    objects: Vec<Obj>,
    half: f32,
    ticks: [f64; 2],
    min_clearance: f32,
}

const ROBOT_R: f32 = 0.125;
const SENSOR_X: f32 = 0.1;

impl World {
    fn new(pose: (f32, f32, f32), objects: Vec<Obj>) -> Self {
        Self {
            pose,
            objects,
            half: 2.0,
            ticks: [0.0; 2],
            min_clearance: f32::INFINITY,
        }
    }

    fn cast(&self, ox: f32, oy: f32, a: f32) -> f32 {
        let (dx, dy) = (a.cos(), a.sin());
        let mut best = 2.0f32;
        for o in &self.objects {
            let (fx, fy) = (ox - o.x, oy - o.y);
            let b = fx * dx + fy * dy;
            let c = fx * fx + fy * fy - o.r * o.r;
            let disc = b * b - c;
            if disc >= 0.0 {
                let t = -b - disc.sqrt();
                if t > 0.0 {
                    best = best.min(t);
                }
            }
        }
        for (n, d) in [
            (dx, self.half - ox),
            (-dx, self.half + ox),
            (dy, self.half - oy),
            (-dy, self.half + oy),
        ] {
            if n > 1e-6 {
                best = best.min(d / n);
            }
        }
        best
    }

    fn body(&self, t: f32) -> BodyState {
        let (x, y, yaw) = self.pose;
        let (sx, sy) = (x + SENSOR_X * yaw.cos(), y + SENSOR_X * yaw.sin());
        let mut s = BodyState {
            stamp_ns: (t * 1e9) as u64,
            encoder_ticks: [self.ticks[0] as i64, self.ticks[1] as i64],
            range_count: 9,
            ..Default::default()
        };
        for k in 0..9 {
            let a = -PI / 3.0 + (2.0 * PI / 3.0) * k as f32 / 8.0;
            s.range[k] = self.cast(sx, sy, yaw + a);
        }
        s
    }

    /// 7x7 tokens: each visible object's prototype in the columns and rows it covers.
    fn vision(&self, c: &AlignConnector, out: &mut Vec<f32>) {
        let (x, y, yaw) = self.pose;
        let hfov = PI / 3.0;
        let mut owner = [[(f32::INFINITY, BACKGROUND); 7]; 7];
        for o in &self.objects {
            let (dx, dy) = (o.x - x, o.y - y);
            let d = (dx * dx + dy * dy).sqrt();
            let bearing = wrap(dy.atan2(dx) - yaw);
            let half = (o.r / d.max(o.r)).asin();
            let concept = o.concept.unwrap_or(BACKGROUND);
            // Rows: objects near the horizon cover the middle rows; closer ones more rows.
            let rows_half = ((half / (hfov / 2.0)) * 3.5).ceil() as i32;
            #[allow(clippy::needless_range_loop)] // `col` is a geometric column index too
            for col in 0..7 {
                let lo = -((col as f32 + 1.0) / 7.0 * 2.0 - 1.0) * (hfov / 2.0).tan();
                let hi = -((col as f32) / 7.0 * 2.0 - 1.0) * (hfov / 2.0).tan();
                let (blo, bhi) = (lo.atan(), hi.atan());
                if bearing + half >= blo && bearing - half <= bhi {
                    for row in (3 - rows_half).max(0)..=(3 + rows_half).min(6) {
                        let cell = &mut owner[row as usize][col];
                        if d < cell.0 {
                            *cell = (d, concept);
                        }
                    }
                }
            }
        }
        out.clear();
        for row in owner {
            for (_, k) in row {
                out.extend_from_slice(&c.concepts()[k].prototype);
            }
        }
    }

    fn step(&mut self, lin: f32, ang: f32, dt: f32) {
        let (x, y, yaw) = self.pose;
        let nx = x + lin * yaw.cos() * dt;
        let ny = y + lin * yaw.sin() * dt;
        self.pose = (nx, ny, wrap(yaw + ang * dt));
        let half_sep = 0.08;
        let r = 0.033;
        self.ticks[0] += ((lin - ang * half_sep) * dt / r / (2.0 * PI) * 1440.0) as f64;
        self.ticks[1] += ((lin + ang * half_sep) * dt / r / (2.0 * PI) * 1440.0) as f64;
        let mut clear = (self.half - nx.abs()).min(self.half - ny.abs());
        for o in &self.objects {
            if o.concept.is_none() {
                clear = clear.min(((nx - o.x).hypot(ny - o.y)) - o.r);
            }
        }
        self.min_clearance = self.min_clearance.min(clear);
    }
}

fn wrap(a: f32) -> f32 {
    let mut a = (a + PI) % (2.0 * PI);
    if a < 0.0 {
        a += 2.0 * PI;
    }
    a - PI
}

struct Outcome {
    arrived_at: Option<f32>,
    final_distance: f32,
    min_clearance: f32,
    modes: Vec<Mode>,
    allocs_in_decide: usize,
    /// Commanded linear speed per tick.
    linear: Vec<f32>,
}

fn run(world: &mut World, instruction: Option<Vec<f32>>, target: usize, seconds: f32) -> Outcome {
    run_drowsy(world, instruction, target, seconds, &|_| 0.0)
}

fn run_drowsy(
    world: &mut World,
    instruction: Option<Vec<f32>>,
    target: usize,
    seconds: f32,
    drowsiness: &dyn Fn(f32) -> f32,
) -> Outcome {
    let c = connector();
    let params = PolicyParams {
        hfov: PI / 3.0,
        range_fov: 2.0 * PI / 3.0,
        range_max: 2.0,
        ..PolicyParams::for_robot(&brainloop::body::RobotParams::load_default())
    };
    let mut policy = GroundedPolicy::new(QueryConnector::new(c.clone(), PI / 3.0), params);
    let mut tokens = Vec::with_capacity(49 * D);
    let mut frame_stamp = 0u64;
    let dt = 0.02;
    let mut out = Outcome {
        arrived_at: None,
        final_distance: 0.0,
        min_clearance: f32::INFINITY,
        modes: Vec::new(),
        allocs_in_decide: 0,
        linear: Vec::with_capacity((seconds / dt) as usize + 1),
    };
    let steps = (seconds / dt) as usize;
    for i in 0..steps {
        let t = i as f32 * dt;
        if i % 5 == 0 {
            world.vision(&c, &mut tokens);
            frame_stamp = (t * 1e9) as u64;
        }
        let body = world.body(t);
        let input = PolicyInput {
            now_ns: (t * 1e9) as u64 + 1,
            instruction: instruction.as_deref(),
            instruction_stamp_ns: 7,
            vision: Some(VisionView {
                grid: [7, 7, D as u32],
                spatial: &tokens,
                stamp_ns: frame_stamp,
                stale: false,
            }),
            body: &body,
            drowsiness: drowsiness(t),
            memory: None,
        };
        let before = ALLOCS.with(|a| a.get());
        let intent = policy.decide(&input);
        if i > 10 {
            out.allocs_in_decide += ALLOCS.with(|a| a.get()) - before;
        }
        if std::env::var_os("GROUNDING_TRACE").is_some() && i % 25 == 0 {
            let st = policy.status();
            eprintln!(
                "t={t:.1} pose=({:.2},{:.2},{:.2}) mode={:?} reason={:?} conf={:.2} bearing={:.2} heading={:.2} twist=({:.2},{:.2}) range={:?}",
                world.pose.0, world.pose.1, world.pose.2, intent.mode, st.reason,
                st.percept.confidence, st.percept.bearing, st.heading,
                intent.twist.linear, intent.twist.angular, &body.range[..9]
            );
        }
        if out.modes.last() != Some(&intent.mode) {
            out.modes.push(intent.mode);
        }
        if intent.mode == Mode::Arrived && out.arrived_at.is_none() {
            out.arrived_at = Some(t);
        }
        out.linear.push(intent.twist.linear as f32);
        let lin = (intent.twist.linear as f32).clamp(-0.5, 0.5);
        let ang = (intent.twist.angular as f32).clamp(-2.0, 2.0);
        world.step(lin, ang, dt);
    }
    let g = world.objects.iter().find(|o| o.concept == Some(target));
    out.final_distance = g.map_or(f32::NAN, |g| (world.pose.0 - g.x).hypot(world.pose.1 - g.y));
    out.min_clearance = world.min_clearance;
    out
}

fn instruction_for(k: usize) -> Vec<f32> {
    // An instruction is near, not equal to, its concept's prototype (extra words).
    let c = connector();
    let mut q = c.concepts()[k].prototype.clone();
    q[7] += 0.3;
    q[5] += 0.2;
    normalize(&mut q);
    q
}

fn obj(x: f32, y: f32, concept: usize) -> Obj {
    Obj {
        x,
        y,
        r: 0.08,
        concept: Some(concept),
    }
}

#[test]
fn goes_to_a_target_ahead_and_stops() {
    let mut w = World::new((-1.5, 0.0, 0.0), vec![obj(0.8, 0.3, 1), obj(0.5, -1.2, 0)]);
    let o = run(&mut w, Some(instruction_for(1)), 1, 40.0);
    assert!(o.arrived_at.is_some(), "modes {:?}", o.modes);
    assert!(
        o.final_distance < 0.5,
        "final distance {}",
        o.final_distance
    );
    assert!(o.min_clearance > ROBOT_R, "clearance {}", o.min_clearance);
    assert_eq!(o.allocs_in_decide, 0, "decide allocated");
}

#[test]
fn searches_behind_and_picks_the_named_object_over_a_distractor() {
    let mut w = World::new((1.0, 0.0, 0.0), vec![obj(-1.2, 0.6, 2), obj(-1.0, -0.8, 0)]);
    let o = run(&mut w, Some(instruction_for(2)), 2, 60.0);
    assert!(o.modes.contains(&Mode::Search));
    assert!(o.arrived_at.is_some(), "modes {:?}", o.modes);
    assert!(
        o.final_distance < 0.5,
        "final distance {}",
        o.final_distance
    );
    let d0 = {
        let g = w.objects[1];
        (w.pose.0 - g.x).hypot(w.pose.1 - g.y)
    };
    assert!(d0 > 0.5, "stopped at the distractor");
}

#[test]
fn steers_around_an_obstacle_in_the_way() {
    let mut w = World::new(
        (-1.5, 0.0, 0.0),
        vec![
            obj(1.2, 0.0, 0),
            Obj {
                x: -0.2,
                y: 0.0,
                r: 0.25,
                concept: None,
            },
        ],
    );
    let o = run(&mut w, Some(instruction_for(0)), 0, 60.0);
    assert!(
        o.min_clearance > ROBOT_R * 0.8,
        "clearance {}",
        o.min_clearance
    );
    assert!(
        o.final_distance < 0.5,
        "final distance {} modes {:?}",
        o.final_distance,
        o.modes
    );
}

#[test]
fn meaningless_or_missing_instruction_stays_idle() {
    let mut junk = vec![0.0f32; D];
    junk[6] = 1.0;
    junk[4] = -0.5;
    normalize(&mut junk);
    for instr in [Some(junk), None] {
        let mut w = World::new((0.0, 0.0, 0.0), vec![obj(1.0, 0.0, 1)]);
        let o = run(&mut w, instr, 1, 5.0);
        assert_eq!(o.modes, vec![Mode::Idle]);
        assert_eq!(w.pose, (0.0, 0.0, 0.0), "the robot moved");
    }
}

#[test]
fn absent_target_keeps_searching_safely_and_never_claims_arrival() {
    let mut w = World::new(
        (0.0, 0.0, 0.3),
        vec![
            obj(1.0, 0.5, 0),
            obj(-1.0, -1.0, 1),
            Obj {
                x: 0.8,
                y: -0.8,
                r: 0.3,
                concept: None,
            },
        ],
    );
    let o = run(&mut w, Some(instruction_for(2)), 2, 90.0);
    assert!(
        o.arrived_at.is_none(),
        "claimed arrival, modes {:?}",
        o.modes
    );
    assert!(o.modes.contains(&Mode::Search));
    assert!(
        o.min_clearance > ROBOT_R * 0.8,
        "clearance {}",
        o.min_clearance
    );
}

#[test]
fn a_connector_fitted_on_other_vision_features_is_refused_at_load() {
    // The toy connector takes 8-channel features; the vision region gives SPATIAL_DIM.
    let dir = std::env::temp_dir().join(format!("brainloop-conn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("old.bin");
    connector().save(&path).unwrap();
    let params = brainloop::body::RobotParams::load_default();
    let err = brainloop::grounding::load_policy_from(&path, &params)
        .expect_err("a mismatched connector must not load")
        .to_string();
    assert!(
        err.contains("8-channel") && err.contains("brainloop align"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn one_drowsy_moment_keeps_the_robot_cautious_for_a_while() {
    // A 0.1 s spike of drowsiness (one stall) at t = 2 s while driving to a far target, as the
    // integrator's feedback hands it to the policy (the peak held and released over
    // HOLD_RELEASE_S, `integrator::Feedback::held`): the policy stays slower for seconds after
    // it, not only during the spike, and still arrives.
    let world = || World::new((-2.5, 0.0, 0.0), vec![obj(2.5, 0.0, 1)]);
    let alert = run(&mut world(), Some(instruction_for(1)), 1, 30.0);
    let release = brainloop::integrator::drowsiness::HOLD_RELEASE_S as f32;
    let spike = |t: f32| match t {
        t if t < 2.0 => 0.0,
        t if t < 2.1 => 1.0,
        t => (1.0 - (t - 2.1) / release).max(0.0),
    };
    let drowsy = run_drowsy(&mut world(), Some(instruction_for(1)), 1, 30.0, &spike);
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    // 1.5 to 2.5 s after the spike (ticks of 20 ms).
    let (a, d) = (
        mean(&alert.linear[175..225]),
        mean(&drowsy.linear[175..225]),
    );
    assert!(a > 0.3, "cruising: {a}");
    assert!(d < 0.9 * a, "still cautious after the spike: {d} vs {a}");
    assert!(alert.arrived_at.is_some() && drowsy.arrived_at.is_some());
    assert!(drowsy.arrived_at.unwrap() > alert.arrived_at.unwrap());
}
