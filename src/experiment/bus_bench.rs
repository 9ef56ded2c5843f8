//! `brainloop bench bus` (issue #15): pub-to-sub latency and throughput of the brain's
//! transports, side by side in one run, for what they carry: a 384-float embedding (a sentence
//! embedding), a 1280-float embedding (a pooled image embedding) and a 224x224x3 camera frame
//! (150,528 bytes).
//!
//! Transports, each measured with the stamp it would carry anyway (CLOCK_MONOTONIC,
//! [`monotonic_ns`], one clock for every process on the host):
//! * `slots`: the integrator's lock-free latest-value slots ([`InputSlots`] / `SlotWriter`):
//!   publish call -> a reader thread spinning on the slot sees the new buffer
//!   (`EmbeddingRef::stamp_ns`). The frame rides in the vision slot's spatial tokens (37,632
//!   f32 = 150,528 bytes).
//! * `localbus`: the in-process [`LocalBus`] (bounded crossbeam channels): publish call -> the
//!   subscriber thread's `recv` returns it.
//! * `zenoh`: [`ZenohBus`] peer to peer over TCP loopback (`tcp/127.0.0.1:<free port>`,
//!   multicast scouting off), the subscriber in a child process (this executable re-invoked
//!   with a hidden `bench bus --peer ...`; two sessions in one process when there is no
//!   executable to re-invoke, as in unit tests, and the report says so). Embeddings go through
//!   [`EmbeddingPublisher`] into the subscriber's slots by [`ZenohBus::feed_slot`], the path a
//!   remote region takes into the integrator: publish call (before encoding) -> `feed_slot`'s
//!   callback (the receive stamp it writes into the slot; the publish stamp rides in the first
//!   three vector values, 22-bit integers exact in f32, because `feed_slot` re-stamps
//!   `stamp_ns` with the receive time). The frame is a raw zenoh put with its stamp in its
//!   first 16 bytes: publish call (before the frame is copied into the sample) -> the
//!   subscriber's callback.
//! * `dds`: built with `--features dds` only: `ros2-client` / RustDDS publishers and
//!   subscriptions as in `bus::dds` (RELIABLE, VOLATILE, KEEP_LAST 10), publisher and
//!   subscriber in two processes inside a private network namespace (`unshare -n`, loopback
//!   only, root), so DDS discovery multicast never leaves the machine: publish call (before
//!   serialisation) -> the subscriber's `take`.
//!
//! Each case: the publisher is paced at `--rate` (default 200 Hz) on absolute deadlines, warms
//! up for 1 s (longer until the first sample arrives, for discovery), then publishes for
//! `--seconds` (default 5) into an hdrhistogram ([`LatencyHistogram`]): p50 / p99 / max and the
//! delivered msgs/s and MB/s; then an unpaced flood (1 s) gives the most the subscriber
//! received per second. Ratios of the p50s: zenoh over the in-process transports, DDS over
//! zenoh.
//!
//! Published anchors, one machine: zenoh peer to peer ~10 us median (ZettaScale / NTU, 2023),
//! Cyclone DDS ~8 us in the same study, dora-rs ~0.2 ms p50. Our target: a 384-float embedding
//! over zenoh loopback at p50 <= 100 us and p99 <= 1 ms on this 2-core machine.

use crate::bus::slots::{EmbeddingRef, InputSlots};
use crate::bus::zenoh::{EmbeddingPublisher, SourceStats, ZenohBus, ZenohOptions};
use crate::bus::{Bus, LocalBus, Topic};
use crate::integrator::health::LatencyHistogram;
use crate::integrator::rt::sleep_until_ns;
use crate::msg::{Embedding, RegionId};
use crate::util::monotonic_ns;
use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zenoh::Wait;

/// Bytes of the camera frame (224 x 224 x 3, u8).
pub const FRAME_BYTES: usize = 224 * 224 * 3;
/// The frame as f32 spatial tokens in the vision slot: `[224, 56, 3]` = 37,632 values.
const FRAME_GRID: [u32; 3] = [224, 56, 3];
/// What the report says when DDS is not compiled in.
pub const DDS_NOT_BUILT: &str = "not built (cargo build --release --features dds)";
/// Target for a 384-float embedding over zenoh loopback: p50, us.
pub const TARGET_P50_US: f64 = 100.0;
/// Target for a 384-float embedding over zenoh loopback: p99, us.
pub const TARGET_P99_US: f64 = 1000.0;

/// Published numbers to read ours against.
pub const ANCHORS: [(&str, &str, &str); 3] = [
    (
        "zenoh",
        "~10 us median, peer to peer, one machine",
        "ZettaScale / NTU 2023",
    ),
    ("cyclone_dds", "~8 us median, one machine", "same study"),
    ("dora-rs", "~0.2 ms p50", "dora-rs benchmarks"),
];

/// What is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// 384 f32 (a sentence embedding).
    Embedding384,
    /// 1280 f32 (a pooled image embedding).
    Embedding1280,
    /// A 224 x 224 x 3 u8 camera frame.
    Frame,
}

impl Payload {
    /// All payloads, in report order.
    pub const ALL: [Payload; 3] = [
        Payload::Embedding384,
        Payload::Embedding1280,
        Payload::Frame,
    ];

    /// Name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Payload::Embedding384 => "embedding384",
            Payload::Embedding1280 => "embedding1280",
            Payload::Frame => "frame224x224x3",
        }
    }

    /// Payload size, bytes (the data itself, without headers).
    pub fn bytes(self) -> usize {
        match self {
            Payload::Embedding384 => 384 * 4,
            Payload::Embedding1280 => 1280 * 4,
            Payload::Frame => FRAME_BYTES,
        }
    }

    fn floats(self) -> usize {
        match self {
            Payload::Embedding384 => 384,
            Payload::Embedding1280 => 1280,
            Payload::Frame => 0,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The region whose key / slot carries it over zenoh.
    fn region(self) -> RegionId {
        match self {
            Payload::Embedding384 => RegionId::Language,
            Payload::Embedding1280 | Payload::Frame => RegionId::Vision,
        }
    }
}

/// A transport under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// The lock-free embedding slots.
    Slots,
    /// The in-process channel bus.
    Localbus,
    /// zenoh over TCP loopback.
    Zenoh,
    /// DDS (feature `dds`).
    Dds,
}

impl Transport {
    /// All transports, in report order.
    pub const ALL: [Transport; 4] = [
        Transport::Slots,
        Transport::Localbus,
        Transport::Zenoh,
        Transport::Dds,
    ];

    /// Name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Slots => "slots",
            Transport::Localbus => "localbus",
            Transport::Zenoh => "zenoh",
            Transport::Dds => "dds",
        }
    }
}

/// Where the subscriber of a networked case runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerProcess {
    /// A child process: this brainloop executable, re-invoked as `bench bus --peer ...`.
    Child(PathBuf),
    /// A second session in this process (over TCP loopback all the same).
    SameProcess,
}

impl PeerProcess {
    /// The running executable as the child, or one process when it cannot be found.
    pub fn current_exe() -> Self {
        std::env::current_exe()
            .map(PeerProcess::Child)
            .unwrap_or(PeerProcess::SameProcess)
    }
}

/// Options of `bench bus`.
#[derive(Debug, Clone)]
pub struct BusBenchOptions {
    /// Measured seconds per case.
    pub seconds: f64,
    /// Warm-up seconds per case (extended until the first sample arrives).
    pub warmup_s: f64,
    /// Seconds of the unpaced flood per case (0: none).
    pub flood_s: f64,
    /// Paced publish rate, Hz.
    pub rate_hz: f64,
    /// Payloads to publish.
    pub payloads: Vec<Payload>,
    /// Transports to measure.
    pub transports: Vec<Transport>,
    /// Where networked subscribers run.
    pub peer: PeerProcess,
}

