//! The child processes a command started, by pid, so that SIGINT / SIGTERM stops exactly those
//! before the command exits, and none outlives it.
//!
//! Commands whose figures mean nothing when cut short (the benchmarks: their ratios are measured
//! side by side) call [`exit_on_signal`]; every place that spawns a helper process calls
//! [`tracked`] on the `Command` (which also asks the kernel to stop the child if this process
//! dies without a chance to clean up) and [`track`] / [`untrack`] around its life. Not for the
//! real-time path: the registry takes a mutex.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Remember `pid` as a child to stop on a signal.
pub fn track(pid: u32) {
    if let Ok(mut c) = CHILDREN.lock() {
        if !c.contains(&pid) {
            c.push(pid);
        }
    }
}

/// Forget `pid` (it was stopped and reaped).
pub fn untrack(pid: u32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.retain(|p| *p != pid);
    }
}

/// The pids tracked now.
pub fn tracked_pids() -> Vec<u32> {
    CHILDREN.lock().map(|c| c.clone()).unwrap_or_default()
}

/// Ask the kernel to send SIGTERM to the child started by `cmd` when this process dies, e.g. by
/// SIGKILL, so that no helper process is left behind.
pub fn tracked(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child's own process attributes.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        })
    }
}

/// Send `signal` to each pid, then wait up to `grace` for them to exit; those still running get
/// SIGKILL. Returns how many had to be killed.
pub fn stop_all(pids: &[u32], grace: Duration) -> usize {
    for &p in pids {
        // SAFETY: plain syscall on a pid this process started.
        unsafe { libc::kill(p as i32, libc::SIGTERM) };
    }
    let end = Instant::now() + grace;
    let mut left: Vec<u32> = pids.to_vec();
    while !left.is_empty() && Instant::now() < end {
        left.retain(|&p| running(p));
        std::thread::sleep(Duration::from_millis(20));
    }
    left.retain(|&p| running(p));
    for &p in &left {
        // SAFETY: as above.
        unsafe { libc::kill(p as i32, libc::SIGKILL) };
        // SIGKILL is delivered asynchronously: reap it once it is gone (at most a second).
        let end = Instant::now() + Duration::from_secs(1);
        while !reap(p) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    left.len()
}

/// Whether child `pid` is still running (reaping it if it has exited).
fn running(pid: u32) -> bool {
    !reap(pid)
}

/// Reap `pid` if it has exited; true when it is gone (exited, or not our child any more).
fn reap(pid: u32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid with WNOHANG on a pid this process started; writes only `status`.
    let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
    r != 0
}

/// On SIGINT / SIGTERM: stop the tracked children (SIGTERM, then SIGKILL after 3 s), say that
/// `what` was interrupted and gave no figures, and exit with 130. For commands whose partial
/// results would mislead. Returns the flag the signal sets (for loops that can end early).
pub fn exit_on_signal(what: &'static str) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Fails only for the signals signal-hook forbids (SIGKILL, SIGSTOP, SIGSEGV, ...).
        signal_hook::flag::register(sig, flag.clone()).expect("SIGINT/SIGTERM can be handled");
    }
    let f = flag.clone();
    std::thread::Builder::new()
        .name("signal-exit".into())
        .spawn(move || {
            while !f.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let pids = tracked_pids();
            let killed = stop_all(&pids, Duration::from_secs(3));
            eprintln!(
                "{what} interrupted: {} helper process(es) stopped{}; no figures (a benchmark's \
                 ratios mean something only when every case ran side by side)",
                pids.len(),
                if killed > 0 {
                    format!(", {killed} of them by SIGKILL")
                } else {
                    String::new()
                }
            );
            std::process::exit(130);
        })
        .expect("spawn the signal thread");
    flag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_ignores_sigterm_is_killed_after_the_grace_time() {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "trap '' TERM; exec sleep 30"]);
        let mut child = tracked(&mut cmd).spawn().expect("sh");
        let pid = child.id();
        track(pid);
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        assert_eq!(stop_all(&[pid], Duration::from_millis(300)), 1);
        untrack(pid);
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(!tracked_pids().contains(&pid));
        // Gone: signal 0 to it fails.
        // SAFETY: plain syscall on the pid this test started.
        assert_ne!(unsafe { libc::kill(pid as i32, 0) }, 0);
        // Already reaped by `stop_all`: the handle has nothing left to wait for.
        assert!(child.wait().is_err());
    }

    #[test]
    fn a_child_that_obeys_sigterm_is_not_killed() {
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        let mut child = tracked(&mut cmd).spawn().expect("sleep");
        let pid = child.id();
        assert_eq!(stop_all(&[pid], Duration::from_secs(3)), 0);
        // SAFETY: as above.
        assert_ne!(unsafe { libc::kill(pid as i32, 0) }, 0);
        assert!(child.wait().is_err());
    }
}
