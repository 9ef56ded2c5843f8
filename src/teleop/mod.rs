//! Teleop: a person taking over. May depend on `msg` and `bus` only (the zenoh bus for the
//! teleop console's signed commands, `operator`).
//!
//! Each source of the override mux (`[teleop.sources.<name>]`: the console, a ROS 2 / DDS
//! remote, ...) has a lock-free [`TeleopInput`] that the integrator's motor stage reads every
//! tick without waiting: a fresh drive command overrides autonomy, a stale one (older than the
//! source's timeout) falls back to autonomy, and the e-stop latch beats everything until it is
//! cleared on the source that set it.
//!
//! Commands reach an input over the in-process bus: [`spawn_bus_bridge`] forwards one teleop
//! topic (`bus::topics::TELEOP_CONSOLE`, `bus::topics::TELEOP_REMOTE`) into one input on its own
//! thread, so the bus hop never happens on the integrator thread.

use crate::bus::{Bus, Topic};
use crate::msg::{OperatorMode, TeleopCommand, Twist};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

pub mod auth;
pub mod operator;

/// What an operator sets beside driving, read lock-free by the integrator every tick: the
/// operator mode and sleep requests (a counter, so a request between two ticks is never lost).
#[derive(Debug, Default)]
pub struct OperatorControls {
    mode: AtomicU8,
    sleep_requests: AtomicU64,
}

impl OperatorControls {
    /// Autonomous, no sleep asked.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    /// Set the mode.
    pub fn set_mode(&self, m: OperatorMode) {
        self.mode.store(m.index(), Ordering::SeqCst);
    }
    /// The mode.
    pub fn mode(&self) -> OperatorMode {
        OperatorMode::from_index(self.mode.load(Ordering::SeqCst))
    }
    /// Ask for sleep.
    pub fn request_sleep(&self) {
        self.sleep_requests.fetch_add(1, Ordering::SeqCst);
    }
    /// Sleep requests so far.
    pub fn sleep_requests(&self) -> u64 {
        self.sleep_requests.load(Ordering::SeqCst)
    }
}

/// The latest teleop state, shared between any number of senders and the motor stage.
///
/// The drive command is a seqlock over atomics: senders serialise among themselves with a
/// spin flag (they never wait on the tick), and the tick retries a bounded number of times and
/// otherwise keeps what it read last tick, so it never waits on a sender.
#[derive(Debug, Default)]
pub struct TeleopInput {
    seq: AtomicU64,
    linear: AtomicU64,
    angular: AtomicU64,
    stamp_ns: AtomicU64,
    driving: AtomicBool,
    writer: AtomicBool,
    estop: AtomicBool,
    estop_events: AtomicU64,
}

/// What the motor stage reads from teleop in one tick.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TeleopSnapshot {
    /// The last drive command and its time, unless released.
    pub drive: Option<(Twist, u64)>,
    /// Whether the teleop e-stop is latched.
    pub estop: bool,
    /// Number of e-stop presses so far (a press between two ticks is never missed).
    pub estop_events: u64,
}

impl TeleopInput {
    /// A new, released, un-latched input.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Apply a command received at `now_ns`.
    pub fn send(&self, cmd: TeleopCommand, now_ns: u64) {
        match cmd {
            TeleopCommand::Estop => {
                self.estop.store(true, Ordering::SeqCst);
                self.estop_events.fetch_add(1, Ordering::SeqCst);
            }
            TeleopCommand::ClearEstop => self.estop.store(false, Ordering::SeqCst),
            TeleopCommand::Drive(t) => self.write(Some(t), now_ns),
            TeleopCommand::Release => self.write(None, now_ns),
        }
    }

    fn write(&self, t: Option<Twist>, now_ns: u64) {
        while self
            .writer
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s + 1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        let driving = t.is_some();
        let t = t.unwrap_or(Twist::ZERO);
        self.linear.store(t.linear.to_bits(), Ordering::Relaxed);
        self.angular.store(t.angular.to_bits(), Ordering::Relaxed);
        self.stamp_ns.store(now_ns, Ordering::Relaxed);
        self.driving.store(driving, Ordering::Relaxed);
        self.seq.store(s + 2, Ordering::Release);
        self.writer.store(false, Ordering::Release);
    }