impl Default for BusBenchOptions {
    fn default() -> Self {
        Self {
            seconds: 5.0,
            warmup_s: 1.0,
            flood_s: 1.0,
            rate_hz: 200.0,
            payloads: Payload::ALL.to_vec(),
            transports: Transport::ALL.to_vec(),
            peer: PeerProcess::current_exe(),
        }
    }
}

/// Latency percentiles of one case, microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyUs {
    /// Samples recorded.
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl LatencyUs {
    fn of(h: &LatencyHistogram) -> Self {
        let p = h.percentiles_us();
        Self {
            samples: h.len(),
            p50: p.p50,
            p90: p.p90,
            p99: p.p99,
            max: p.max,
            mean: p.mean,
        }
    }
}

/// The unpaced flood of one case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Flood {
    /// Duration, s.
    pub seconds: f64,
    /// Published.
    pub sent: u64,
    /// Published per second (for a latest-value slot, the writer's throughput: the slot never
    /// refuses a write).
    pub sent_msgs_s: f64,
    /// Received by the subscriber (a latest-value slot's reader sees only the newest).
    pub received: u64,
    /// Received per second.
    pub msgs_s: f64,
    /// Received payload MB (1e6 bytes) per second.
    pub mb_s: f64,
}

/// One transport x payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    /// `slots`, `localbus`, `zenoh` or `dds`.
    pub transport: String,
    /// `embedding384`, `embedding1280` or `frame224x224x3`.
    pub payload: String,
    /// Payload bytes.
    pub payload_bytes: usize,
    /// Where publisher and subscriber ran.
    pub setup: String,
    /// What the latency spans.
    pub measured: String,
    /// Published in the measured window (paced).
    pub sent: u64,
    /// Received and timed of those (over zenoh, an embedding the subscriber's slot poller
    /// missed because the slot was overwritten first counts as not received).
    pub received: u64,
    /// Pub-to-sub latency.
    pub latency_us: LatencyUs,
    /// Received per second in the measured window.
    pub msgs_s: f64,
    /// Received payload MB (1e6 bytes) per second in the measured window.
    pub mb_s: f64,
    /// Unpaced flood.
    pub flood: Flood,
}

/// The target check of the 384-float embedding over zenoh.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TargetCheck {
    /// Target p50, us.
    pub p50_us_max: f64,
    /// Target p99, us.
    pub p99_us_max: f64,
    /// Measured p50, us (None: not measured).
    pub p50_us: Option<f64>,
    /// Measured p99, us.
    pub p99_us: Option<f64>,
    /// Both met.
    pub met: Option<bool>,
}

/// One published number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anchor {
    /// Transport.
    pub transport: &'static str,
    /// The number.
    pub value: &'static str,
    /// Where from.
    pub source: &'static str,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct BusBenchReport {
    /// Paced rate, Hz.
    pub rate_hz: f64,
    /// Measured seconds per case.
    pub seconds: f64,
    /// Warm-up seconds per case.
    pub warmup_s: f64,
    /// Flood seconds per case.
    pub flood_s: f64,
    /// The clock of every stamp.
    pub clock: &'static str,
    /// The host's 1-minute load average at the start and the end (other work on the machine
    /// shows up in every tail).
    pub load_avg_1m: [Option<f64>; 2],
    /// Every case, transports in order.
    pub cases: Vec<CaseReport>,
    /// How zenoh ran (endpoint, processes) or why it did not.
    pub zenoh: serde_json::Value,
    /// How DDS ran, or why not.
    pub dds: serde_json::Value,
    /// Per payload, ratios of the p50s (`zenoh/slots`, `zenoh/localbus`, `dds/zenoh`).
    pub ratios: BTreeMap<String, BTreeMap<String, Option<f64>>>,
    /// The 384-float zenoh target.
    pub target: TargetCheck,
    /// Published numbers.
    pub anchors: Vec<Anchor>,
}

impl BusBenchReport {
    /// The case of `transport` x `payload`.
    pub fn case(&self, transport: Transport, payload: Payload) -> Option<&CaseReport> {
        self.cases
            .iter()
            .find(|c| c.transport == transport.name() && c.payload == payload.name())
    }
}

// ------------------------------------------------------------------ stamps and recording

const MASK22: u64 = (1 << 22) - 1;

/// Write `t` into `v[0..3]` as three integers below 2^22 (exact in f32).
fn stamp_into(v: &mut [f32], t: u64) {
    v[0] = (t & MASK22) as f32;
    v[1] = ((t >> 22) & MASK22) as f32;
    v[2] = (t >> 44) as f32;
}

/// Read a stamp written by [`stamp_into`].
fn stamp_from(v: &[f32]) -> Option<u64> {
    let [a, b, c] = *v.get(..3)? else {
        return None;
    };
    Some(a as u64 | (b as u64) << 22 | (c as u64) << 44)
}

/// The subscriber side's record of one payload: every sample is counted; those published at
/// or after the window start are also timed.
struct Recorder {
    t0: AtomicU64,
    hist: Mutex<LatencyHistogram>,
    window: AtomicU64,
    total: AtomicU64,
}

impl Recorder {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            t0: AtomicU64::new(u64::MAX),
            hist: Mutex::new(LatencyHistogram::new()),
            window: AtomicU64::new(0),
            total: AtomicU64::new(0),
        })
    }

    fn sample(&self, pub_ns: u64, recv_ns: u64) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if pub_ns >= self.t0.load(Ordering::Acquire) {
            let mut h = self.hist.lock().unwrap_or_else(|e| e.into_inner());
            h.record(recv_ns.saturating_sub(pub_ns));
            self.window.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn begin(&self, t0: u64) {
        self.hist.lock().unwrap_or_else(|e| e.into_inner()).reset();
        self.window.store(0, Ordering::Relaxed);
        self.t0.store(t0, Ordering::Release);
    }

    fn end(&self) -> SubResult {
        self.t0.store(u64::MAX, Ordering::Release);
        let h = self.hist.lock().unwrap_or_else(|e| e.into_inner());
        SubResult {
            received: self.window.load(Ordering::Relaxed),
            latency: LatencyUs::of(&h),
        }
    }
}

/// What a subscriber side reports at the end of a measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct SubResult {
    received: u64,
    latency: LatencyUs,
}

/// The subscriber side of a case, in this process or behind a child's pipes.
trait SubSide {
    /// Start timing samples of `p` published at or after `t0_ns`.
    fn begin(&mut self, p: Payload, t0_ns: u64) -> Result<()>;
    /// Stop timing; what arrived since `begin`.
    fn end(&mut self, p: Payload) -> Result<SubResult>;
    /// Samples of `p` received so far (every one, timed or not).
    fn count(&mut self, p: Payload) -> Result<u64>;
}

/// In-process subscribers: one recorder per payload.
struct Recorders([Arc<Recorder>; 3]);

impl Recorders {
    fn new() -> Self {
        Self([Recorder::new(), Recorder::new(), Recorder::new()])
    }
    fn get(&self, p: Payload) -> &Arc<Recorder> {
        &self.0[p.index()]
    }
}

impl SubSide for Recorders {
    fn begin(&mut self, p: Payload, t0_ns: u64) -> Result<()> {
        self.get(p).begin(t0_ns);
        Ok(())
    }
    fn end(&mut self, p: Payload) -> Result<SubResult> {
        Ok(self.get(p).end())
    }
    fn count(&mut self, p: Payload) -> Result<u64> {
        Ok(self.get(p).total.load(Ordering::Relaxed))
    }
}

// ------------------------------------------------------------------ pacing and one case

/// Publish at `rate_hz` on absolute deadlines for `secs`; returns how many were published.
/// A publisher more than a period behind starts a new schedule (no catch-up burst).
fn paced(seq: &mut u64, rate_hz: f64, secs: f64, publish: &mut dyn FnMut(u64)) -> u64 {
    let period = (1e9 / rate_hz) as u64;
    let start = monotonic_ns();
    let end = start + (secs * 1e9) as u64;
    let mut next = start;
    let mut n = 0;
    while next < end {
        sleep_until_ns(next);
        *seq += 1;
        publish(*seq);
        n += 1;
        next += period;
        let now = monotonic_ns();
        if now > next + period {
            next = now;
        }
    }
    n
}

