//! `bench bus` across processes: the zenoh subscriber runs in a child `brainloop` (the real
//! executable, re-invoked with the hidden `bench bus --peer`), over TCP loopback with multicast
//! scouting off; the child is stopped by its pid when the run ends.

use brainloop::experiment::bus_bench::{self, BusBenchOptions, Payload, PeerProcess, Transport};

#[test]
fn zenoh_subscriber_in_a_child_process_reports_and_is_stopped() {
    let opts = BusBenchOptions {
        seconds: 0.3,
        warmup_s: 0.2,
        flood_s: 0.1,
        rate_hz: 200.0,
        payloads: vec![Payload::Embedding384, Payload::Frame],
        transports: vec![Transport::Zenoh],
        peer: PeerProcess::Child(env!("CARGO_BIN_EXE_brainloop").into()),
    };
    let r = bus_bench::run(&opts).unwrap();
    for p in [Payload::Embedding384, Payload::Frame] {
        let c = r
            .case(Transport::Zenoh, p)
            .unwrap_or_else(|| panic!("no zenoh {} case: {}", p.name(), r.zenoh));
        assert!(c.sent > 0 && c.received > 0, "{c:?}");
        assert!(c.latency_us.samples > 0 && c.latency_us.p50 > 0.0, "{c:?}");
        assert!(c.setup.contains("child pid"), "{c:?}");
    }
    assert_eq!(r.zenoh["multicast_scouting"], false);
    let endpoint = r.zenoh["endpoint"].as_str().unwrap();
    assert!(endpoint.starts_with("tcp/127.0.0.1:"), "{endpoint}");
    // The child is gone (reaped) once the run returns.
    let pid = r.zenoh["subscriber_pid"].as_u64().expect("child pid");
    assert!(pid as u32 != std::process::id());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "child {pid} still running"
    );
}
