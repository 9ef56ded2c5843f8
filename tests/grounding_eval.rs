//! Grounded behaviour measured in the simulator (slow: ignored by default). Run with
//! `cargo test --release --test grounding_eval -- --ignored --nocapture`.
//!
//! * `paraphrase_success`: every shipped scenario, its instruction replaced by each held-out
//!   paraphrase (tests/fixtures/grounding/paraphrases.toml) that names the scenario's goal object,
//!   over `GROUNDING_EVAL_SEEDS` seeds (default 2): prints the success rate. These phrasings are
//!   never used in training.
//! * `meaningless_instruction_stays_put`: a meaningless instruction leaves the robot where it
//!   started.

use brainloop::body::RobotParams;
use brainloop::config::Config;
use brainloop::experiment::episode::{run_episode, EpisodeOptions};
use brainloop::sim::scenario::{load_dir, ObjectKind};
use brainloop::training::align::ParaphraseSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn config() -> Config {
    Config::load(&root().join("config/default.toml")).expect("default config")
}

#[test]
#[ignore = "slow: runs simulated episodes with the real models"]
fn paraphrase_success() {
    let set = ParaphraseSet::load(&root().join("tests/fixtures/grounding/paraphrases.toml"))
        .expect("paraphrase set");
    let scenarios = load_dir(&root().join("scenarios")).expect("scenarios");
    let seeds: u64 = std::env::var("GROUNDING_EVAL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let params = RobotParams::load_default();
    let cfg = config();
    let (mut runs, mut wins, mut collisions) = (0usize, 0usize, 0usize);
    for s in &scenarios {
        let goal = s.goal_kind().expect("goal");
        let phrasings: Vec<&str> = set
            .instruction
            .iter()
            .filter(|p| ObjectKind::parse(&p.object) == Some(goal))
            .map(|p| p.text.as_str())
            .collect();
        for (i, text) in phrasings.iter().enumerate() {
            for k in 0..seeds {
                let opts = EpisodeOptions {
                    seed: Some(1000 + 17 * k + i as u64),
                    instruction: Some(text.to_string()),
                    ..EpisodeOptions::default()
                };
                let sum = run_episode(&cfg, &params, s, &opts, &mut |_| {}).expect("episode");
                runs += 1;
                wins += sum.success as usize;
                collisions += (sum.collisions > 0) as usize;
                println!(
                    "{:<34} {:<48} seed {:>5}: {} ({:.1} s, collisions {})",
                    s.name, text, sum.seed, sum.outcome, sum.sim_time_s, sum.collisions
                );
            }
        }
    }
    assert!(runs > 0, "no paraphrase names a shipped scenario's goal");
    println!(
        "paraphrase set: success {wins}/{runs} = {:.1} %, episodes with a collision {collisions}",
        100.0 * wins as f64 / runs as f64
    );
}

#[test]
#[ignore = "slow: runs a simulated episode with the real models"]
fn meaningless_instruction_stays_put() {
    let scenarios = load_dir(&root().join("scenarios")).expect("scenarios");
    let params = RobotParams::load_default();
    let opts = EpisodeOptions {
        seconds: Some(8.0),
        instruction: Some("what is the capital of france".into()),
        ..EpisodeOptions::default()
    };
    let sum = run_episode(&config(), &params, &scenarios[0], &opts, &mut |_| {}).expect("episode");
    println!("{}: path {:.3} m", sum.outcome, sum.path_length_m);
    assert!(!sum.success);
    assert!(sum.path_length_m < 0.02, "moved {} m", sum.path_length_m);
}
