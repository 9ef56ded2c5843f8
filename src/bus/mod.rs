//! The bus: how commands and telemetry travel between the brain's threads, and the seam where
//! other transports attach. It may depend only on the messages (`msg`) and `util`: it knows
//! nothing of teleop, the integrator or the regions that use it.
//!
//! Two in-process transports, each for what it carries:
//! * [`slots`]: embeddings from the regions into the integrator, one lock-free latest-value
//!   slot per region (the tick reads them without waiting or allocating);
//! * the [`Bus`] trait and its in-process implementation [`LocalBus`] (bounded crossbeam
//!   channels per topic, [`topics`]): instructions, teleop commands from each source, and what
//!   the brain reports (`/cmd_vel`, drowsiness, health). It is used off the tick only: the
//!   console, the bridges and the supervisor publish; small forwarder threads (e.g.
//!   `teleop::spawn_bus_bridge`) hand the messages to the lock-free inputs the tick reads.
//!
//! ROS 2 attaches as a bridge between this bus and a ROS 2 graph, over DDS without a ROS 2
//! installation ([`dds`], feature `dds`) or through r2r (`crate::ros2`, feature `ros2`); both
//! translate with the one message mapping in [`ros_map`]. Between processes, [`zenoh`] carries the
//! topics that cross them (and the embeddings, into the same slots) over a zenoh peer-to-peer
//! bus, in the `brainloop_msgs` schema of [`wire`] and, with `ros_compat`, on rmw_zenoh's keys
//! ([`rmw_zenoh`]) so ROS 2 tools see them.

pub mod cdr;
#[cfg(feature = "dds")]
pub mod dds;
pub mod rmw_zenoh;
pub mod ros_args;
pub mod ros_map;
pub mod slots;
pub mod wire;
pub mod zenoh;

use crate::msg::TeleopCommand;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use serde::{de::DeserializeOwned, Serialize};
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A typed topic name.
#[derive(Debug)]
pub struct Topic<T> {
    /// Topic name, ROS-style (`/brain/health`).
    pub name: &'static str,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T> Topic<T> {
    /// Declare a topic.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            _t: std::marker::PhantomData,
        }
    }
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Topic<T> {}

/// Marker for message types that may travel on a bus.
pub trait Message: Serialize + DeserializeOwned + Clone + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + 'static> Message for T {}

/// A subscription: a bounded queue of messages.
pub struct Subscription<T> {
    rx: Receiver<T>,
}

impl<T> Subscription<T> {
    /// Next message without waiting.
    pub fn try_recv(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }
    /// Drain all queued messages, keeping only the latest.
    pub fn latest(&self) -> Option<T> {
        self.rx.try_iter().last()
    }
    /// Wait up to `timeout` for the next message.
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<T> {
        self.rx.recv_timeout(timeout).ok()
    }
}

/// What became of one published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Subscribers of the topic when it was published.
    pub subscribers: usize,
    /// Of those, how many had a full queue and dropped it.
    pub dropped: usize,
}

impl Delivery {
    /// Whether someone subscribes and every subscriber queued the message.
    pub fn complete(&self) -> bool {
        self.subscribers > 0 && self.dropped == 0
    }
}

/// Publish/subscribe transport between the brain's parts.
pub trait Bus: Send + Sync {
    /// Publish a message. Never blocks: a full subscriber queue drops the message for that
    /// subscriber (and counts it in [`Bus::dropped`]).
    fn publish<T: Message>(&self, topic: Topic<T>, msg: &T) -> Delivery;
    /// Subscribe with a queue of `depth` messages.
    fn subscribe<T: Message>(&self, topic: Topic<T>, depth: usize) -> Subscription<T>;
    /// Messages dropped because a subscriber was not keeping up.
    fn dropped(&self) -> u64;
}

type Subscribers = Vec<Box<dyn Any + Send>>;

