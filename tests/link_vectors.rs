//! The Rust codec against the shared byte-exact vectors in `firmware/test_vectors.txt`, which
//! the C firmware tests (`firmware/test/test_core.c`) read too.

use brainloop::link::codec::{
    cobs_decode, cobs_encode, crc16, decode_frame, encode_frame_vec, encode_payload, FrameDecoder,
    Message, MAX_PAYLOAD,
};

fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Canonical `kind:k=v,...` text, identical to `describe()` in the C tests.
fn describe(m: &Message) -> String {
    match m {
        Message::SetWheels { left, right } => format!("set_wheels:left={left},right={right}"),
        Message::Heartbeat => "heartbeat:-".into(),
        Message::Estop => "estop:-".into(),
        Message::ClearEstop => "clear_estop:-".into(),
        Message::InfoRequest => "info_request:-".into(),
        Message::SetParams(p) => format!(
            "set_params:kp={},ki={},kd={},kf={},pwm_limit={},watchdog_ms={}",
            p.kp, p.ki, p.kd, p.kf, p.pwm_limit, p.watchdog_ms
        ),
        Message::Telemetry(t) => format!(
            "telemetry:time_ms={},enc0={},enc1={},speed0={},speed1={},pwm0={},pwm1={},battery_mv={},faults={},last_seq={},rx_errors={}",
            t.time_ms, t.enc[0], t.enc[1], t.speed[0], t.speed[1], t.pwm[0], t.pwm[1],
            t.battery_mv, t.faults, t.last_seq, t.rx_errors
        ),
        Message::Info(i) => format!(
            "info:proto={},fw0={},fw1={},fw2={},build_id={},reset_cause={}",
            i.proto, i.fw[0], i.fw[1], i.fw[2], i.build_id, i.reset_cause
        ),
        Message::Nack { seq, reason } => format!("nack:seq={seq},reason={}", reason.code()),
    }
}

#[test]
fn shared_vectors() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/firmware/test_vectors.txt");
    let text = std::fs::read_to_string(path).expect("firmware/test_vectors.txt");
    let (mut crc, mut cobs, mut frames, mut bad) = (0, 0, 0, 0);
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f[0] {
            "crc" => {
                assert_eq!(
                    crc16(&unhex(f[1])),
                    u16::from_str_radix(f[2], 16).unwrap(),
                    "{line}"
                );
                crc += 1;
            }
            "cobs" => {
                let raw = unhex(f[1]);
                let enc = unhex(f[2]);
                let mut out = vec![0u8; raw.len() + raw.len() / 254 + 1];
                let n = cobs_encode(&raw, &mut out);
                assert_eq!(&out[..n], &enc[..], "cobs encode {}", f[1]);
                let mut back = vec![0u8; raw.len() + 1];
                let m = cobs_decode(&enc, &mut back).unwrap();
                assert_eq!(&back[..m], &raw[..], "cobs decode {}", f[2]);
                cobs += 1;
            }
            "frame" => {
                let (name, seq, fields) = (f[1], f[2].parse::<u16>().unwrap(), f[3]);
                let payload = unhex(f[4]);
                let wire = unhex(f[5]);
                let mut dec = FrameDecoder::new();
                let mut got = Vec::new();
                dec.feed(&wire, |r| got.push(r));
                assert_eq!(got.len(), 1, "{name}");
                let frame = got[0].expect(name);
                assert_eq!(frame.seq, seq, "{name}");
                assert_eq!(describe(&frame.msg), fields, "{name}");
                let mut p = [0u8; MAX_PAYLOAD];
                let n = encode_payload(seq, &frame.msg, &mut p);
                assert_eq!(&p[..n], &payload[..], "{name} payload");
                assert_eq!(encode_frame_vec(seq, &frame.msg), wire, "{name} wire");
                frames += 1;
            }
            "bad" => {
                let reason: u8 = f[2].parse().unwrap();
                let wire = unhex(f[3]);
                let mut dec = FrameDecoder::new();
                let mut got = Vec::new();
                dec.feed(&wire, |r| got.push(r));
                assert_eq!(got.len(), 1, "{}", f[1]);
                let err = got[0].expect_err(f[1]);
                assert_eq!(err.nack_reason().code(), reason, "{}: {err}", f[1]);
                if wire.len() <= 52 {
                    assert!(decode_frame(&wire[..wire.len() - 1]).is_err());
                }
                bad += 1;
            }
            other => panic!("unknown vector kind {other}"),
        }
    }
    assert!(crc >= 1 && cobs >= 1 && frames >= 10 && bad >= 5);
}