/// Publish as fast as possible for `secs`.
fn flood(seq: &mut u64, secs: f64, publish: &mut dyn FnMut(u64)) -> u64 {
    let end = monotonic_ns() + (secs * 1e9) as u64;
    let mut n = 0;
    while monotonic_ns() < end {
        *seq += 1;
        publish(*seq);
        n += 1;
    }
    n
}

/// How long to wait for samples in flight after publishing stops.
fn drain(t: Transport) -> Duration {
    match t {
        Transport::Slots | Transport::Localbus => Duration::from_millis(50),
        Transport::Zenoh | Transport::Dds => Duration::from_millis(400),
    }
}

/// Longest extra warm-up waiting for the first sample (discovery).
const MAX_EXTRA_WARMUP_S: f64 = 15.0;

struct CaseSpec<'a> {
    transport: Transport,
    payload: Payload,
    setup: &'a str,
    measured: &'a str,
}

fn measure(
    opts: &BusBenchOptions,
    spec: CaseSpec<'_>,
    publish: &mut dyn FnMut(u64),
    sub: &mut dyn SubSide,
) -> Result<CaseReport> {
    let p = spec.payload;
    let mut seq = 0u64;
    // Warm-up, extended until the subscriber has seen something (the subscription has matched).
    let before = sub.count(p)?;
    paced(&mut seq, opts.rate_hz, opts.warmup_s, publish);
    let mut extra = 0.0;
    while sub.count(p)? == before {
        if extra >= MAX_EXTRA_WARMUP_S {
            bail!(
                "{} {}: nothing received after {:.1} s of warm-up",
                spec.transport.name(),
                p.name(),
                opts.warmup_s + extra
            );
        }
        paced(&mut seq, opts.rate_hz, 0.25, publish);
        extra += 0.25;
    }
    // Measured window.
    let t0 = monotonic_ns();
    sub.begin(p, t0)?;
    let t0 = monotonic_ns();
    let sent = paced(&mut seq, opts.rate_hz, opts.seconds, publish);
    let secs = (monotonic_ns() - t0) as f64 / 1e9;
    std::thread::sleep(drain(spec.transport));
    let r = sub.end(p)?;
    // Flood.
    let mut fl = Flood::default();
    if opts.flood_s > 0.0 {
        let c0 = sub.count(p)?;
        let f0 = monotonic_ns();
        fl.sent = flood(&mut seq, opts.flood_s, publish);
        fl.seconds = (monotonic_ns() - f0) as f64 / 1e9;
        std::thread::sleep(drain(spec.transport));
        fl.sent_msgs_s = fl.sent as f64 / fl.seconds;
        fl.received = sub.count(p)?.saturating_sub(c0);
        fl.msgs_s = fl.received as f64 / fl.seconds;
        fl.mb_s = fl.msgs_s * p.bytes() as f64 / 1e6;
    }
    let msgs_s = r.received as f64 / secs;
    Ok(CaseReport {
        transport: spec.transport.name().into(),
        payload: p.name().into(),
        payload_bytes: p.bytes(),
        setup: spec.setup.into(),
        measured: spec.measured.into(),
        sent,
        received: r.received,
        latency_us: r.latency,
        msgs_s,
        mb_s: msgs_s * p.bytes() as f64 / 1e6,
        flood: fl,
    })
}

/// Test data: finite, not all equal.
fn vector(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i % 97) as f32 * 0.01 - 0.5).collect()
}

fn frame_bytes() -> Vec<u8> {
    (0..FRAME_BYTES).map(|i| (i % 251) as u8).collect()
}

// ------------------------------------------------------------------ in-process transports

