//! The simulator without MuJoCo (`brainloop sim --body kinematic`): the kinematic body in the
//! scenario geometry runs whole episodes deterministically, says that vision is blind, and its
//! range rays (cast against the layout) see walls where the MuJoCo body's rays see them.

use brainloop::body::{Body, RobotParams, SimulatedBody};
use brainloop::config::Config;
use brainloop::experiment::episode::{run_episode, BrainKind, EpisodeOptions};
use brainloop::msg::WheelSpeeds;
use brainloop::report::Summary;
use brainloop::sim::bodies::Physics;
use brainloop::sim::kinematic::KinematicWorld;
use brainloop::sim::mujoco::MujocoBody;
use brainloop::sim::scenario::Scenario;
use brainloop::sim::testing::{drive, open_arena};
use std::path::Path;

#[test]
fn range_rays_see_the_wall_at_its_distance_like_mujoco() {
    let p = RobotParams::load_default();
    // Facing +x from x = 1: the wall face is at x = 2, the sensor at 1 + 0.105.
    let layout = open_arena([1.0, 0.0, 0.0], [-1.5, 1.5]);
    let mut k = KinematicWorld::new(p.clone(), &layout);
    let mut m = MujocoBody::new(p.clone(), &layout).unwrap();
    k.advance(0.1);
    m.advance(0.1);
    let (ks, ms) = (k.state(), m.state());
    assert_eq!(ks.range_count as u32, p.range_rays);
    let mid = (p.range_rays / 2) as usize;
    assert!(
        (ks.range[mid] as f64 - 0.895).abs() < 1e-3,
        "{}",
        ks.range[mid]
    );
    for i in 0..ks.range_count as usize {
        assert!(
            (ks.range[i] - ms.range[i]).abs() < 0.03,
            "ray {i}: kinematic {} vs MuJoCo {}",
            ks.range[i],
            ms.range[i]
        );
    }
    // Driving into the wall: the kinematic body stops at it and counts one collision.
    drive(&mut k, &p, (0.3, 0.0), 2000, 0.002);
    let (x, _, _) = k.ground_truth_pose();
    assert!(x < 2.0 - 0.12 && x > 1.8, "x = {x}");
    assert_eq!(k.collisions(), 1);
    assert!(k.state().range[mid] < 0.05);
    k.command(WheelSpeeds::default()).unwrap();
}

fn run(seed: u64) -> Summary {
    let s = Scenario::find(Path::new("scenarios"), "03-green-cylinder-obstacles").unwrap();
    let opts = EpisodeOptions {
        seed: Some(seed),
        seconds: Some(20.0),
        brain: BrainKind::Pilot,
        physics: Physics::Kinematic,
        stop_on_success: false,
        ..Default::default()
    };
    run_episode(
        &Config::default(),
        &RobotParams::load_default(),
        &s,
        &opts,
        &mut |_| {},
    )
    .unwrap()
}

#[test]
fn kinematic_episodes_run_without_mujoco_deterministically_and_blind() {
    let (a, b) = (run(3), run(3));
    let strip = |s: &Summary| Summary {
        wall_time_s: 0.0,
        realtime_factor: 0.0,
        ..s.clone()
    };
    assert_eq!(strip(&a), strip(&b));
    assert_eq!(a.body, "kinematic+board");
    assert_eq!(a.camera_frames, 0, "no rendering without MuJoCo");
    assert!(a.ticks >= 900 && a.link_frames_sent == a.ticks, "{a:?}");
    // The blind pilot searches: it turns, then wanders, avoiding what its range rays see.
    assert!(a.path_length_m > 0.3, "{a:?}");
    assert!(a.min_obstacle_distance_m > 0.0, "{a:?}");
    let text = brainloop::experiment::commands::summary_text(&a, Path::new("/tmp/x"));
    assert!(text.contains("BLIND"), "{text}");
}
