//! The soak's region in another process: the proprioception region as its own `brainloop node
//! proprioception` process on the zenoh bus, for the `node_kill` and `bus_partition` faults.
//!
//! The soak's brain has one proprioception slot. Normally its in-process region (with the
//! soak's fault switch) writes it; for a node fault the slot is switched to the node's
//! embeddings, which arrive over the real bus path (`ZenohBus::feed_slot`, with its sequence and
//! delay checks) through a private slot and a forwarder thread. The node reaches the soak's bus
//! through a TCP relay on loopback that the soak can cut: a partition holds every byte in both
//! directions (the connection stays up, as when a cable or a switch fails), then lets the
//! backlog through, which the bus's delay check must refuse. The soak publishes the body state
//! the node needs, as the integrator's node does under `brainloop up`.

use crate::bus::slots::{EmbeddingRef, InputSlots, SlotWriter};
use crate::bus::zenoh::{net_topics as nt, ZenohBus};
use crate::bus::{topics, Bus, LocalBus};
use crate::config::Config;
use crate::msg::{BodyState, RegionId};
use crate::util::monotonic_ns;
use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The proprioception slot's one writer, shared by the in-process region and the node's
/// forwarder; which of them reaches the slot is switched. Never locked by the tick (which only
/// reads the slot).
pub(crate) struct ProprioSwitch {
    writer: Mutex<SlotWriter>,
    from_node: AtomicBool,
    forwarded: AtomicU64,
}

impl ProprioSwitch {
    pub(crate) fn new(writer: SlotWriter) -> Arc<Self> {
        Arc::new(Self {
            writer: Mutex::new(writer),
            from_node: AtomicBool::new(false),
            forwarded: AtomicU64::new(0),
        })
    }

    /// An embedding of the in-process region (dropped while the node feeds the slot).
    pub(crate) fn local(&self, e: &EmbeddingRef<'_>) {
        if !self.from_node.load(Ordering::Acquire) {
            let _ = self
                .writer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .publish(e);
        }
    }

