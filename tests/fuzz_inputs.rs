//! Bounded property-based fuzzing (proptest, no nightly needed) of the byte streams the brain
//! reads: the config loader, the scenario loader, the connector loader, the bus message
//! decoders and the serial frame decoder. Every input, however wrong, gives a value or an error:
//! never a panic, a hang or a non-finite value accepted. The console line parser is fuzzed
//! beside it in `src/robot.rs` (it is private there). Cases per property: `FUZZ_CASES`
//! (default 1000); failing inputs proptest finds are kept in `tests/fuzz_inputs.proptest-regressions`.

use brainloop::bus::wire::{EmbeddingMsg, ImageMsg, LoopHealthMsg, RegionFreshnessMsg};
use brainloop::bus::zenoh::Wire;
use brainloop::config::Config;
use brainloop::msg::{BodyState, BrainStatus, Instruction, TeleopCommand, Twist, WheelSpeeds};
use brainloop::sim::scenario::Scenario;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}

fn default_toml() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml")).unwrap()
}

fn scenario_toml() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/06-orange-cylinder-behind-wall.toml"
    ))
    .unwrap()
}

/// Mutate a text: replace the value after one `=` with one of a set of hostile values, or
/// splice random bytes in.
fn mutate(text: &str, line: usize, pick: usize, junk: &[u8]) -> String {
    const VALUES: &[&str] = &[
        "nan",
        "inf",
        "-inf",
        "-1",
        "0",
        "1e300",
        "\"\"",
        "\"../../etc/passwd\"",
        "[]",
        "[nan, 1, 2, 3]",
        "{}",
        "true",
        "18446744073709551615",
        "-9223372036854775808",
        "\"\u{0}\"",
    ];
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len().max(1);
    let i = line % n;
    if let Some(l) = lines.get_mut(i) {
        if let Some(eq) = l.find('=') {
            let key = l[..eq].to_string();
            *l = format!("{key}= {}", VALUES[pick % VALUES.len()]);
        } else {
            l.push_str(&String::from_utf8_lossy(junk));
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Any text: a config or errors, never a panic; a config that loads validates clean and
    /// has finite numbers where the brain reads them.
    #[test]
    fn config_loader_takes_any_text(text in "\\PC{0,400}") {
        if let Ok(c) = Config::parse(&text) {
            prop_assert!(c.validate().is_empty());
            prop_assert!(c.integrator.rate_hz.is_finite());
        }
    }

    #[test]
    fn config_loader_takes_any_mutation_of_the_default(line in 0usize..400, pick in 0usize..64, junk in proptest::collection::vec(any::<u8>(), 0..16)) {
        let text = mutate(&default_toml(), line, pick, &junk);
        if let Ok(c) = Config::parse(&text) {
            prop_assert!(c.validate().is_empty(), "{text}");
            let d = &c.drowsiness;
            prop_assert!(d.slow_threshold < d.sleep_threshold);
            prop_assert!(c.limits.max_linear_mps.is_finite() && c.limits.max_angular_rps.is_finite());
        }
    }

    /// Scenario files: a scenario or an error; one that loads lays out in bounded time for any
    /// seed (walls and objects are bounded).
    #[test]
    fn scenario_loader_takes_any_text(text in "\\PC{0,300}") {
        let _ = Scenario::parse(&text, "fuzz.toml", "fuzz");
    }

    #[test]
    fn scenario_loader_takes_any_mutation(line in 0usize..40, pick in 0usize..64, junk in proptest::collection::vec(any::<u8>(), 0..16), seed in any::<u64>()) {
        let text = mutate(&scenario_toml(), line, pick, &junk);
        if let Ok(s) = Scenario::parse(&text, "fuzz.toml", "fuzz") {
            prop_assert!(!s.instruction.trim().is_empty());
            if let Ok(l) = s.layout(seed % 1000) {
                prop_assert!(l.start.0.is_finite() && l.start.1.is_finite());
            }
        }
    }

    /// Bus messages: any payload decodes to a value or a rejection; every value decoded is
    /// finite where the brain does arithmetic on it.
    #[test]
    fn bus_decoders_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(t) = Twist::decode(&bytes) {
            prop_assert!(t.is_finite());
        }
        if let Ok(w) = WheelSpeeds::decode(&bytes) {
            prop_assert!(w.left.is_finite() && w.right.is_finite());
        }
        if let Ok(TeleopCommand::Drive(t)) = TeleopCommand::decode(&bytes) {
            prop_assert!(t.is_finite());
        }
        let _ = f32::decode(&bytes);
        let _ = Instruction::decode(&bytes);
        let _ = BrainStatus::decode(&bytes);
        let _ = BodyState::decode(&bytes);
        let mut e = EmbeddingMsg::default();
        if e.decode_into(&bytes).is_ok() {
            prop_assert!(e.data.iter().all(|v| v.is_finite()));
        }
        let _ = EmbeddingMsg::from_cdr(&bytes);
        let _ = RegionFreshnessMsg::from_cdr(&bytes);
        let _ = LoopHealthMsg::from_cdr(&bytes);
        let _ = ImageMsg::from_cdr(&bytes);
        let _ = brainloop::bus::rmw_zenoh::Attachment::decode(&bytes);
    }

    /// Valid CDR headers with garbage after them reach deeper into the decoders.
    #[test]
    fn bus_decoders_take_garbage_after_a_valid_header(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = vec![0x00, 0x01, 0x00, 0x00];
        bytes.extend_from_slice(&tail);
        let mut e = EmbeddingMsg::default();
        if e.decode_into(&bytes).is_ok() {
            prop_assert!(e.data.iter().all(|v| v.is_finite()));
        }
        let _ = LoopHealthMsg::from_cdr(&bytes);
        let _ = RegionFreshnessMsg::from_cdr(&bytes);
        let _ = ImageMsg::from_cdr(&bytes);
        if let Ok(t) = Twist::decode(&bytes) {
            prop_assert!(t.is_finite());
        }
    }

    /// The serial frame decoder: any byte stream yields frames or errors, and a valid frame
    /// after garbage and a delimiter is still decoded.
    #[test]
    fn serial_decoder_takes_any_bytes_and_resynchronises(junk in proptest::collection::vec(any::<u8>(), 0..600)) {
        use brainloop::link::codec::{encode_frame, FrameDecoder, Message, MAX_FRAME};
        let mut d = FrameDecoder::new();
        for &b in &junk {
            let _ = d.push(b);
        }
        let _ = d.push(0);
        let mut buf = [0u8; MAX_FRAME];
        let n = encode_frame(7, &Message::Estop, &mut buf);
        let mut got = None;
        for &b in &buf[..n] {
            if let Some(r) = d.push(b) {
                got = Some(r);
            }
        }
        prop_assert!(matches!(got, Some(Ok(ref f)) if f.msg == Message::Estop), "{got:?}");
    }

    /// Connector files: any bytes (with a checksum that matches them) load or fail, and a
    /// connector that loads projects finite values.
    #[test]
    fn connector_loader_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256), head in any::<bool>()) {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.bin");
        let mut b = if head { b"BLCONN01".to_vec() } else { Vec::new() };
        b.extend_from_slice(&bytes);
        std::fs::write(&p, &b).unwrap();
        let digest: String = sha2::Sha256::digest(&b).iter().map(|x| format!("{x:02x}")).collect();
        std::fs::write(brainloop::grounding::connector::checksum_path(&p), format!("{digest}  c.bin\n")).unwrap();
        let _ = brainloop::grounding::connector::AlignConnector::load(&p);
        let p2 = dir.path().join("i.bin");
        let mut b2 = b"BLCN\x01\x00\x00\x00".to_vec();
        b2.extend_from_slice(&bytes);
        std::fs::write(&p2, &b2).unwrap();
        if let Ok(c) = brainloop::integrator::connector::Connector::load(&p2, 8) {
            let x = vec![0.5f32; c.in_dim()];
            let mut out = vec![0f32; 8];
            c.project(&x, &mut out);
            prop_assert!(out.iter().all(|v| v.is_finite()));
        }
    }
}
