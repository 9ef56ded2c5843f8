//! The brain's own messages and rmw_zenoh attachments against test vectors written by
//! independent encoders (rosbags with ros/brainloop_msgs registered, and eclipse-zenoh's
//! serializer): `scripts/ros2/gen_msg_fixtures.py` -> `tests/fixtures/wire/cases.json`.
use brainloop::bus::rmw_zenoh::{self, Attachment, Gid};
use brainloop::bus::wire::{
    EmbeddingMsg, Header, LoopHealthMsg, RegionFreshnessMsg, WireMessage, SCHEMA_VERSION,
};
use serde_json::Value;

fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/wire/cases.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| u64_of(x) as u32)
        .collect()
}

fn header(v: &Value) -> Header {
    Header {
        stamp_sec: v["stamp_sec"].as_i64().unwrap() as i32,
        stamp_nanosec: u64_of(&v["stamp_nanosec"]) as u32,
        frame_id: v["frame_id"].as_str().unwrap().into(),
    }
}

fn embedding(f: &Value) -> EmbeddingMsg {
    EmbeddingMsg {
        header: header(&f["header"]),
        schema_version: u64_of(&f["schema_version"]) as u16,
        region: f["region"].as_str().unwrap().into(),
        model_id: u64_of(&f["model_id"]) as u32,
        sequence: u64_of(&f["sequence"]),
        shape: u32s(&f["shape"]),
        data: f32s(&f["data"]),
        spatial_shape: u32s(&f["spatial_shape"]),
        spatial: f32s(&f["spatial"]),
    }
}

fn freshness(f: &Value) -> RegionFreshnessMsg {
    RegionFreshnessMsg {
        region: f["region"].as_str().unwrap().into(),
        fresh: f["fresh"].as_bool().unwrap(),
        age_ms: f["age_ms"].as_f64().unwrap(),
        rate_hz: f["rate_hz"].as_f64().unwrap(),
        latency_ms: f["latency_ms"].as_f64().unwrap(),
        received: u64_of(&f["received"]),
        gaps: u64_of(&f["gaps"]),
        rejected: u64_of(&f["rejected"]),
        restarts: u64_of(&f["restarts"]) as u32,
    }
}

fn health(f: &Value) -> LoopHealthMsg {
    let g = |k: &str| f[k].as_f64().unwrap();
    LoopHealthMsg {
        header: header(&f["header"]),
        schema_version: u64_of(&f["schema_version"]) as u16,
        rate_hz: g("rate_hz"),
        period_us: g("period_us"),
        jitter_p50_us: g("jitter_p50_us"),
        jitter_p99_us: g("jitter_p99_us"),
        jitter_max_us: g("jitter_max_us"),
        compute_p99_us: g("compute_p99_us"),
        ticks: u64_of(&f["ticks"]),
        missed: u64_of(&f["missed"]),
        drowsiness: g("drowsiness") as f32,
        speed_scale: g("speed_scale") as f32,
        shed_level: u64_of(&f["shed_level"]) as u8,
        sleeps: u64_of(&f["sleeps"]) as u32,
        mode: f["mode"].as_str().unwrap().into(),
        regions: f["regions"]
            .as_array()
            .unwrap()
            .iter()
            .map(freshness)
            .collect(),
    }
}

/// Encode `m` and compare with rosbags' bytes; decode rosbags' bytes back to `m`.
fn check<M: WireMessage + PartialEq + std::fmt::Debug>(name: &str, m: M, want: &str) {
    assert_eq!(hex(&m.to_cdr()), want, "encoding of {name}");
    let mut reused = vec![0xAA; 7];
    m.encode_into(&mut reused);
    assert_eq!(hex(&reused), want, "encode_into of {name}");
    assert_eq!(M::from_cdr(&unhex(want)).unwrap(), m, "decoding of {name}");
}