    fn node(&self, e: &EmbeddingRef<'_>) {
        if self.from_node.load(Ordering::Acquire)
            && self
                .writer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .publish(e)
                .is_ok()
        {
            self.forwarded.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A TCP relay on loopback that can hold every byte (a partition).
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Relay {
    fn start(to_port: u16) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("soak relay: bind")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (cut.clone(), stop.clone());
        let accept = std::thread::Builder::new()
            .name("soak-relay".into())
            .spawn(move || {
                let mut pumps = Vec::new();
                while !s.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((a, _)) => {
                            let Ok(b) = TcpStream::connect(("127.0.0.1", to_port)) else {
                                continue;
                            };
                            for (from, to) in [(&a, &b), (&b, &a)] {
                                let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
                                    continue;
                                };
                                let (c, s) = (c.clone(), s.clone());
                                pumps.push(std::thread::spawn(move || pump(from, to, &c, &s)));
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
                for p in pumps {
                    let _ = p.join();
                }
            })?;
        Ok(Self {
            port,
            cut,
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Copy `from` to `to` until either closes or `stop`; while `cut`, read nothing (the bytes wait
/// in the kernel's buffers and TCP's flow control stops the sender).
fn pump(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool, stop: &AtomicBool) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if cut.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// The proprioception node of the soak and its bus.
pub(crate) struct NodeFeed {
    switch: Arc<ProprioSwitch>,
    relay: Relay,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<crate::bus::zenoh::SourceStats>,
    // Last: the bus closes after the threads that use it stopped.
    _net: ZenohBus,
}

impl NodeFeed {
    /// Join a bus of our own on loopback, relay it, publish `state()` at 100 Hz for the node,
    /// forward the node's embeddings to `switch`, and start the node.
    pub(crate) fn start(
        cfg: &Config,
        config: &Path,
        switch: Arc<ProprioSwitch>,
        state: Arc<dyn Fn() -> Option<BodyState> + Send + Sync>,
        log: PathBuf,
    ) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut opts = crate::nodes::bus_options(
            cfg,
            &crate::nodes::NetArgs {
                listen: vec![format!("tcp/127.0.0.1:{port}")],
                connect: Vec::new(),
                ros_compat: false,
            },
        )?;
        opts.connect.clear();
        let net = ZenohBus::open(&opts, "soak", monotonic_ns)
            .map_err(|e| anyhow::anyhow!("soak: cannot open its bus: {e}"))?;
        let relay = Relay::start(port)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();

        // Body state out, for the node's region.
        let local = LocalBus::new();
        net.route_out(&local, topics::BODY_STATE, nt::BODY_STATE)
            .map_err(|e| anyhow::anyhow!("soak bus: {e}"))?;
        let st = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("soak-body-out".into())
                .spawn(move || {
                    while !st.load(Ordering::Relaxed) {
                        if let Some(s) = state() {
                            local.publish(topics::BODY_STATE, &s);
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                })?,
        );

        // The node's embeddings in: the real bus path into a private slot, then to the switch.
        let private = InputSlots::new([0; RegionId::COUNT]);
        let w = private
            .writer(RegionId::Proprioception)
            .context("private slot")?;
        let stats = net
            .feed_slot(RegionId::Proprioception, w)
            .map_err(|e| anyhow::anyhow!("soak bus: {e}"))?;
        let mut reader = private.reader().context("private slot reader")?;
        let (st, sw) = (stop.clone(), switch.clone());
        threads.push(
            std::thread::Builder::new()
                .name("soak-node-in".into())
                .spawn(move || {
                    while !st.load(Ordering::Relaxed) {
                        if reader.update(RegionId::Proprioception) {
                            let v = reader.view(RegionId::Proprioception, false);
                            sw.node(&EmbeddingRef {
                                seq: v.seq,
                                stamp_ns: v.stamp_ns,
                                model_id: v.model_id,
                                vector: v.vector,
                                grid: v.grid,
                                spatial: v.spatial,
                            });
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })?,
        );
        let mut feed = Self {
            switch,
            relay,
            config: config.to_path_buf(),
            log,
            child: None,
            stop,
            threads,
            stats,
            _net: net,
        };
        feed.spawn_node()?;
        Ok(feed)
    }

    /// Start the node process (as the supervisor of `up` would after a crash).
    pub(crate) fn spawn_node(&mut self) -> Result<()> {
        self.reap();
        let exe = std::env::current_exe().context("soak: the brainloop executable")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("soak: {}", self.log.display()))?;
        let mut cmd = Command::new(exe);
        cmd.args(["node", "proprioception", "--config"])
            .arg(&self.config)
            .arg("--connect")
            .arg(format!("tcp/127.0.0.1:{}", self.relay.port))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        crate::util::children::tracked(&mut cmd);
        let child = cmd
            .spawn()
            .context("soak: starting the proprioception node")?;
        crate::util::children::track(child.id());
        tracing::info!(pid = child.id(), "soak: proprioception node started");
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL the node (by its pid) and reap it.
    pub(crate) fn kill_node(&mut self) {
        if let Some(mut c) = self.child.take() {
            crate::util::children::untrack(c.id());
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the node process is running.
    pub(crate) fn node_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn reap(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if !matches!(c.try_wait(), Ok(None)) {
                crate::util::children::untrack(c.id());
                self.child = None;
            }
        }
    }

    /// Cut (`true`) or heal the bus between the node and the brain.
    pub(crate) fn partition(&self, cut: bool) {
        self.relay.cut.store(cut, Ordering::Release);
    }

    /// Feed the brain's proprioception slot from the node (`true`) or the in-process region.
    pub(crate) fn use_node(&self, on: bool) {
        self.switch.from_node.store(on, Ordering::Release);
    }

    /// Node embeddings that reached the brain's slot so far.
    pub(crate) fn forwarded(&self) -> u64 {
        self.switch.forwarded.load(Ordering::Relaxed)
    }

    /// Node embeddings the bus refused (late, out of order, malformed) so far.
    pub(crate) fn refused(&self) -> u64 {
        self.stats.rejected.load(Ordering::Relaxed)
    }
}

impl Drop for NodeFeed {
    fn drop(&mut self) {
        self.use_node(false);
        self.partition(false);
        if let Some(c) = self.child.take() {
            crate::util::children::untrack(c.id());
            crate::util::children::stop_all(&[c.id()], Duration::from_secs(3));
        }
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