fn slots_case(opts: &BusBenchOptions, p: Payload) -> Result<CaseReport> {
    let region = RegionId::Vision;
    let slots = InputSlots::new([0; RegionId::COUNT]);
    let writer = slots.writer(region).context("slot writer")?;
    let mut reader = slots.reader().context("slot reader")?;
    let mut rec = Recorders::new();
    let r = rec.get(p).clone();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let reader_thread = std::thread::Builder::new()
        .name("bench-slot-reader".into())
        .spawn(move || {
            let mut last = 0u64;
            let mut idle = 0u32;
            while !s2.load(Ordering::Relaxed) {
                if reader.update(region) {
                    let now = monotonic_ns();
                    let v = reader.view(region, false);
                    if v.seq != last {
                        last = v.seq;
                        r.sample(v.stamp_ns, now);
                    }
                    idle = 0;
                } else {
                    // Spin (the fastest a reader can see it), yielding now and then so a busy
                    // 2-core machine still runs everything else.
                    idle += 1;
                    if idle % 64 == 0 {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
        })?;
    let (mut vec, spatial, grid) = match p {
        Payload::Frame => (vector(3), vec![0.25f32; FRAME_BYTES / 4], FRAME_GRID),
        _ => (vector(p.floats()), Vec::new(), [0; 3]),
    };
    let mut publish = |seq: u64| {
        let t = monotonic_ns();
        stamp_into(&mut vec, t);
        let _ = writer.publish(&EmbeddingRef {
            seq,
            stamp_ns: t,
            model_id: 1,
            vector: &vec,
            grid,
            spatial: &spatial,
        });
    };
    let out = measure(
        opts,
        CaseSpec {
            transport: Transport::Slots,
            payload: p,
            setup: "one process: writer on the bench thread, reader thread spinning",
            measured: "publish call -> the reader sees the new slot buffer",
        },
        &mut publish,
        &mut rec,
    );
    stop.store(true, Ordering::Relaxed);
    let _ = reader_thread.join();
    out
}

/// The frame on the local bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BenchFrame {
    seq: u64,
    stamp_ns: u64,
    data: Vec<u8>,
}

const BENCH_EMBEDDING: Topic<Embedding> = Topic::new("/bench/embedding");
const BENCH_FRAME: Topic<BenchFrame> = Topic::new("/bench/frame");
/// Subscriber queue depth on the local bus.
const LOCAL_DEPTH: usize = 64;

fn localbus_case(opts: &BusBenchOptions, p: Payload) -> Result<CaseReport> {
    let bus = LocalBus::new();
    let mut rec = Recorders::new();
    let r = rec.get(p).clone();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let timeout = Duration::from_millis(20);
    let sub_thread = match p {
        Payload::Frame => {
            let sub = bus.subscribe(BENCH_FRAME, LOCAL_DEPTH);
            std::thread::Builder::new()
                .name("bench-local-sub".into())
                .spawn(move || {
                    while !s2.load(Ordering::Relaxed) {
                        if let Some(m) = sub.recv_timeout(timeout) {
                            r.sample(m.stamp_ns, monotonic_ns());
                        }
                    }
                })?
        }
        _ => {
            let sub = bus.subscribe(BENCH_EMBEDDING, LOCAL_DEPTH);
            std::thread::Builder::new()
                .name("bench-local-sub".into())
                .spawn(move || {
                    while !s2.load(Ordering::Relaxed) {
                        if let Some(m) = sub.recv_timeout(timeout) {
                            r.sample(m.stamp_ns, monotonic_ns());
                        }
                    }
                })?
        }
    };
    let mut emb = Embedding {
        region: p.region(),
        seq: 0,
        stamp_ns: 0,
        model: String::new(),
        vector: vector(p.floats()),
        grid: [0; 3],
        spatial: Vec::new(),
    };
    let mut frame = BenchFrame {
        seq: 0,
        stamp_ns: 0,
        data: frame_bytes(),
    };
    let mut publish = |seq: u64| {
        let t = monotonic_ns();
        // `publish` clones the message into every subscriber's queue: that copy is the cost.
        if p == Payload::Frame {
            frame.seq = seq;
            frame.stamp_ns = t;
            bus.publish(BENCH_FRAME, &frame);
        } else {
            emb.seq = seq;
            emb.stamp_ns = t;
            bus.publish(BENCH_EMBEDDING, &emb);
        }
    };
    let out = measure(
        opts,
        CaseSpec {
            transport: Transport::Localbus,
            payload: p,
            setup: "one process: publisher on the bench thread, subscriber thread blocking in recv (queue 64)",
            measured: "publish call -> the subscriber's recv returns it",
        },
        &mut publish,
        &mut rec,
    );
    stop.store(true, Ordering::Relaxed);
    let _ = sub_thread.join();
    out
}

// ------------------------------------------------------------------ zenoh

/// The frame's key below `brainloop/<robot>/`.
const FRAME_KEY: &str = "bench/frame";

/// The subscriber side of the zenoh cases: embeddings fed into slots by `feed_slot` and read
/// by a poller (the receive stamp is in the slot), the frame on a raw subscriber.
struct ZenohSub {
    rec: Recorders,
    stats: [Arc<SourceStats>; 2],
    stop: Arc<AtomicBool>,
    poller: Option<std::thread::JoinHandle<()>>,
    _frame: zenoh::pubsub::Subscriber<()>,
    // Last: the session closes after its subscribers are gone.
    _bus: ZenohBus,
}

impl ZenohSub {
    fn open(connect: &str, robot: &str, rate_hz: f64) -> Result<Self> {
        let opts = ZenohOptions {
            robot: robot.into(),
            listen: vec!["tcp/127.0.0.1:0".into()],
            connect: vec![connect.into()],
            multicast: false,
            ..Default::default()
        };
        let bus = ZenohBus::open(&opts, "bench-sub", monotonic_ns)
            .map_err(|e| anyhow::anyhow!("zenoh subscriber: {e}"))?;
        let slots = InputSlots::new([0; RegionId::COUNT]);
        let mut stats = Vec::new();
        for p in [Payload::Embedding384, Payload::Embedding1280] {
            let w = slots.writer(p.region()).context("slot writer")?;
            stats.push(
                bus.feed_slot(p.region(), w)
                    .map_err(|e| anyhow::anyhow!("feed_slot: {e}"))?,
            );
        }
        let rec = Recorders::new();
        let fr = rec.get(Payload::Frame).clone();
        let frame = bus
            .session()
            .declare_subscriber(format!("{}/{FRAME_KEY}", bus.keys().prefix()))
            .callback(move |s| {
                let now = monotonic_ns();
                let b = s.payload().to_bytes();
                if let Some(t) = b.get(8..16) {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(t);
                    fr.sample(u64::from_le_bytes(a), now);
                }
            })
            .wait()
            .map_err(|e| anyhow::anyhow!("zenoh frame subscriber: {e}"))?;
        // The poller only has to see every sample once (the latency is in the slot's stamps):
        // a few polls per period.
        let poll = Duration::from_nanos((1e9 / rate_hz / 8.0) as u64)
            .clamp(Duration::from_micros(50), Duration::from_micros(500));
        let mut reader = slots.reader().context("slot reader")?;
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, recs) = (
            stop.clone(),
            [
                rec.get(Payload::Embedding384).clone(),
                rec.get(Payload::Embedding1280).clone(),
            ],
        );
        let poller = std::thread::Builder::new()
            .name("bench-zenoh-poller".into())
            .spawn(move || {
                let regions = [
                    Payload::Embedding384.region(),
                    Payload::Embedding1280.region(),
                ];
                let mut last = [0u64; 2];
                while !s2.load(Ordering::Relaxed) {
                    for (i, &region) in regions.iter().enumerate() {
                        if reader.update(region) {
                            let v = reader.view(region, false);
                            if v.seq != last[i] {
                                last[i] = v.seq;
                                if let Some(t) = stamp_from(v.vector) {
                                    recs[i].sample(t, v.stamp_ns);
                                }
                            }
                        }
                    }
                    std::thread::sleep(poll);
                }
            })?;
        let stats: [Arc<SourceStats>; 2] = stats
            .try_into()
            .map_err(|_| anyhow::anyhow!("two embedding sources"))?;
        Ok(Self {
            rec,
            stats,
            stop,
            poller: Some(poller),
            _frame: frame,
            _bus: bus,
        })
    }
}

impl Drop for ZenohSub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.poller.take() {
            let _ = h.join();
        }
    }
}

impl SubSide for ZenohSub {
    fn begin(&mut self, p: Payload, t0_ns: u64) -> Result<()> {
        self.rec.begin(p, t0_ns)
    }
    fn end(&mut self, p: Payload) -> Result<SubResult> {
        self.rec.end(p)
    }
    fn count(&mut self, p: Payload) -> Result<u64> {
        // Embeddings: every sample feed_slot accepted (the poller may miss some in a flood).
        Ok(match p {
            Payload::Embedding384 => self.stats[0].received.load(Ordering::Relaxed),
            Payload::Embedding1280 => self.stats[1].received.load(Ordering::Relaxed),
            Payload::Frame => self.rec.count(p)?,
        })
    }
}

/// A free TCP port on loopback (bound and released; zenoh binds it right after).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// Run the zenoh cases; returns them and the `zenoh` entry of the report.
fn zenoh_cases(opts: &BusBenchOptions) -> Result<(Vec<CaseReport>, serde_json::Value)> {
    let robot = format!("bench{}", std::process::id());
    // The publisher listens; the subscriber connects.
    let mut opened = None;
    let mut last_err = String::new();
    for _ in 0..5 {
        let endpoint = format!("tcp/127.0.0.1:{}", free_port()?);
        let zo = ZenohOptions {
            robot: robot.clone(),
            listen: vec![endpoint.clone()],
            multicast: false,
            ..Default::default()
        };
        match ZenohBus::open(&zo, "bench-pub", monotonic_ns) {
            Ok(b) => {
                opened = Some((b, endpoint));
                break;
            }
            Err(e) => last_err = e.to_string(),
        }
    }
    let (bus, endpoint) = opened.ok_or_else(|| anyhow::anyhow!("zenoh publisher: {last_err}"))?;
    let (mut sub, setup, processes, pid): (Box<dyn SubSide>, String, String, Option<u32>) =
        match &opts.peer {
            PeerProcess::Child(exe) => {
                let spec = PeerSpec::ZenohSub {
                    connect: endpoint.clone(),
                    robot: robot.clone(),
                    rate_hz: opts.rate_hz,
                };
                let mut cmd = std::process::Command::new(exe);
                cmd.args(["bench", "bus", "--peer", &serde_json::to_string(&spec)?]);
                let child = ChildPeer::spawn(cmd, "zenoh subscriber")?;
                let pid = child.pid();
                (
                    Box::new(child),
                    format!(
                        "two processes: publisher here, subscriber in child pid {pid}; {endpoint}"
                    ),
                    format!("cross-process: subscriber in a child process (pid {pid})"),
                    Some(pid),
                )
            }
            PeerProcess::SameProcess => (
                Box::new(ZenohSub::open(&endpoint, &robot, opts.rate_hz)?),
                format!("one process, two zenoh sessions over TCP loopback; {endpoint}"),
                "one process, two sessions over TCP loopback (not cross-process)".into(),
                None,
            ),
        };
    let mut e384 = bus
        .embedding_publisher(Payload::Embedding384.region())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut e1280 = bus
        .embedding_publisher(Payload::Embedding1280.region())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let frame_pub = bus
        .session()
        .declare_publisher(format!("{}/{FRAME_KEY}", bus.keys().prefix()))
        .congestion_control(zenoh::qos::CongestionControl::Drop)
        .express(true)
        .wait()
        .map_err(|e| anyhow::anyhow!("zenoh frame publisher: {e}"))?;
    let mut cases = Vec::new();
    for &p in &opts.payloads {
        let mut vec = vector(p.floats().max(3));
        let mut frame = frame_bytes();
        let mut publish = |seq: u64| {
            let t = monotonic_ns();
            match p {
                Payload::Frame => {
                    frame[..8].copy_from_slice(&seq.to_le_bytes());
                    frame[8..16].copy_from_slice(&t.to_le_bytes());
                    let _ = frame_pub.put(frame.clone()).wait();
                }
                _ => {
                    stamp_into(&mut vec, t);
                    let e = EmbeddingRef {
                        seq,
                        stamp_ns: t,
                        model_id: 1,
                        vector: &vec,
                        grid: [0; 3],
                        spatial: &[],
                    };
                    let publisher: &mut EmbeddingPublisher = if p == Payload::Embedding384 {
                        &mut e384
                    } else {
                        &mut e1280
                    };
                    publisher.publish(&e);
                }
            }
        };
        let measured = if p == Payload::Frame {
            "publish call (before the frame is copied into the sample) -> the subscriber's callback"
        } else {
            "publish call (before encoding) -> feed_slot's callback (the receive stamp it writes into the slot)"
        };
        cases.push(measure(
            opts,
            CaseSpec {
                transport: Transport::Zenoh,
                payload: p,
                setup: &setup,
                measured,
            },
            &mut publish,
            sub.as_mut(),
        )?);
    }
    drop(sub);
    drop(frame_pub);
    drop(bus);
    let info = serde_json::json!({
        "endpoint": endpoint,
        "processes": processes,
        "subscriber_pid": pid,
        "multicast_scouting": false,
        "congestion_control": "drop",
    });
    Ok((cases, info))
}

