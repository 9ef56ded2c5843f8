//! The bus: how messages travel between regions, the integrator, the body and the console.
//!
//! Code publishes and subscribes through the [`Bus`] trait only. The in-process implementation
//! here uses bounded crossbeam channels per topic; other transports (zenoh, ROS 2) implement the
//! same trait, so a region moves to its own process without changes.

pub mod cdr;
#[cfg(feature = "dds")]
pub mod dds;
pub mod slots;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use serde::{de::DeserializeOwned, Serialize};
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// Publish/subscribe transport between the brain's parts.
pub trait Bus: Send + Sync {
    /// Publish a message. Never blocks: a full subscriber queue drops the message for that
    /// subscriber (and counts it).
    fn publish<T: Message>(&self, topic: Topic<T>, msg: &T);
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
    fn publish<T: Message>(&self, topic: Topic<T>, msg: &T) {
        let Ok(map) = self.inner.lock() else { return };
        if let Some(subs) = map.get(topic.name) {
            for s in subs {
                if let Some(tx) = s.downcast_ref::<Sender<T>>() {
                    if let Err(TrySendError::Full(_)) = tx.try_send(msg.clone()) {
                        self.dropped
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }
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
    /// Instructions for the language region.
    pub const INSTRUCTION: Topic<Instruction> = Topic::new("/brain/instruction");
    /// Teleop console commands.
    pub const TELEOP: Topic<TeleopCommand> = Topic::new("/teleop/command");
    /// Body state from the link or simulator.
    pub const BODY_STATE: Topic<BodyState> = Topic::new("/body/state");
    /// Validated velocity commands sent to the body.
    pub const CMD_VEL: Topic<Twist> = Topic::new("/cmd_vel");
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
    }
}
