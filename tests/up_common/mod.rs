//! Shared by the tests that start `brainloop up`: a free loopback port, the children of a
//! process, and a handle that stops `up` (SIGINT, then SIGKILL) when dropped.
#![allow(dead_code)]

use std::process::Child;
use std::time::{Duration, Instant};

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Child processes of `pid` (started from any of its threads) and their command lines.
pub fn children(pid: u32) -> Vec<(u32, String)> {
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
pub struct Up(pub Child);

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