// ------------------------------------------------------------------ child processes

/// What a child process runs (`bench bus --peer <this as JSON>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
enum PeerSpec {
    /// The zenoh subscriber side.
    ZenohSub {
        connect: String,
        robot: String,
        rate_hz: f64,
    },
    /// The DDS subscriber side (inside the private network namespace).
    DdsSub { domain_id: u16 },
    /// The DDS cases, publisher side (inside the private network namespace).
    DdsRun {
        seconds: f64,
        warmup_s: f64,
        flood_s: f64,
        rate_hz: f64,
        payloads: Vec<Payload>,
    },
}

/// A command to a subscriber child, one JSON line on its stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
enum Cmd {
    Begin { payload: Payload, t0_ns: u64 },
    End { payload: Payload },
    Count { payload: Payload },
    Quit,
}

/// A child's answer, one JSON line on its stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
enum Reply {
    Ready,
    Ok,
    Result { received: u64, latency: LatencyUs },
    Count { n: u64 },
    Cases { cases: Vec<CaseReport> },
    Error { message: String },
}

/// How long a child may take to answer one command.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a child may take to start (join the bus, declare its subscribers).
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A child process spoken to over its stdin / stdout; stopped (by its pid) when dropped.
struct ChildPeer {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: crossbeam_channel::Receiver<String>,
    what: String,
}

impl ChildPeer {
    /// Start `cmd` and wait for its `ready` line.
    fn spawn(cmd: std::process::Command, what: &str) -> Result<Self> {
        let mut p = Self::start(cmd, what)?;
        match p.recv(READY_TIMEOUT)? {
            Reply::Ready => Ok(p),
            other => bail!("{what}: expected ready, got {other:?}"),
        }
    }

