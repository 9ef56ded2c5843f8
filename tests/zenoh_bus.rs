//! The zenoh bus between processes' sessions (here: sessions in one test process, over TCP
//! loopback with multicast scouting off, so nothing leaves this machine): embeddings reach the
//! integrator's slots, bad samples are dropped and counted per source, and with authentication
//! only operators can publish on the drive keys.

use brainloop::bus::rmw_zenoh::Attachment;
use brainloop::bus::slots::{EmbeddingRef, InputSlots};
use brainloop::bus::zenoh::{net_topics, Auth, ZenohBus, ZenohOptions};
use brainloop::bus::{topics, Bus, LocalBus};
use brainloop::msg::{RegionId, TeleopCommand};
use brainloop::util::monotonic_ns;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use zenoh::Wait;

mod up_common;
use up_common::free_port;

fn pair(auth: (Option<Auth>, Option<Auth>)) -> (ZenohBus, ZenohBus) {
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let (aa, ab) = auth;
    let a = ZenohBus::open(
        &ZenohOptions {
            listen: vec![ep.clone()],
            auth: aa,
            ..Default::default()
        },
        "integrator",
        monotonic_ns,
    )
    .unwrap();
    let b = ZenohBus::open(
        &ZenohOptions {
            connect: vec![ep],
            auth: ab,
            ..Default::default()
        },
        "peer",
        monotonic_ns,
    )
    .unwrap();
    (a, b)
}

/// Repeat `step` until `done` or 10 s.
fn eventually(mut step: impl FnMut(), mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        step();
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn embeddings_reach_the_slot_and_bad_samples_are_counted_never_fused() {
    let (a, b) = pair((None, None));
    let mut dims = [0; RegionId::COUNT];
    dims[RegionId::Language.index()] = 4;
    let slots = InputSlots::new(dims);
    let stats = a
        .feed_slot(
            RegionId::Language,
            slots.writer(RegionId::Language).unwrap(),
        )
        .unwrap();
    let mut p = b.embedding_publisher(RegionId::Language).unwrap();
    let v = [0.1f32, 0.2, 0.3, 0.4];
    let mut seq = 0;
    let ok = eventually(
        || {
            seq += 1;
            p.publish(&EmbeddingRef {
                seq,
                stamp_ns: monotonic_ns(),
                model_id: 7,
                vector: &v,
                grid: [0; 3],
                spatial: &[],
            });
        },
        || slots.stats(RegionId::Language).published > 0,
    );
    assert!(ok, "no embedding arrived: {:?}", stats.snapshot());
    let before = stats.snapshot();
    let published = slots.stats(RegionId::Language).published;

    // Raw samples on the same key from another publisher: each bad in its own way.
    let key = a.keys().embedding(RegionId::Language);
    let raw = b.session().declare_publisher(key).wait().unwrap();
    let att = |seq: i64| {
        Attachment {
            sequence_number: seq,
            source_timestamp: monotonic_ns() as i64,
            gid: brainloop::bus::rmw_zenoh::Gid([9; 16]),
        }
        .encode()
        .to_vec()
    };
    let good = {
        let mut buf = Vec::new();
        brainloop::bus::wire::EmbeddingMsg::encode_ref_into(
            "language",
            &EmbeddingRef {
                seq: 1,
                stamp_ns: 0,
                model_id: 7,
                vector: &v,
                grid: [0; 3],
                spatial: &[],
            },
            &mut buf,
        );
        buf
    };
    let encode = |vector: &[f32], region: &str| {
        let mut buf = Vec::new();
        brainloop::bus::wire::EmbeddingMsg::encode_ref_into(
            region,
            &EmbeddingRef {
                seq: 1,
                stamp_ns: 0,
                model_id: 7,
                vector,
                grid: [0; 3],
                spatial: &[],
            },
            &mut buf,
        );
        buf
    };
    // 1. no attachment
    raw.put(good.clone()).wait().unwrap();
    // 2. garbage
    raw.put(vec![0xff; 64]).attachment(att(1)).wait().unwrap();
    // 3. a huge length prefix (the header's frame_id: after the 4-byte encapsulation and the
    // stamp's 8 bytes)
    let mut huge = good.clone();
    huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    raw.put(huge).attachment(att(2)).wait().unwrap();
    // 4. wrong dimensions (the slot refuses)
    raw.put(encode(&[1.0; 3], "language"))
        .attachment(att(3))
        .wait()
        .unwrap();
    // 5. non-finite values
    raw.put(encode(&[f32::NAN, 0.0, 0.0, 0.0], "language"))
        .attachment(att(4))
        .wait()
        .unwrap();
    // 6. another region's embedding on this key
    raw.put(encode(&v, "vision"))
        .attachment(att(5))
        .wait()
        .unwrap();
    // 7. a good one, then 8. its replay
    raw.put(good.clone()).attachment(att(6)).wait().unwrap();
    raw.put(good).attachment(att(6)).wait().unwrap();
    let arrived = eventually(
        || {},
        || {
            let s = stats.snapshot();
            s.rejected - before.rejected >= 7 && s.received > before.received
        },
    );
    let s = stats.snapshot();
    assert!(arrived, "{before:?} -> {s:?}");
    assert_eq!(s.rejected - before.rejected, 7, "{s:?}");
    assert_eq!(s.replayed - before.replayed, 1, "{s:?}");
    // Only the good raw sample reached the slot, beside the publisher's own.
    assert_eq!(
        slots.stats(RegionId::Language).published,
        published + (s.received - before.received),
    );
}

fn files(dir: &std::path::Path) -> std::path::PathBuf {
    let dict = dir.join("users.txt");
    std::fs::write(
        &dict,
        "brain:brain-secret\noperator:op-secret\nobserver:obs-secret\n",
    )
    .unwrap();
    dict
}

fn auth(user: &str, password: &str, dict: &std::path::Path) -> Auth {
    Auth {
        user: user.into(),
        password: password.into(),
        dictionary_file: dict.to_path_buf(),
        operators: vec!["brain".into(), "operator".into()],
    }
}

/// The brain's node listens with authentication; a teleop command reaches its mux input only
/// from an operator.
fn drive_from(user: Option<(&str, &str)>) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let dict = files(dir.path());
    let (a, b) = pair((
        Some(auth("brain", "brain-secret", &dict)),
        user.map(|(u, p)| auth(u, p, &dict)),
    ));
    let local = LocalBus::new();
    let sub = local.subscribe(topics::TELEOP_CONSOLE, 64);
    let stats = a
        .route_in(&local, topics::TELEOP_CONSOLE, net_topics::TELEOP_CONSOLE)
        .unwrap();
    let mut p = b.publisher(&net_topics::TELEOP_CONSOLE).unwrap();
    let mut buf = Vec::new();
    use brainloop::bus::zenoh::Wire;
    TeleopCommand::Release.encode(&mut buf);
    let mut got = 0u64;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(4) {
        p.put(&buf);
        while sub.try_recv().is_some() {
            got += 1;
        }
        if got > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (got, stats.received.load(Ordering::Relaxed))
}

#[test]
fn only_authenticated_operators_drive() {
    let (got, _) = drive_from(Some(("operator", "op-secret")));
    assert!(got > 0, "an operator's command did not arrive");
    let (got, n) = drive_from(Some(("observer", "obs-secret")));
    assert_eq!((got, n), (0, 0), "a non-operator drove");
    let (got, n) = drive_from(Some(("operator", "wrong-password")));
    assert_eq!((got, n), (0, 0), "a wrong password drove");
    let (got, n) = drive_from(None);
    assert_eq!((got, n), (0, 0), "a peer without credentials drove");
}
