//! `bench console` end to end: the real executable runs a child brain (`run --body kinematic`
//! over TCP loopback), attaches a console to it for one phase and reports. Only the report's
//! shape is checked (every figure present and finite, key-to-wheel measured, the child gone):
//! the machines here are noisy, so timing claims live in the bench's output, not in tests.

use serde_json::Value;

fn finite(v: &Value, path: &str) -> f64 {
    let mut x = v;
    for k in path.split('.') {
        x = x
            .get(k)
            .unwrap_or_else(|| panic!("{path}: no {k:?} in {v:#}"));
    }
    let f = x
        .as_f64()
        .unwrap_or_else(|| panic!("{path}: not a number: {x}"));
    assert!(f.is_finite(), "{path}: {f}");
    f
}

#[test]
fn bench_console_reports_jitter_with_and_without_and_key_to_wheel() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_brainloop"))
        .args(["bench", "console", "--seconds", "2", "--json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run brainloop bench console");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench console failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    for k in [
        "jitter_p99_us.without",
        "jitter_p99_us.with",
        "jitter_p99_us.ratio",
        "missed.without",
        "missed.with",
        "compute_p99_us.without",
        "compute_p99_us.with",
        "key_to_wheel_ms.p50",
        "key_to_wheel_ms.p99",
        "key_to_wheel_ms.max",
        "key_to_wheel_ms.n",
        "release_to_stop_ms.p50",
        "release_to_stop_ms.p99",
        "release_to_stop_ms.max",
        "release_to_stop_ms.n",
    ] {
        finite(&r, k);
    }
    assert!(finite(&r, "key_to_wheel_ms.n") > 0.0, "{r:#}");
    assert!(finite(&r, "jitter_p99_us.without") > 0.0, "{r:#}");
    let phases = r["phases"].as_array().expect("phases");
    let names: Vec<&str> = phases.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["A", "B", "C"]);
    assert_eq!(
        phases
            .iter()
            .map(|p| p["console"] == true)
            .collect::<Vec<_>>(),
        [false, true, false]
    );
    for p in phases {
        assert!(p["windows"].as_u64().unwrap_or(0) > 0, "{p}");
    }
    assert!(r["console"]["frames"].as_u64().unwrap_or(0) > 0, "{r:#}");
    let endpoint = r["endpoint"].as_str().unwrap_or_default();
    assert!(endpoint.starts_with("tcp/127.0.0.1:"), "{endpoint}");
    // The child brain is stopped and reaped once the bench returns.
    let pid = r["brain_pid"].as_u64().expect("brain pid");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "brain {pid} still running"
    );
}