    /// Start `cmd` with piped stdin / stdout and a parent-death signal.
    fn start(mut cmd: std::process::Command, what: &str) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        // Children log warnings only; RustDDS warns on every fragmented frame and errors on
        // shutdown, which says nothing about the bench.
        if std::env::var_os("BRAINLOOP_LOG").is_none() {
            cmd.env("BRAINLOOP_LOG", "warn,rustdds=off");
        }
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to signal the child when
        // this thread dies, so no child outlives a killed bench.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start the {what}"))?;
        crate::util::children::track(child.id());
        let out = child.stdout.take().context("child stdout")?;
        let stdin = child.stdin.take();
        let (tx, lines) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("bench-child-out".into())
            .spawn(move || {
                for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Self {
            child,
            stdin,
            lines,
            what: what.into(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next reply line (other lines are passed on to stderr).
    fn recv(&mut self, timeout: Duration) -> Result<Reply> {
        let end = std::time::Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    bail!("{}: no answer within {timeout:?}", self.what)
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                    bail!("{} exited ({status})", self.what)
                }
            };
            match serde_json::from_str::<Reply>(&line) {
                Ok(Reply::Error { message }) => bail!("{}: {message}", self.what),
                Ok(r) => return Ok(r),
                Err(_) => eprintln!("[{}] {line}", self.what),
            }
        }
    }

    fn send(&mut self, cmd: &Cmd) -> Result<()> {
        let stdin = self.stdin.as_mut().context("child stdin closed")?;
        let mut line = serde_json::to_string(cmd)?;
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .and_then(|_| stdin.flush())
            .with_context(|| format!("{}: cannot send a command", self.what))
    }

    fn call(&mut self, cmd: &Cmd) -> Result<Reply> {
        self.send(cmd)?;
        self.recv(CALL_TIMEOUT)
    }
}

impl Drop for ChildPeer {
    fn drop(&mut self) {
        // Forgotten before it is reaped, so a signal never targets a reused pid.
        crate::util::children::untrack(self.child.id());
        if let Ok(None) = self.child.try_wait() {
            let _ = self.send(&Cmd::Quit);
            self.stdin = None;
            let end = std::time::Instant::now() + Duration::from_secs(3);
            while std::time::Instant::now() < end {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // SIGKILL to this child's pid only.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl SubSide for ChildPeer {
    fn begin(&mut self, p: Payload, t0_ns: u64) -> Result<()> {
        match self.call(&Cmd::Begin { payload: p, t0_ns })? {
            Reply::Ok => Ok(()),
            r => bail!("{}: unexpected {r:?}", self.what),
        }
    }
    fn end(&mut self, p: Payload) -> Result<SubResult> {
        match self.call(&Cmd::End { payload: p })? {
            Reply::Result { received, latency } => Ok(SubResult { received, latency }),
            r => bail!("{}: unexpected {r:?}", self.what),
        }
    }
    fn count(&mut self, p: Payload) -> Result<u64> {
        match self.call(&Cmd::Count { payload: p })? {
            Reply::Count { n } => Ok(n),
            r => bail!("{}: unexpected {r:?}", self.what),
        }
    }
}

fn reply(out: &mut impl Write, r: &Reply) -> Result<()> {
    let mut line = serde_json::to_string(r)?;
    line.push('\n');
    out.write_all(line.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Serve a subscriber side over stdin / stdout until `quit` or end of input.
fn serve(sub: &mut dyn SubSide) -> Result<()> {
    let mut out = std::io::stdout().lock();
    reply(&mut out, &Reply::Ready)?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let r = match serde_json::from_str::<Cmd>(&line) {
            Ok(Cmd::Quit) => break,
            Ok(Cmd::Begin { payload, t0_ns }) => sub.begin(payload, t0_ns).map(|_| Reply::Ok),
            Ok(Cmd::End { payload }) => sub.end(payload).map(|r| Reply::Result {
                received: r.received,
                latency: r.latency,
            }),
            Ok(Cmd::Count { payload }) => sub.count(payload).map(|n| Reply::Count { n }),
            Err(e) => Err(anyhow::anyhow!("bad command {line:?}: {e}")),
        };
        let r = r.unwrap_or_else(|e| Reply::Error {
            message: format!("{e:#}"),
        });
        reply(&mut out, &r)?;
    }
    Ok(())
}

/// The hidden `bench bus --peer SPEC`: run one side of a networked case in this process,
/// spoken to over stdin / stdout by the bench that started it.
pub fn run_peer(spec: &str) -> Result<()> {
    let spec: PeerSpec = serde_json::from_str(spec).context("bench bus --peer")?;
    match spec {
        PeerSpec::ZenohSub {
            connect,
            robot,
            rate_hz,
        } => {
            let mut sub = match ZenohSub::open(&connect, &robot, rate_hz) {
                Ok(s) => s,
                Err(e) => {
                    let _ = reply(
                        &mut std::io::stdout().lock(),
                        &Reply::Error {
                            message: format!("{e:#}"),
                        },
                    );
                    return Err(e);
                }
            };
            serve(&mut sub)
        }
        #[cfg(feature = "dds")]
        PeerSpec::DdsSub { domain_id } => {
            let mut sub = dds_bench::DdsSub::open(domain_id)?;
            serve(&mut sub)
        }
        #[cfg(feature = "dds")]
        PeerSpec::DdsRun {
            seconds,
            warmup_s,
            flood_s,
            rate_hz,
            payloads,
        } => {
            let opts = BusBenchOptions {
                seconds,
                warmup_s,
                flood_s,
                rate_hz,
                payloads,
                transports: vec![Transport::Dds],
                peer: PeerProcess::current_exe(),
            };
            let r = match dds_bench::run_cases(&opts) {
                Ok(cases) => Reply::Cases { cases },
                Err(e) => Reply::Error {
                    message: format!("{e:#}"),
                },
            };
            reply(&mut std::io::stdout().lock(), &r)
        }
        #[cfg(not(feature = "dds"))]
        PeerSpec::DdsSub { .. } | PeerSpec::DdsRun { .. } => bail!("DDS: {DDS_NOT_BUILT}"),
    }
}

// ------------------------------------------------------------------ DDS

/// Run the DDS cases in a private network namespace; returns them and the `dds` entry.
#[cfg(feature = "dds")]
fn dds_cases(opts: &BusBenchOptions) -> Result<(Vec<CaseReport>, serde_json::Value)> {
    let PeerProcess::Child(exe) = &opts.peer else {
        bail!("skipped: DDS runs in a child process in a private network namespace, and there is no brainloop executable to start");
    };
    let spec = PeerSpec::DdsRun {
        seconds: opts.seconds,
        warmup_s: opts.warmup_s,
        flood_s: opts.flood_s,
        rate_hz: opts.rate_hz,
        payloads: opts.payloads.clone(),
    };
    // Loopback only, with a multicast route for discovery: no packet leaves this machine.
    let setup = "ip link set lo up && ip link set lo multicast on && \
                 ip route add 224.0.0.0/4 dev lo && exec \"$0\" \"$@\"";
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-n", "sh", "-c", setup]).arg(exe).args([
        "bench",
        "bus",
        "--peer",
        &serde_json::to_string(&spec)?,
    ]);
    let mut run = ChildPeer::start(cmd, "DDS bench (unshare -n)")?;
    let per_case = opts.warmup_s + opts.seconds + opts.flood_s + MAX_EXTRA_WARMUP_S + 5.0;
    let timeout = Duration::from_secs_f64(30.0 + per_case * opts.payloads.len() as f64);
    let cases = match run.recv(timeout)? {
        Reply::Cases { cases } => cases,
        r => bail!("DDS bench: unexpected {r:?}"),
    };
    let info = serde_json::json!({
        "processes": "cross-process: publisher and subscriber in two processes",
        "network": "a private network namespace (unshare -n) with loopback only",
        "stack": "ros2-client 0.12 / RustDDS",
        "qos": "reliable, volatile, keep last 10",
    });
    Ok((cases, info))
}

#[cfg(feature = "dds")]
mod dds_bench {
    //! Both sides of the DDS cases, run inside the private network namespace.
    use super::*;
    use ros2_client::dds::rustdds::mio1::{Events, Interest, Poll, Token};
    use ros2_client::dds::{Context, ContextOptions, Node, Publisher, Subscription};
    use ros2_client::qos::{Durability, History, WhenFull};
    use ros2_client::{MessageTypeName, Name, NodeName, NodeOptions, QosProfile};

    /// DDS domain of the bench (the namespace is private; any domain would do).
    const DOMAIN: u16 = 0;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(super) struct BenchEmbedding {
        seq: u64,
        stamp_ns: u64,
        data: Vec<f32>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(super) struct BenchFrame {
        seq: u64,
        stamp_ns: u64,
        data: Vec<u8>,
    }

    fn topic_of(p: Payload) -> &'static str {
        match p {
            Payload::Embedding384 => "embedding384",
            Payload::Embedding1280 => "embedding1280",
            Payload::Frame => "frame",
        }
    }

    fn derr(what: &str) -> impl FnOnce(String) -> anyhow::Error + '_ {
        move |e| anyhow::anyhow!("DDS: cannot create {what}: {e}")
    }

    struct Dds {
        node: Node,
        _ctx: Context,
        qos: QosProfile,
    }

    impl Dds {
        fn new(name: &str, domain_id: u16) -> Result<Self> {
            let ctx = Context::with_options(ContextOptions::new().domain_id(domain_id))
                .map_err(|e| derr("participant")(e.to_string()))?;
            let node = ctx
                .new_node(
                    NodeName::new("/brainloop", name)
                        .map_err(|e| derr("node name")(e.to_string()))?,
                    NodeOptions::new().enable_rosout(false),
                )
                .map_err(|e| derr("node")(e.to_string()))?;
            let qos = QosProfile::publisher_default()
                .reliability_reliable(WhenFull::DEFAULT)
                .durability(Durability::Volatile)
                .history(History::KeepLast { depth: 10 });
            Ok(Self {
                node,
                _ctx: ctx,
                qos,
            })
        }

        fn topic(&self, p: Payload) -> Result<ros2_client::dds::rustdds::Topic> {
            let ty = if p == Payload::Frame {
                MessageTypeName::new("brainloop_msgs", "BenchFrame")
            } else {
                MessageTypeName::new("brainloop_msgs", "BenchEmbedding")
            };
            let name = Name::new("/brainloop/bench", topic_of(p))
                .map_err(|e| derr("topic name")(e.to_string()))?;
            self.node
                .create_topic(&name, ty, &self.qos)
                .map_err(|e| derr(topic_of(p))(e.to_string()))
        }
    }

    /// The subscriber side: a thread taking samples as soon as the reader signals them.
    pub(super) struct DdsSub {
        rec: Recorders,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl DdsSub {
        pub(super) fn open(domain_id: u16) -> Result<Self> {
            let rec = Recorders::new();
            let recs = rec.0.clone();
            let stop = Arc::new(AtomicBool::new(false));
            let s2 = stop.clone();
            let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<()>>(1);
            let thread = std::thread::Builder::new()
                .name("bench-dds-sub".into())
                .spawn(move || {
                    // DDS entities are created on the thread that uses them.
                    let setup = || -> Result<_> {
                        let mut d = Dds::new("bench_sub", domain_id)?;
                        let t384 = d.topic(Payload::Embedding384)?;
                        let t1280 = d.topic(Payload::Embedding1280)?;
                        let tf = d.topic(Payload::Frame)?;
                        let e = |w: &'static str| {
                            move |e: ros2_client::CreateError| derr(w)(e.to_string())
                        };
                        let mut s384: Subscription<BenchEmbedding> = d
                            .node
                            .create_subscription(&t384, None)
                            .map_err(e("reader"))?;
                        let mut s1280: Subscription<BenchEmbedding> = d
                            .node
                            .create_subscription(&t1280, None)
                            .map_err(e("reader"))?;
                        let mut sf: Subscription<BenchFrame> =
                            d.node.create_subscription(&tf, None).map_err(e("reader"))?;
                        let poll = Poll::new()?;
                        let r = poll.registry();
                        r.register(&mut s384, Token(0), Interest::READABLE)?;
                        r.register(&mut s1280, Token(1), Interest::READABLE)?;
                        r.register(&mut sf, Token(2), Interest::READABLE)?;
                        Ok((d, s384, s1280, sf, poll))
                    };
                    let (_d, s384, s1280, sf, mut poll) = match setup() {
                        Ok(v) => {
                            let _ = ready_tx.send(Ok(()));
                            v
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let mut events = Events::with_capacity(16);
                    while !s2.load(Ordering::Relaxed) {
                        let _ = poll.poll(&mut events, Some(Duration::from_millis(50)));
                        // Edge-triggered: drain every reader on each wake-up.
                        while let Ok(Some((m, _))) = s384.take() {
                            recs[0].sample(m.stamp_ns, monotonic_ns());
                        }
                        while let Ok(Some((m, _))) = s1280.take() {
                            recs[1].sample(m.stamp_ns, monotonic_ns());
                        }
                        while let Ok(Some((m, _))) = sf.take() {
                            recs[2].sample(m.stamp_ns, monotonic_ns());
                        }
                    }
                })?;
            match ready_rx.recv() {
                Ok(Ok(())) => Ok(Self {
                    rec,
                    stop,
                    thread: Some(thread),
                }),
                Ok(Err(e)) => {
                    let _ = thread.join();
                    Err(e)
                }
                Err(_) => {
                    let _ = thread.join();
                    bail!("DDS subscriber thread exited during start-up")
                }
            }
        }
    }

    impl Drop for DdsSub {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    impl SubSide for DdsSub {
        fn begin(&mut self, p: Payload, t0_ns: u64) -> Result<()> {
            self.rec.begin(p, t0_ns)
        }
        fn end(&mut self, p: Payload) -> Result<SubResult> {
            self.rec.end(p)
        }
        fn count(&mut self, p: Payload) -> Result<u64> {
            self.rec.count(p)
        }
    }

    /// The publisher side: every DDS case, the subscriber in a child process (same namespace).
    pub(super) fn run_cases(opts: &BusBenchOptions) -> Result<Vec<CaseReport>> {
        let PeerProcess::Child(exe) = &opts.peer else {
            bail!("no brainloop executable for the DDS subscriber");
        };
        let spec = PeerSpec::DdsSub { domain_id: DOMAIN };
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["bench", "bus", "--peer", &serde_json::to_string(&spec)?]);
        let mut sub = ChildPeer::spawn(cmd, "DDS subscriber")?;
        let pid = sub.pid();
        let mut d = Dds::new("bench_pub", DOMAIN)?;
        let e = |w: &'static str| move |e: ros2_client::CreateError| derr(w)(e.to_string());
        let t384 = d.topic(Payload::Embedding384)?;
        let t1280 = d.topic(Payload::Embedding1280)?;
        let tf = d.topic(Payload::Frame)?;
        let p384: Publisher<BenchEmbedding> =
            d.node.create_publisher(&t384, None).map_err(e("writer"))?;
        let p1280: Publisher<BenchEmbedding> =
            d.node.create_publisher(&t1280, None).map_err(e("writer"))?;
        let pf: Publisher<BenchFrame> = d.node.create_publisher(&tf, None).map_err(e("writer"))?;
        let setup = format!(
            "two processes in a private network namespace (loopback only): publisher here, subscriber in child pid {pid}"
        );
        let mut cases = Vec::new();
        for &p in &opts.payloads {
            let data = vector(p.floats());
            let frame = frame_bytes();
            let mut publish = |seq: u64| {
                let stamp_ns = monotonic_ns();
                // `publish` takes the message by value: the copy is part of the cost.
                let _ = match p {
                    Payload::Frame => pf
                        .publish(BenchFrame {
                            seq,
                            stamp_ns,
                            data: frame.clone(),
                        })
                        .is_ok(),
                    Payload::Embedding384 | Payload::Embedding1280 => {
                        let w = if p == Payload::Embedding384 {
                            &p384
                        } else {
                            &p1280
                        };
                        w.publish(BenchEmbedding {
                            seq,
                            stamp_ns,
                            data: data.clone(),
                        })
                        .is_ok()
                    }
                };
            };
            cases.push(measure(
                opts,
                CaseSpec {
                    transport: Transport::Dds,
                    payload: p,
                    setup: &setup,
                    measured: "publish call (before the message is copied and serialised) -> the subscriber's take",
                },
                &mut publish,
                &mut sub,
            )?);
        }
        Ok(cases)
    }
}

// ------------------------------------------------------------------ the run

/// Run `bench bus`: every transport in `opts` for every payload, one after another, in one
/// run. A networked transport that cannot run is reported as such (its `zenoh` / `dds` entry
/// says why); only bad options are an error.
pub fn run(opts: &BusBenchOptions) -> Result<BusBenchReport> {
    if !(opts.seconds > 0.0 && opts.seconds <= 3600.0) {
        bail!("--seconds must be in (0, 3600], got {}", opts.seconds);
    }
    if !(opts.rate_hz >= 1.0 && opts.rate_hz <= 100_000.0) {
        bail!("--rate must be in [1, 100000] Hz, got {}", opts.rate_hz);
    }
    if !(opts.warmup_s >= 0.0
        && opts.warmup_s <= 60.0
        && opts.flood_s >= 0.0
        && opts.flood_s <= 60.0)
    {
        bail!("warm-up and flood must be in [0, 60] s");
    }
    let load_start = load_avg_1m();
    let mut cases = Vec::new();
    let wants = |t: Transport| opts.transports.contains(&t);
    let mut zenoh = serde_json::Value::String("not measured".into());
    let mut dds = serde_json::Value::String("not measured".into());
    if wants(Transport::Slots) {
        for &p in &opts.payloads {
            cases.push(slots_case(opts, p)?);
        }
    }
    if wants(Transport::Localbus) {
        for &p in &opts.payloads {
            cases.push(localbus_case(opts, p)?);
        }
    }
    if wants(Transport::Zenoh) {
        match zenoh_cases(opts) {
            Ok((c, info)) => {
                cases.extend(c);
                zenoh = info;
            }
            Err(e) => zenoh = serde_json::json!({ "error": format!("{e:#}") }),
        }
    }
    if wants(Transport::Dds) {
        dds = dds_entry(opts, &mut cases);
    }
    let ratios = ratios(&cases, &opts.payloads);
    let z384 = cases
        .iter()
        .find(|c| c.transport == "zenoh" && c.payload == Payload::Embedding384.name());
    let target = TargetCheck {
        p50_us_max: TARGET_P50_US,
        p99_us_max: TARGET_P99_US,
        p50_us: z384.map(|c| c.latency_us.p50),
        p99_us: z384.map(|c| c.latency_us.p99),
        met: z384.map(|c| c.latency_us.p50 <= TARGET_P50_US && c.latency_us.p99 <= TARGET_P99_US),
    };
    Ok(BusBenchReport {
        rate_hz: opts.rate_hz,
        seconds: opts.seconds,
        warmup_s: opts.warmup_s,
        flood_s: opts.flood_s,
        clock: "CLOCK_MONOTONIC",
        load_avg_1m: [load_start, load_avg_1m()],
        cases,
        zenoh,
        dds,
        ratios,
        target,
        anchors: ANCHORS
            .iter()
            .map(|&(transport, value, source)| Anchor {
                transport,
                value,
                source,
            })
            .collect(),
    })
}

/// The 1-minute load average (`/proc/loadavg`).
fn load_avg_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(feature = "dds")]
fn dds_entry(opts: &BusBenchOptions, cases: &mut Vec<CaseReport>) -> serde_json::Value {
    match dds_cases(opts) {
        Ok((c, info)) => {
            cases.extend(c);
            info
        }
        Err(e) => serde_json::Value::String(format!("failed: {e:#}")),
    }
}

#[cfg(not(feature = "dds"))]
fn dds_entry(_opts: &BusBenchOptions, _cases: &mut Vec<CaseReport>) -> serde_json::Value {
    serde_json::Value::String(DDS_NOT_BUILT.into())
}

/// p50 ratios per payload: `zenoh/slots`, `zenoh/localbus`, `dds/zenoh` (None when a side is
/// missing or zero).
fn ratios(
    cases: &[CaseReport],
    payloads: &[Payload],
) -> BTreeMap<String, BTreeMap<String, Option<f64>>> {
    let p50 = |t: &str, p: Payload| {
        cases
            .iter()
            .find(|c| c.transport == t && c.payload == p.name() && c.latency_us.samples > 0)
            .map(|c| c.latency_us.p50)
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    payloads
        .iter()
        .map(|&p| {
            let z = p50("zenoh", p);
            let m = BTreeMap::from([
                ("zenoh/slots".to_string(), ratio(z, p50("slots", p))),
                ("zenoh/localbus".to_string(), ratio(z, p50("localbus", p))),
                ("dds/zenoh".to_string(), ratio(p50("dds", p), z)),
            ]);
            (p.name().to_string(), m)
        })
        .collect()
}

fn describe(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}: {s}"),
                v => format!("{k}: {v}"),
            })
            .collect::<Vec<_>>()
            .join("; "),
        v => v.to_string(),
    }
}