    /// Read without waiting; `None` if a sender was mid-write on every try (the caller keeps
    /// its previous snapshot).
    pub fn snapshot(&self) -> Option<TeleopSnapshot> {
        for _ in 0..4 {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let lin = f64::from_bits(self.linear.load(Ordering::Relaxed));
            let ang = f64::from_bits(self.angular.load(Ordering::Relaxed));
            let stamp = self.stamp_ns.load(Ordering::Relaxed);
            let driving = self.driving.load(Ordering::Relaxed);
            std::sync::atomic::fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return Some(TeleopSnapshot {
                    drive: driving.then_some((
                        Twist {
                            linear: lin,
                            angular: ang,
                        },
                        stamp,
                    )),
                    estop: self.estop.load(Ordering::SeqCst),
                    estop_events: self.estop_events.load(Ordering::SeqCst),
                });
            }
        }
        None
    }
}

/// Forward the teleop commands arriving on `topic` of `bus` into `input`, stamped with
/// `clock()` on arrival (so the source's staleness timeout runs from then), until `stop` is set
/// (checked every 20 ms). One thread per source keeps the sources apart: what arrives on one
/// topic can never clear another source's e-stop.
pub fn spawn_bus_bridge<B, C>(
    bus: &B,
    topic: Topic<TeleopCommand>,
    input: Arc<TeleopInput>,
    clock: C,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>>
where
    B: Bus,
    C: Fn() -> u64 + Send + 'static,
{
    let sub = bus.subscribe(topic, BRIDGE_QUEUE);
    std::thread::Builder::new()
        .name("teleop-bridge".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(cmd) = sub.recv_timeout(std::time::Duration::from_millis(20)) {
                    input.send(cmd, clock());
                }
            }
        })
}

/// Commands a teleop bridge queues before a publisher's are dropped (an e-stop is retried, see
/// `bus::publish_teleop`).
pub const BRIDGE_QUEUE: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Bus, LocalBus};

    #[test]
    fn latest_drive_release_and_estop_latch() {
        let t = TeleopInput::new();
        assert_eq!(t.snapshot().unwrap().drive, None);
        let tw = Twist {
            linear: 0.1,
            angular: -0.2,
        };
        t.send(TeleopCommand::Drive(tw), 5);
        assert_eq!(t.snapshot().unwrap().drive, Some((tw, 5)));
        t.send(TeleopCommand::Release, 6);
        assert_eq!(t.snapshot().unwrap().drive, None);
        t.send(TeleopCommand::Estop, 7);
        t.send(TeleopCommand::ClearEstop, 8);
        let s = t.snapshot().unwrap();
        assert!(!s.estop);
        assert_eq!(
            s.estop_events, 1,
            "a press is never lost even if cleared before a tick"
        );
    }

    #[test]
    fn bus_commands_reach_the_input_of_their_source_only() {
        use crate::bus::topics::{TELEOP_CONSOLE, TELEOP_REMOTE};
        let bus = LocalBus::new();
        let (console, remote) = (TeleopInput::new(), TeleopInput::new());
        let stop = Arc::new(AtomicBool::new(false));
        let h1 =
            spawn_bus_bridge(&bus, TELEOP_CONSOLE, console.clone(), || 42, stop.clone()).unwrap();
        let h2 =
            spawn_bus_bridge(&bus, TELEOP_REMOTE, remote.clone(), || 43, stop.clone()).unwrap();
        bus.publish(TELEOP_CONSOLE, &TeleopCommand::Estop);
        let tw = Twist {
            linear: 0.1,
            angular: 0.0,
        };
        // A remote clear, then a drive: once the drive is in, the clear was handled.
        bus.publish(TELEOP_REMOTE, &TeleopCommand::ClearEstop);
        bus.publish(TELEOP_REMOTE, &TeleopCommand::Drive(tw));
        let mut ok = false;
        for _ in 0..400 {
            let (c, r) = (console.snapshot().unwrap(), remote.snapshot().unwrap());
            if c.estop && r.drive.is_some() {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
        h1.join().unwrap();
        h2.join().unwrap();
        assert!(ok);
        let (c, r) = (console.snapshot().unwrap(), remote.snapshot().unwrap());
        assert!(c.estop && c.drive.is_none());
        assert_eq!(r.drive, Some((tw, 43)));
        assert!(!r.estop && r.estop_events == 0);
    }
}