#[test]
fn messages_match_rosbags_both_ways() {
    let j = fixture();
    assert_eq!(
        j["schema_version"].as_u64(),
        Some(u64::from(SCHEMA_VERSION))
    );
    let cases = j["cases"].as_array().unwrap();
    let mut kinds = [0usize; 3];
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let want = c["hex"].as_str().unwrap();
        let f = &c["fields"];
        match c["type"].as_str().unwrap() {
            t if t == EmbeddingMsg::TYPE_NAME => {
                kinds[0] += 1;
                let m = embedding(f);
                // Built from what a region hands its slot, the bytes are the same.
                let mut out = Vec::new();
                EmbeddingMsg::encode_ref_into(&m.region, &m.embedding_ref(), &mut out);
                assert_eq!(hex(&out), want, "encode_ref_into of {name}");
                assert_eq!(
                    EmbeddingMsg::from_ref(&m.region, &m.embedding_ref()),
                    m,
                    "from_ref of {name}"
                );
                let mut reused = EmbeddingMsg::default();
                assert_eq!(
                    reused.decode_into(&unhex(want)).map(|r| r.name()),
                    Ok(m.region.as_str())
                );
                check(name, m, want);
            }
            t if t == RegionFreshnessMsg::TYPE_NAME => {
                kinds[1] += 1;
                check(name, freshness(f), want);
            }
            t if t == LoopHealthMsg::TYPE_NAME => {
                kinds[2] += 1;
                check(name, health(f), want);
            }
            other => panic!("unexpected type {other}"),
        }
    }
    assert!(kinds.iter().all(|&k| k >= 2), "{kinds:?}");
}

#[test]
fn the_vision_case_has_a_2x2x3_grid_and_the_language_case_none() {
    let j = fixture();
    let get = |n: &str| {
        let c = j["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap();
        EmbeddingMsg::from_cdr(&unhex(c["hex"].as_str().unwrap())).unwrap()
    };
    let v = get("vision_grid_2x2x3").embedding_ref().grid;
    assert_eq!(v, [2, 2, 3]);
    let l = get("language_no_spatial");
    assert_eq!(l.embedding_ref().grid, [0, 0, 0]);
    assert!(l.embedding_ref().spatial.is_empty());
}

#[test]
fn type_hashes_match_rosbags() {
    let j = fixture();
    let hashes = j["type_hashes"].as_object().unwrap();
    assert_eq!(hashes.len(), rmw_zenoh::TYPE_HASHES.len());
    for (t, h) in rmw_zenoh::TYPE_HASHES {
        assert_eq!(hashes[t].as_str(), Some(h), "{t} drifted");
    }
    assert_eq!(
        rmw_zenoh::type_hash(EmbeddingMsg::TYPE_NAME),
        Some(rmw_zenoh::type_hash::EMBEDDING)
    );
    assert_eq!(
        rmw_zenoh::type_hash(LoopHealthMsg::TYPE_NAME),
        Some(rmw_zenoh::type_hash::LOOP_HEALTH)
    );
    for t in [EmbeddingMsg::TYPE_NAME, LoopHealthMsg::TYPE_NAME] {
        let dds = rmw_zenoh::dds_type_name(t).unwrap();
        assert!(dds.starts_with("brainloop_msgs::msg::dds_::"), "{dds}");
    }
    assert_eq!(
        rmw_zenoh::dds_type_name(EmbeddingMsg::TYPE_NAME).as_deref(),
        Some(EmbeddingMsg::DDS_TYPE_NAME)
    );
}

#[test]
fn attachments_match_zenohs_serializer() {
    let j = fixture();
    let cases = j["attachments"].as_array().unwrap();
    assert!(cases.len() >= 3);
    for c in cases {
        let mut gid = [0u8; 16];
        gid.copy_from_slice(&unhex(c["gid"].as_str().unwrap()));
        let a = Attachment {
            sequence_number: c["sequence_number"].as_i64().unwrap(),
            source_timestamp: c["source_timestamp_ns"].as_i64().unwrap(),
            gid: Gid(gid),
        };
        let want = c["hex"].as_str().unwrap();
        assert_eq!(hex(&a.encode()), want);
        assert_eq!(Attachment::decode(&unhex(want)), Ok(a));
    }
}