/// In-process bus on bounded crossbeam channels.
#[derive(Clone, Default)]
pub struct LocalBus {
    inner: Arc<Mutex<HashMap<&'static str, Subscribers>>>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl LocalBus {
    /// A new, empty bus.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Bus for LocalBus {
    fn publish<T: Message>(&self, topic: Topic<T>, msg: &T) -> Delivery {
        let mut d = Delivery::default();
        let Ok(map) = self.inner.lock() else { return d };
        if let Some(subs) = map.get(topic.name) {
            for s in subs {
                if let Some(tx) = s.downcast_ref::<Sender<T>>() {
                    d.subscribers += 1;
                    if let Err(TrySendError::Full(_)) = tx.try_send(msg.clone()) {
                        d.dropped += 1;
                        self.dropped
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }
        d
    }

    fn subscribe<T: Message>(&self, topic: Topic<T>, depth: usize) -> Subscription<T> {
        let (tx, rx) = bounded(depth.max(1));
        if let Ok(mut map) = self.inner.lock() {
            map.entry(topic.name).or_default().push(Box::new(tx));
        }
        Subscription { rx }
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Topics of the brain.
pub mod topics {
    use super::Topic;
    use crate::msg::*;
    /// Region embeddings.
    pub const EMBEDDING: Topic<Embedding> = Topic::new("/brain/embedding");
    /// Instructions for the language region (from the console or ROS 2).
    pub const INSTRUCTION: Topic<Instruction> = Topic::new("/brain/instruction");
    /// Teleop commands of the override mux's `console` source (the console on stdin).
    pub const TELEOP_CONSOLE: Topic<TeleopCommand> = Topic::new("/teleop/console");
    /// Teleop commands of the override mux's `remote` source (ROS 2 / DDS). A separate topic
    /// from the console's, so a remote `ClearEstop` can only clear the remote source's latch.
    pub const TELEOP_REMOTE: Topic<TeleopCommand> = Topic::new("/teleop/remote");
    /// Body state from the link or simulator.
    pub const BODY_STATE: Topic<BodyState> = Topic::new("/body/state");
    /// Wheel setpoints for a body in another process.
    pub const WHEELS: Topic<WheelSpeeds> = Topic::new("/body/wheels");
    /// Validated velocity commands sent to the body.
    pub const CMD_VEL: Topic<Twist> = Topic::new("/cmd_vel");
    /// The integrator's drowsiness, 0..=1.
    pub const DROWSINESS: Topic<f32> = Topic::new("/brain/drowsiness");
    /// The body's state as a ROS 2 base driver reports it (`/joint_states`, `/imu`, `/scan`),
    /// from a bridge, for `--body ros2`.
    pub const BASE_STATE: Topic<BodyState> = Topic::new("/ros/base_state");
    /// Camera frames from a ROS 2 bridge, for the vision region.
    pub const CAMERA: Topic<RgbImage> = Topic::new("/ros/camera");
    /// The robot's odometry and wheels, for the ROS 2 bridges (50 Hz, from the supervisor).
    pub const ROBOT_FEED: Topic<RobotFeed> = Topic::new("/robot/feed");
    /// The brain's health, for `/diagnostics` and `BatteryState` (1 Hz, from the supervisor).
    pub const DIAG_FEED: Topic<DiagFeed> = Topic::new("/brain/diagnostics");
    /// An e-stop reset token from a ROS 2 bridge (hex of an operator-signed `Reset`); the run
    /// verifies it with the operator key and only then clears the `remote` latch.
    pub const ESTOP_RESET: Topic<String> = Topic::new("/teleop/estop_reset");

    /// The teleop topic of the override mux source `name`, for the sources that have one.
    pub fn teleop(name: &str) -> Option<Topic<TeleopCommand>> {
        match name {
            "console" => Some(TELEOP_CONSOLE),
            "remote" => Some(TELEOP_REMOTE),
            _ => None,
        }
    }
}

/// How long [`publish_teleop`] keeps retrying an e-stop that a full queue dropped.
pub const ESTOP_RETRY: Duration = Duration::from_millis(20);

/// Publish a teleop command. A drive command that a full queue drops is superseded by the next
/// one anyway, but an e-stop must not be lost to a flood of drive commands: a dropped
/// [`TeleopCommand::Estop`] is published again (every 0.2 ms, for up to [`ESTOP_RETRY`]) until
/// every subscriber has queued it. Subscribers that already had it get it twice, which is
/// harmless (the latch is idempotent). Call it from a bridge or console thread, never the tick.
pub fn publish_teleop<B: Bus>(
    bus: &B,
    topic: Topic<TeleopCommand>,
    cmd: TeleopCommand,
) -> Delivery {
    publish_teleop_within(bus, topic, cmd, ESTOP_RETRY)
}

fn publish_teleop_within<B: Bus>(
    bus: &B,
    topic: Topic<TeleopCommand>,
    cmd: TeleopCommand,
    retry: Duration,
) -> Delivery {
    let mut d = bus.publish(topic, &cmd);
    if cmd == TeleopCommand::Estop && d.dropped > 0 {
        let end = Instant::now() + retry;
        while d.dropped > 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_micros(200));
            d = bus.publish(topic, &cmd);
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_reaches_every_subscriber_and_drops_when_full() {
        let bus = LocalBus::new();
        let t: Topic<u32> = Topic::new("/t");
        let a = bus.subscribe(t, 1);
        let b = bus.subscribe(t, 4);
        bus.publish(t, &1);
        bus.publish(t, &2);
        assert_eq!(a.try_recv(), Some(1));
        assert_eq!(a.try_recv(), None);
        assert_eq!(b.latest(), Some(2));
        assert_eq!(bus.dropped(), 1);
        let nobody: Topic<u32> = Topic::new("/nobody");
        assert_eq!(bus.publish(nobody, &3), Delivery::default());
        assert!(!bus.publish(nobody, &3).complete());
    }

    #[test]
    fn delivery_reports_drops_per_publish() {
        let bus = LocalBus::new();
        let t: Topic<u32> = Topic::new("/t");
        let _a = bus.subscribe(t, 1);
        let d = bus.publish(t, &1);
        assert!(d.complete());
        assert_eq!(
            bus.publish(t, &2),
            Delivery {
                subscribers: 1,
                dropped: 1
            }
        );
    }

    #[test]
    fn a_dropped_estop_is_retried_until_queued() {
        let bus = LocalBus::new();
        let sub = bus.subscribe(topics::TELEOP_REMOTE, 2);
        let drive = TeleopCommand::Drive(crate::msg::Twist {
            linear: 0.1,
            angular: 0.0,
        });
        for _ in 0..2 {
            publish_teleop(&bus, topics::TELEOP_REMOTE, drive);
        }
        // The queue is full; a reader drains it a little later.
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            let mut got = Vec::new();
            let end = Instant::now() + Duration::from_secs(1);
            while Instant::now() < end && !got.contains(&TeleopCommand::Estop) {
                if let Some(c) = sub.recv_timeout(Duration::from_millis(10)) {
                    got.push(c);
                }
            }
            got
        });
        // (A long retry window: this machine may be busy; the real one is ESTOP_RETRY.)
        let d = publish_teleop_within(
            &bus,
            topics::TELEOP_REMOTE,
            TeleopCommand::Estop,
            Duration::from_secs(5),
        );
        assert!(d.complete(), "{d:?}");
        let got = reader.join().unwrap();
        assert_eq!(got.last(), Some(&TeleopCommand::Estop), "{got:?}");
        // A dropped drive command is not retried.
        let _full = bus.subscribe(topics::TELEOP_CONSOLE, 1);
        publish_teleop(&bus, topics::TELEOP_CONSOLE, drive);
        let before = bus.dropped();
        assert_eq!(
            publish_teleop(&bus, topics::TELEOP_CONSOLE, drive).dropped,
            1
        );
        assert_eq!(bus.dropped(), before + 1);
    }

    #[test]
    fn each_mux_source_has_its_own_teleop_topic() {
        assert_eq!(topics::teleop("console").unwrap().name, "/teleop/console");
        assert_eq!(topics::teleop("remote").unwrap().name, "/teleop/remote");
        assert!(topics::teleop("joystick").is_none());
    }
}
