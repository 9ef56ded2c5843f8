//! The regions against Python onnxruntime: committed fixtures (photos, sentences, a WAV) and the
//! expected outputs computed by `scripts/models/make_fixtures.py expected`. Rust must match
//! within 1e-4. Needs the built models (`scripts/bootstrap.sh` or `brainloop models build`).

use brainloop::config::RegionConfig;
use brainloop::msg::Instruction;
use brainloop::regions::audition::AuditionRegion;
use brainloop::regions::language::{InstructionInbox, LanguageRegion};
use brainloop::regions::sources::{Frame, ImageFiles, SharedFrame, WavFile};
use brainloop::regions::vision::VisionRegion;
use brainloop::regions::{Health, Region, ShedLevel};
use serde_json::Value;
use std::path::{Path, PathBuf};

const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/regions")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn cfg(model: &str, rate: f64) -> RegionConfig {
    RegionConfig {
        model: model.into(),
        rate_hz: rate,
        threads: 1,
        ..Default::default()
    }
}

#[test]
fn vision_matches_python_on_photos() {
    let exp = expected();
    let mut worst = 0.0f32;
    for img in exp["images"].as_array().unwrap() {
        let path = fixtures().join(img["file"].as_str().unwrap());
        let src = ImageFiles::open(std::slice::from_ref(&path), 1.0).unwrap();
        let mut r = VisionRegion::new(&cfg("vision", 10.0), Box::new(src), ShedLevel::new())
            .unwrap_or_else(|e| panic!("{e}"));
        let e = r.step(1_000).unwrap().expect("a frame gives an embedding");
        assert_eq!(e.grid, [7, 7, 1504]);
        assert_eq!(e.vector.len(), 1280);
        assert_eq!(e.spatial.len(), 7 * 7 * 1504);
        let d = max_diff(e.vector, &floats(&img["embedding"]));
        let stride = img["spatial_stride"].as_u64().unwrap() as usize;
        let sample: Vec<f32> = e.spatial.iter().step_by(stride).copied().collect();
        let ds = max_diff(&sample, &floats(&img["spatial_sample"]));
        worst = worst.max(d).max(ds);
        assert!(
            d < TOL && ds < TOL,
            "{}: embedding {d}, spatial {ds}",
            path.display()
        );
        // The pooled embedding is the mean of the spatial map.
        for c in [0usize, 640, 1279] {
            let mean: f32 = (0..49).map(|k| e.spatial[k * 1504 + c]).sum::<f32>() / 49.0;
            assert!((mean - e.vector[c]).abs() < 1e-4);
        }
        let top5: Vec<usize> = img["top5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(r.model().top_k(1)[0], top5[0], "{}", path.display());
    }
    eprintln!("vision: max |rust - python| = {worst:e}");
}

#[test]
fn vision_recognises_the_photos() {
    // ImageNet: 281-285 are domestic cats, 967 espresso / 968 cup / 504 coffee mug,
    // 657 missile / 744 projectile.
    let exp = expected();
    let top1: Vec<u64> = exp["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["top5"][0].as_u64().unwrap())
        .collect();
    assert!((281..=285).contains(&top1[0]), "cat -> {}", top1[0]);
    assert!([967, 968, 504].contains(&top1[1]), "coffee -> {}", top1[1]);
    assert!([657, 744].contains(&top1[2]), "rocket -> {}", top1[2]);
}

#[test]
fn language_matches_python_and_caches_until_the_instruction_changes() {
    let exp = expected();
    let inbox = InstructionInbox::new();
    let mut r = LanguageRegion::new(&cfg("language", 5.0), inbox.clone(), ShedLevel::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.step(0).unwrap().is_none(),
        "no instruction: nothing published"
    );
    let mut worst = 0.0f32;
    for (k, s) in exp["sentences"].as_array().unwrap().iter().enumerate() {
        let text = s["text"].as_str().unwrap();
        let ids: Vec<u32> = s["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(r.model_mut().tokenize(text).unwrap(), ids, "{text}");
        inbox.set(Instruction {
            stamp_ns: k as u64,
            text: text.into(),
        });
        let before = r.stats().inferences;
        let v = r.step(10 * k as u64 + 1).unwrap().unwrap().vector.to_vec();
        let d = max_diff(&v, &floats(&s["embedding"]));
        worst = worst.max(d);
        assert!(d < TOL, "{text}: {d}");
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
        // Same instruction again: re-published from the cache, no new inference.
        let again = r.step(10 * k as u64 + 2).unwrap().unwrap();
        assert_eq!(again.vector, &v[..]);
        assert_eq!(r.stats().inferences, before + 1);
    }
    inbox.set(Instruction {
        stamp_ns: 99,
        text: "   ".into(),
    });
    assert!(r.step(1000).unwrap().is_none(), "empty instruction: idle");
    eprintln!("language: max |rust - python| = {worst:e}");
}

#[test]
fn language_embeddings_are_semantically_sensible() {
    let inbox = InstructionInbox::new();
    let mut r = LanguageRegion::new(&cfg("language", 5.0), inbox, ShedLevel::new()).unwrap();
    let m = r.model_mut();
    let a = m.embed("go to the red ball").unwrap().to_vec();
    let b = m.embed("drive towards the red ball").unwrap().to_vec();
    let c = m.embed("A man is eating food.").unwrap().to_vec();
    let cos = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    assert!(cos(&a, &b) > 0.6, "{}", cos(&a, &b));
    assert!(cos(&a, &c) < 0.3, "{}", cos(&a, &c));
}

#[test]
fn audition_matches_python_on_the_wav() {
    let exp = expected();
    let wav = fixtures().join("speech.wav");
    let src = WavFile::open(&wav, false).unwrap();
    let mut r = AuditionRegion::new(&cfg("audition", 31.25), Box::new(src), ShedLevel::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let vectors = exp["audio"]["vectors"].as_array().unwrap();
    let mut worst = 0.0f32;
    let mut speech = 0;
    for (k, want) in vectors.iter().enumerate() {
        let e = r
            .step(k as u64 * 32_000_000)
            .unwrap()
            .unwrap_or_else(|| panic!("chunk {k} missing"));
        assert_eq!(e.vector.len(), 33);
        let d = max_diff(e.vector, &floats(want));
        worst = worst.max(d);
        assert!(d < TOL, "chunk {k}: {d}");
        if e.vector[0] > 0.5 {
            speech += 1;
        }
    }
    assert!(r.step(u64::MAX / 2).unwrap().is_none(), "end of file");
    // The synthetic vowel (0.5 s .. 1.1 s) is heard as speech, the noise around it is not.
    assert!((15..=25).contains(&speech), "{speech} speech chunks");
    eprintln!("audition: max |rust - python| = {worst:e}");
}

#[test]
fn shed_level_skips_vision_frames() {
    let img = fixtures().join("images/cat.png");
    let src = ImageFiles::open(&[img], 10.0).unwrap();
    let shed = ShedLevel::new();
    let mut r = VisionRegion::new(&cfg("vision", 10.0), Box::new(src), shed.clone()).unwrap();
    let mut published = 0;
    for k in 0..4u64 {
        published += usize::from(r.step(k * 100_000_000).unwrap().is_some());
    }
    assert_eq!(published, 4);
    shed.set(3); // one frame in four
    published = 0;
    for k in 4..12u64 {
        published += usize::from(r.step(k * 100_000_000).unwrap().is_some());
    }
    assert_eq!(published, 2);
    assert_eq!(r.stats().shed_skips, 6);
}

#[test]
fn a_bad_frame_marks_vision_failed_without_panicking() {
    let mailbox = SharedFrame::new();
    let mut r = VisionRegion::new(
        &cfg("vision", 10.0),
        Box::new(mailbox.clone()),
        ShedLevel::new(),
    )
    .unwrap();
    assert!(r.step(0).unwrap().is_none(), "no frame yet");
    mailbox.put(Frame {
        width: 320,
        height: 240,
        stamp_ns: 1,
        data: vec![0; 17],
    });
    let err = r.step(1).unwrap_err().to_string();
    assert!(err.contains("bad frame"), "{err}");
    assert!(matches!(r.health(), Health::Failed(_)));
    mailbox.put(Frame {
        width: 2,
        height: 2,
        stamp_ns: 2,
        data: vec![0; 12],
    });
    assert!(
        r.step(2).unwrap().is_none(),
        "a failed region publishes nothing"
    );
}

#[test]
fn spawned_region_runs_at_its_rate_and_stops() {
    use brainloop::regions::proprioception::ProprioceptionRegion;
    use brainloop::regions::sources::SharedBodyState;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let cell = SharedBodyState::new();
    let r = ProprioceptionRegion::new(
        &cfg("", 200.0),
        brainloop::body::RobotParams::load_default(),
        Box::new(cell.clone()),
        ShedLevel::new(),
    )
    .unwrap();
    let t0 = std::time::Instant::now();
    let clock: Arc<dyn Fn() -> u64 + Send + Sync> =
        Arc::new(move || t0.elapsed().as_nanos() as u64);
    let got = Arc::new(AtomicU64::new(0));
    let got2 = got.clone();
    let c2 = clock.clone();
    let h = brainloop::regions::spawn(Box::new(r), clock, move |e| {
        assert!(e.vector.len() > 10);
        got2.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    // A fresh body state every 10 ms for 100 ms.
    for _ in 0..10 {
        cell.put(brainloop::msg::BodyState {
            stamp_ns: c2(),
            ..Default::default()
        });
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = h.status();
    let region = h.stop().expect("thread returns the region");
    let n = got.load(Ordering::Relaxed);
    assert!(n >= 3, "published {n}");
    assert_eq!(status.published.load(Ordering::Relaxed), n);
    assert_eq!(region.stats().published, n);
}

#[test]
fn an_image_folder_plays_as_a_video_through_one_region() {
    let exp = expected();
    let images = exp["images"].as_array().unwrap();
    // Sorted by name: cat, coffee, rocket, as in expected.json.
    let src = ImageFiles::open(&[fixtures().join("images")], 10.0).unwrap();
    assert_eq!(src.len(), images.len());
    let mut r = VisionRegion::new(&cfg("vision", 10.0), Box::new(src), ShedLevel::new()).unwrap();
    for (k, img) in images.iter().enumerate() {
        let e = r.step(k as u64 * 100_000_000).unwrap().unwrap();
        assert_eq!(e.seq, k as u64);
        let d = max_diff(e.vector, &floats(&img["embedding"]));
        assert!(d < TOL, "frame {k}: {d}");
    }
    assert_eq!(r.stats().inferences, images.len() as u64);
}
