//! `brainloop up` as a user runs it: the graph as processes on the zenoh bus (TCP loopback,
//! multicast off: nothing leaves this machine). A region killed mid-run is restarted by the
//! supervisor and is back on the bus within 3 s; Ctrl-C stops every process it started.

use brainloop::bus::rmw_zenoh::Attachment;
use brainloop::bus::zenoh::{ZenohBus, ZenohOptions};
use brainloop::msg::RegionId;
use brainloop::util::monotonic_ns;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zenoh::Wait;

const BIN: &str = env!("CARGO_BIN_EXE_brainloop");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Child processes of `pid` (started from any of its threads) and their command lines.
fn children(pid: u32) -> Vec<(u32, String)> {
    let mut list = String::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        list += &std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        list.push(' ');
    }
    list.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .map(|p: u32| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            (p, String::from_utf8_lossy(&cmd).replace('\0', " "))
        })
        .collect()
}

/// Stops `up` (SIGINT) and waits for it; kills it if it hangs.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGINT);
        }
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_killed_region_is_restarted_and_back_on_the_bus_within_3_s() {
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let up = Up(Command::new(BIN)
        .args(["up", "--body", "kinematic", "--listen", &ep])
        .args(["--instruction", "go to the red ball"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    // Watch the proprioception region's embeddings as any zenoh peer would.
    let watcher = ZenohBus::open(
        &ZenohOptions {
            connect: vec![ep.clone()],
            ..Default::default()
        },
        "test",
        monotonic_ns,
    )
    .unwrap();
    let seen: Arc<Mutex<Vec<(u64, brainloop::bus::rmw_zenoh::Gid)>>> = Arc::default();
    let s2 = seen.clone();
    let _sub = watcher
        .session()
        .declare_subscriber(watcher.keys().embedding(RegionId::Proprioception))
        .callback(move |sample| {
            if let Some(a) = sample.attachment() {
                if let Ok(a) = Attachment::decode(&a.to_bytes()) {
                    s2.lock().unwrap().push((monotonic_ns(), a.gid));
                }
            }
        })
        .wait()
        .unwrap();
    let wait_for = |n: usize, secs: u64| {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end && seen.lock().unwrap().len() < n {
            std::thread::sleep(Duration::from_millis(20));
        }
        seen.lock().unwrap().len() >= n
    };
    assert!(wait_for(20, 60), "no proprioception embeddings on the bus");
    let kids = children(up.0.id());
    let names: Vec<_> = kids.iter().map(|k| k.1.clone()).collect();
    assert!(
        kids.len() >= 3 && kids.iter().all(|k| k.1.contains(" node ")),
        "{names:?}"
    );
    let (pid, _) = kids
        .iter()
        .find(|k| k.1.contains("node proprioception"))
        .unwrap()
        .clone();
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    let killed_at = monotonic_ns();
    let old_gid = seen.lock().unwrap().last().unwrap().1;
    // Back: a new publisher (new GID) on the same key.
    let end = Instant::now() + Duration::from_secs(10);
    let mut back = None;
    while Instant::now() < end && back.is_none() {
        back = seen
            .lock()
            .unwrap()
            .iter()
            .find(|(t, g)| *t > killed_at && *g != old_gid)
            .map(|(t, _)| *t);
        std::thread::sleep(Duration::from_millis(10));
    }
    let back = back.expect("the region did not come back within 10 s");
    let gap_s = (back - killed_at) as f64 * 1e-9;
    println!("proprioception back on the bus {gap_s:.2} s after SIGKILL");
    assert!(gap_s < 3.0, "back after {gap_s:.2} s");
    // The other nodes were not restarted.
    let after = children(up.0.id());
    for (p, cmd) in &kids {
        if *p != pid {
            assert!(after.iter().any(|a| a.0 == *p), "{cmd} was restarted");
        }
    }
    // Ctrl-C stops exactly what up started.
    let all: Vec<u32> = after.iter().map(|a| a.0).collect();
    drop(up);
    std::thread::sleep(Duration::from_millis(200));
    for p in all {
        let alive = std::fs::metadata(format!("/proc/{p}")).is_ok()
            && !std::fs::read_to_string(format!("/proc/{p}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "node {p} outlived up");
    }
}