/// The report as a short text table.
pub fn format_report(r: &BusBenchReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "bench bus: paced {:.0} Hz on absolute deadlines, {:.1} s warm-up + {:.1} s measured + {:.1} s flood per case; latency on {}",
        r.rate_hz, r.warmup_s, r.seconds, r.flood_s, r.clock
    );
    let _ = writeln!(
        s,
        "{:<9} {:<15} {:>7} {:>9} {:>9} {:>9} {:>11} {:>8} {:>8} {:>11} {:>11} {:>9}",
        "transport",
        "payload",
        "bytes",
        "p50 us",
        "p99 us",
        "max us",
        "recv/sent",
        "msgs/s",
        "MB/s",
        "flood pub/s",
        "flood rcv/s",
        "rcv MB/s"
    );
    for c in &r.cases {
        let _ = writeln!(
            s,
            "{:<9} {:<15} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>11} {:>8.1} {:>8.2} {:>11.0} {:>11.0} {:>9.1}",
            c.transport,
            c.payload,
            c.payload_bytes,
            c.latency_us.p50,
            c.latency_us.p99,
            c.latency_us.max,
            format!("{}/{}", c.received, c.sent),
            c.msgs_s,
            c.mb_s,
            c.flood.sent_msgs_s,
            c.flood.msgs_s,
            c.flood.mb_s
        );
    }
    let _ = writeln!(s, "ratios of p50:");
    for (p, m) in &r.ratios {
        let parts: Vec<String> = m
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k} {v:.1}x"),
                None => format!("{k} -"),
            })
            .collect();
        let _ = writeln!(s, "  {p:<15} {}", parts.join(", "));
    }
    match (r.target.p50_us, r.target.p99_us, r.target.met) {
        (Some(p50), Some(p99), Some(met)) => {
            let _ = writeln!(
                s,
                "target: embedding384 over zenoh loopback p50 <= {:.0} us, p99 <= {:.0} us: p50 {p50:.1} us, p99 {p99:.1} us: {}",
                r.target.p50_us_max,
                r.target.p99_us_max,
                if met { "met" } else { "NOT met" }
            );
        }
        _ => {
            let _ = writeln!(s, "target: embedding384 over zenoh not measured");
        }
    }
    let _ = writeln!(
        s,
        "published anchors (one machine): zenoh peer-to-peer ~10 us median (ZettaScale/NTU 2023); Cyclone DDS ~8 us; dora-rs ~0.2 ms p50"
    );
    if let [Some(a), Some(b)] = r.load_avg_1m {
        let _ = writeln!(
            s,
            "load average (1 min): {a:.2} at the start, {b:.2} at the end"
        );
    }
    let _ = writeln!(s, "zenoh: {}", describe(&r.zenoh));
    let _ = writeln!(s, "dds: {}", describe(&r.dds));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_survive_f32() {
        for t in [0u64, 1, 123_456_789_012_345, u64::MAX >> 1, monotonic_ns()] {
            let mut v = vec![0.0f32; 4];
            stamp_into(&mut v, t);
            assert!(v.iter().all(|x| x.is_finite()));
            assert_eq!(stamp_from(&v), Some(t));
        }
        assert_eq!(stamp_from(&[1.0, 2.0]), None);
    }

    #[test]
    fn the_recorder_times_only_its_window() {
        let r = Recorder::new();
        r.sample(100, 200);
        r.begin(1_000);
        r.sample(900, 1_100);
        r.sample(1_000, 3_000);
        r.sample(2_000, 6_000);
        let s = r.end();
        assert_eq!(s.received, 2);
        assert_eq!(s.latency.samples, 2);
        assert!((s.latency.max - 4.0).abs() < 0.01, "{:?}", s.latency);
        r.sample(5_000, 5_001);
        assert_eq!(r.total.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn ratios_divide_p50s_and_leave_missing_sides_empty() {
        let case = |t: &str, p50: f64| CaseReport {
            transport: t.into(),
            payload: "embedding384".into(),
            payload_bytes: 1536,
            setup: String::new(),
            measured: String::new(),
            sent: 10,
            received: 10,
            latency_us: LatencyUs {
                samples: 10,
                p50,
                ..Default::default()
            },
            msgs_s: 0.0,
            mb_s: 0.0,
            flood: Flood::default(),
        };
        let cases = [
            case("slots", 2.0),
            case("localbus", 5.0),
            case("zenoh", 50.0),
        ];
        let r = ratios(&cases, &[Payload::Embedding384]);
        let m = &r["embedding384"];
        assert_eq!(m["zenoh/slots"], Some(25.0));
        assert_eq!(m["zenoh/localbus"], Some(10.0));
        assert_eq!(m["dds/zenoh"], None);
    }

    #[test]
    fn protocol_lines_round_trip() {
        let c = Cmd::Begin {
            payload: Payload::Frame,
            t0_ns: 42,
        };
        let s = serde_json::to_string(&c).unwrap();
        assert!(matches!(
            serde_json::from_str::<Cmd>(&s).unwrap(),
            Cmd::Begin {
                payload: Payload::Frame,
                t0_ns: 42
            }
        ));
        let spec = PeerSpec::ZenohSub {
            connect: "tcp/127.0.0.1:1".into(),
            robot: "r".into(),
            rate_hz: 200.0,
        };
        let s = serde_json::to_string(&spec).unwrap();
        assert!(s.contains("zenoh_sub"), "{s}");
        assert!(run_peer("{\"role\":\"nonsense\"}").is_err());
    }

    /// A tiny run of the in-process slots and zenoh (two sessions over TCP loopback in this
    /// process: a unit test has no brainloop executable to start as the subscriber).
    #[test]
    fn tiny_run_reports_slots_and_zenoh_with_counts() {
        let opts = BusBenchOptions {
            seconds: 0.3,
            warmup_s: 0.2,
            flood_s: 0.1,
            rate_hz: 200.0,
            payloads: vec![Payload::Embedding384],
            transports: vec![Transport::Slots, Transport::Zenoh],
            peer: PeerProcess::SameProcess,
        };
        let r = run(&opts).unwrap();
        for t in [Transport::Slots, Transport::Zenoh] {
            let c = r
                .case(t, Payload::Embedding384)
                .unwrap_or_else(|| panic!("no {} case: {:?}", t.name(), r.zenoh));
            assert!(c.sent > 0, "{c:?}");
            assert!(c.received > 0, "{c:?}");
            assert!(c.latency_us.samples > 0 && c.latency_us.p50 > 0.0, "{c:?}");
            assert!(c.flood.received > 0, "{c:?}");
        }
        let json = serde_json::to_value(&r).unwrap();
        assert!(json.get("zenoh").is_some());
        assert!(json["zenoh"]["processes"]
            .as_str()
            .unwrap()
            .contains("one process"));
        assert!(json["ratios"]["embedding384"]["zenoh/slots"].is_number());
        if cfg!(not(feature = "dds")) {
            assert_eq!(json["dds"], "not measured");
        }
        let text = format_report(&r);
        assert!(
            text.contains("zenoh") && text.contains("ZettaScale"),
            "{text}"
        );
    }
}
