//! brainloop's CDR encoder against test vectors written by an independent encoder (rosbags).
use brainloop::bus::cdr::{RosBool, RosFloat32, RosMessage, RosString};
use brainloop::msg::Twist;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn cdr_matches_rosbags() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cdr/cases.json"
    ))
    .unwrap();
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = j["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for c in cases {
        let f = &c["fields"];
        let want = c["hex"].as_str().unwrap();
        let got = match c["type"].as_str().unwrap() {
            "geometry_msgs/msg/Twist" => {
                let t = Twist {
                    linear: f["linear"][0].as_f64().unwrap(),
                    angular: f["angular"][2].as_f64().unwrap(),
                };
                let bytes = t.to_cdr();
                assert_eq!(Twist::from_cdr(&bytes).unwrap(), t);
                bytes
            }
            "std_msgs/msg/String" => {
                let m = RosString(f["data"].as_str().unwrap().to_string());
                let bytes = m.to_cdr();
                assert_eq!(RosString::from_cdr(&bytes).unwrap(), m);
                bytes
            }
            "std_msgs/msg/Bool" => RosBool(f["data"].as_bool().unwrap()).to_cdr(),
            "std_msgs/msg/Float32" => RosFloat32(f["data"].as_f64().unwrap() as f32).to_cdr(),
            other => panic!("unexpected type {other}"),
        };
        assert_eq!(hex(&got), want, "case {}", c["name"]);
    }
}
