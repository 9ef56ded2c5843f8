//! The brain's own messages on the wire: `brainloop_msgs/msg/Embedding`,
//! `brainloop_msgs/msg/RegionFreshness` and `brainloop_msgs/msg/LoopHealth`
//! (`ros/brainloop_msgs/msg/*.msg`), encoded as ROS 2 CDR (little-endian XCDR1, the bytes
//! rmw_zenoh, rmw_cyclonedds and rmw_fastrtps put on the wire) with the writer and reader of
//! [`super::cdr`]. Checked byte for byte against an independent encoder (rosbags:
//! `scripts/ros2/gen_msg_fixtures.py` and `tests/wire.rs`).
//!
//! Pure: no transport. A region process encodes its embedding with
//! [`EmbeddingMsg::encode_ref_into`] (straight from the [`EmbeddingRef`] it would give a slot,
//! into a reused buffer); the integrator's side decodes with [`EmbeddingMsg::decode_into`]
//! (reusing the message's vectors) and hands [`EmbeddingMsg::embedding_ref`] to its slot, which
//! borrows the decoded vectors.
//!
//! Decoding is safe on hostile input: it never panics, and a length prefix is checked against
//! its limit ([`WireError::TooLong`]) and against the bytes left ([`WireError::Truncated`])
//! before anything is allocated for it, so a message never allocates more than its own size.
//! A decoded message is also checked for meaning (each check its own [`WireError`]): the
//! schema version, a known region whose name is also `header.frame_id`, `shape == [data.len()]`,
//! `spatial_shape` empty or `[rows, cols, channels]` with a product equal to `spatial.len()`,
//! at most [`MAX_VECTOR`] / [`MAX_SPATIAL`] values, no empty vector, only finite values, and a
//! valid stamp.
//!
//! Trailing bytes: up to [`MAX_TRAILING`] (3) bytes after the last field are accepted and
//! ignored (XCDR1 lets a sender pad the payload to a multiple of 4, announcing it in the
//! encapsulation options, which are ignored here); more is [`WireError::Trailing`], since it
//! means the sender has a layout this code does not know.

use super::cdr::{CdrError, Reader, Writer};
use super::slots::{EmbeddingRef, MAX_SPATIAL, MAX_VECTOR};
use crate::msg::RegionId;

/// The layout version of the messages in this file (`SCHEMA_VERSION` in `Embedding.msg` and
/// `LoopHealth.msg`).
pub const SCHEMA_VERSION: u16 = 1;
/// Longest string accepted in a name field (region, mode, `header.frame_id`), bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Most entries accepted in `LoopHealth.regions`.
pub const MAX_HEALTH_REGIONS: usize = 32;
/// Most bytes accepted after the last field (alignment padding).
pub const MAX_TRAILING: usize = 3;
/// Longest `shape` / `spatial_shape` accepted while decoding (their valid ranks are 1 and 0/3;
/// a longer one is [`WireError::TooLong`], a shorter wrong one [`WireError::Rank`]).
const MAX_RANK: usize = 8;
/// Fewest bytes one encoded `RegionFreshness` can take (an empty string, no padding).
const MIN_FRESHNESS_BYTES: usize = 5 + 1 + 3 * 8 + 3 * 8 + 4;

/// Why bytes were not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer ended early (or a length prefix claims more than the bytes left).
    #[error("message truncated")]
    Truncated,
    /// Not little-endian plain CDR.
    #[error("unsupported CDR encapsulation {0:02x?}")]
    Encapsulation([u8; 2]),
    /// A string that is not NUL-terminated UTF-8.
    #[error("invalid string")]
    BadString,
    /// A sequence or string over its limit.
    #[error("{field}: {len} elements, at most {max} accepted")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length prefix.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A `schema_version` other than [`SCHEMA_VERSION`].
    #[error("schema version {got}, expected {want}")]
    SchemaVersion {
        /// Received.
        got: u16,
        /// Understood.
        want: u16,
    },
    /// A shape of the wrong rank (`shape` must be `[dim]`, `spatial_shape` empty or
    /// `[rows, cols, channels]`).
    #[error("{field} has rank {rank}")]
    Rank {
        /// The field.
        field: &'static str,
        /// Its length.
        rank: usize,
    },
    /// The product of `shape` is not the length of `data`.
    #[error("shape product {product} != {len} data values")]
    ShapeMismatch {
        /// Product of `shape` (saturating).
        product: u64,
        /// `data.len()`.
        len: usize,
    },
    /// The product of `spatial_shape` is not the length of `spatial`.
    #[error("spatial shape product {product} != {len} spatial values")]
    SpatialShapeMismatch {
        /// Product of `spatial_shape` (saturating; 0 when empty).
        product: u64,
        /// `spatial.len()`.
        len: usize,
    },
    /// An embedding with no values.
    #[error("empty embedding vector")]
    Empty,
    /// A NaN or infinity in `data` or `spatial`.
    #[error("non-finite value in {field}")]
    NonFinite {
        /// The field.
        field: &'static str,
    },
    /// A region name that is not one of [`RegionId::ALL`].
    #[error("unknown region {0:?}")]
    UnknownRegion(String),
    /// `header.frame_id` is not the region name.
    #[error("header.frame_id {frame_id:?} is not the region {region:?}")]
    FrameMismatch {
        /// `header.frame_id`.
        frame_id: String,
        /// `region`.
        region: String,
    },
    /// A stamp with negative seconds or `nanosec >= 1e9`.
    #[error("invalid stamp {sec} s {nanosec} ns")]
    BadStamp {
        /// `stamp.sec`.
        sec: i32,
        /// `stamp.nanosec`.
        nanosec: u32,
    },
    /// More than [`MAX_TRAILING`] bytes after the last field.
    #[error("{0} unexpected bytes after the message")]
    Trailing(usize),
}

impl WireError {
    /// The error of a failed read of `field`.
    fn at(field: &'static str) -> impl Fn(CdrError) -> WireError {
        move |e| match e {
            CdrError::TooLong { len, max } => WireError::TooLong { field, len, max },
            other => other.into(),
        }
    }
}

impl From<CdrError> for WireError {
    fn from(e: CdrError) -> Self {
        match e {
            CdrError::Truncated => WireError::Truncated,
            CdrError::Encapsulation(b) => WireError::Encapsulation(b),
            CdrError::BadString => WireError::BadString,
            CdrError::TooLong { len, max } => WireError::TooLong {
                field: "sequence",
                len,
                max,
            },
        }
    }
}

/// A message of the brain with a ROS 2 type and a CDR encoding.
pub trait WireMessage: Sized {
    /// ROS 2 type name, `brainloop_msgs/msg/Embedding`.
    const TYPE_NAME: &'static str;
    /// DDS type name (the type segment of an rmw_zenoh key expression),
    /// `brainloop_msgs::msg::dds_::Embedding_`.
    const DDS_TYPE_NAME: &'static str;
    /// Encode into `out` (cleared first; its capacity is reused).
    fn encode_into(&self, out: &mut Vec<u8>);
    /// Decode and check.
    fn from_cdr(bytes: &[u8]) -> Result<Self, WireError>;
    /// Encode into a new buffer.
    fn to_cdr(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

fn check_trailing(r: &Reader<'_>) -> Result<(), WireError> {
    match r.remaining() {
        n if n > MAX_TRAILING => Err(WireError::Trailing(n)),
        _ => Ok(()),
    }
}

fn check_schema(got: u16) -> Result<(), WireError> {
    if got != SCHEMA_VERSION {
        return Err(WireError::SchemaVersion {
            got,
            want: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Saturating product of a shape (1 for an empty one).
fn product(shape: &[u32]) -> u64 {
    shape
        .iter()
        .fold(1u64, |p, &d| p.saturating_mul(u64::from(d)))
}

// ------------------------------------------------------------------ std_msgs/Header

/// `std_msgs/msg/Header`: `builtin_interfaces/Time stamp` (as `stamp_sec`, `stamp_nanosec`) and
/// `frame_id`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// `stamp.sec`.
    pub stamp_sec: i32,
    /// `stamp.nanosec`, below 1e9.
    pub stamp_nanosec: u32,
    /// `frame_id`.
    pub frame_id: String,
}

impl Header {
    /// A header stamped `stamp_ns` (nanoseconds on the brain's clock). A stamp past
    /// `i32::MAX` seconds (68 years) saturates there.
    pub fn from_stamp_ns(stamp_ns: u64, frame_id: impl Into<String>) -> Self {
        let (sec, nanosec) = stamp_parts(stamp_ns);
        Self {
            stamp_sec: sec,
            stamp_nanosec: nanosec,
            frame_id: frame_id.into(),
        }
    }

    /// The stamp in nanoseconds; `None` for a negative one or `nanosec >= 1e9`.
    pub fn stamp_ns(&self) -> Option<u64> {
        if self.stamp_sec < 0 || self.stamp_nanosec >= 1_000_000_000 {
            return None;
        }
        Some(self.stamp_sec as u64 * 1_000_000_000 + u64::from(self.stamp_nanosec))
    }

    fn check_stamp(&self) -> Result<u64, WireError> {
        self.stamp_ns().ok_or(WireError::BadStamp {
            sec: self.stamp_sec,
            nanosec: self.stamp_nanosec,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.i32(self.stamp_sec)
            .u32(self.stamp_nanosec)
            .string(&self.frame_id);
    }

    fn read_into(&mut self, r: &mut Reader<'_>) -> Result<(), WireError> {
        self.stamp_sec = r.i32()?;
        self.stamp_nanosec = r.u32()?;
        r.string_into(&mut self.frame_id, MAX_NAME_BYTES)
            .map_err(WireError::at("header.frame_id"))
    }
}

fn stamp_parts(stamp_ns: u64) -> (i32, u32) {
    let sec = stamp_ns / 1_000_000_000;
    if sec > i32::MAX as u64 {
        return (i32::MAX, 999_999_999);
    }
    (sec as i32, (stamp_ns % 1_000_000_000) as u32)
}

// ------------------------------------------------------------------ Embedding

/// `brainloop_msgs/msg/Embedding`: one region's embedding (see `Embedding.msg`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EmbeddingMsg {
    /// `stamp`: capture time of the input; `frame_id`: the region name.
    pub header: Header,
    /// [`SCHEMA_VERSION`] of the sender.
    pub schema_version: u16,
    /// The region ([`RegionId::name`]).
    pub region: String,
    /// Identifier of the model that produced it.
    pub model_id: u32,
    /// Per-region sequence number.
    pub sequence: u64,
    /// `[data.len()]`.
    pub shape: Vec<u32>,
    /// The embedding vector.
    pub data: Vec<f32>,
    /// `[rows, cols, channels]`, or empty without a spatial grid.
    pub spatial_shape: Vec<u32>,
    /// Row-major spatial tokens.
    pub spatial: Vec<f32>,
}

impl EmbeddingMsg {
    /// Encode `e` from `region` as an `Embedding` into `out` (cleared first, capacity reused):
    /// the same bytes as `EmbeddingMsg::from_ref(region, e).to_cdr()`, without building the
    /// message. `header.frame_id` is `region`; a `[0, 0, 0]` grid is an empty `spatial_shape`.
    pub fn encode_ref_into(region: &str, e: &EmbeddingRef<'_>, out: &mut Vec<u8>) {
        let (sec, nanosec) = stamp_parts(e.stamp_ns);
        let mut w = Writer::with_buffer(std::mem::take(out));
        w.i32(sec).u32(nanosec).string(region);
        let grid: &[u32] = if e.grid == [0; 3] { &[] } else { &e.grid };
        w.u16(SCHEMA_VERSION)
            .string(region)
            .u32(e.model_id)
            .u64(e.seq)
            .u32_seq(&[e.vector.len() as u32])
            .f32_seq(e.vector)
            .u32_seq(grid)
            .f32_seq(e.spatial);
        *out = w.finish();
    }

    /// The message for `e` from `region` (copies its vectors; [`EmbeddingMsg::encode_ref_into`]
    /// encodes without the copy).
    pub fn from_ref(region: &str, e: &EmbeddingRef<'_>) -> Self {
        Self {
            header: Header::from_stamp_ns(e.stamp_ns, region),
            schema_version: SCHEMA_VERSION,
            region: region.to_string(),
            model_id: e.model_id,
            sequence: e.seq,
            shape: vec![e.vector.len() as u32],
            data: e.vector.to_vec(),
            spatial_shape: if e.grid == [0; 3] {
                Vec::new()
            } else {
                e.grid.to_vec()
            },
            spatial: e.spatial.to_vec(),
        }
    }

    /// The region, if its name is known.
    pub fn region_id(&self) -> Option<RegionId> {
        RegionId::from_name(&self.region)
    }

    /// The slot grid: `spatial_shape`, or `[0, 0, 0]` when it is empty (or not of rank 3).
    pub fn grid(&self) -> [u32; 3] {
        match self.spatial_shape[..] {
            [r, c, ch] => [r, c, ch],
            _ => [0; 3],
        }
    }

    /// The embedding as a slot takes it, borrowing this message's vectors (no copy). Its stamp
    /// is 0 when the header's is invalid (a decoded message never has one).
    pub fn embedding_ref(&self) -> EmbeddingRef<'_> {
        EmbeddingRef {
            seq: self.sequence,
            stamp_ns: self.header.stamp_ns().unwrap_or(0),
            model_id: self.model_id,
            vector: &self.data,
            grid: self.grid(),
            spatial: &self.spatial,
        }
    }

    /// Check what [`EmbeddingMsg::from_cdr`] checks after parsing; the region on success.
    pub fn validate(&self) -> Result<RegionId, WireError> {
        check_schema(self.schema_version)?;
        let region = self
            .region_id()
            .ok_or_else(|| WireError::UnknownRegion(self.region.clone()))?;
        if self.header.frame_id != self.region {
            return Err(WireError::FrameMismatch {
                frame_id: self.header.frame_id.clone(),
                region: self.region.clone(),
            });
        }
        self.header.check_stamp()?;
        if self.shape.len() != 1 {
            return Err(WireError::Rank {
                field: "shape",
                rank: self.shape.len(),
            });
        }
        if self.data.len() > MAX_VECTOR {
            return Err(WireError::TooLong {
                field: "data",
                len: self.data.len(),
                max: MAX_VECTOR,
            });
        }
        if product(&self.shape) != self.data.len() as u64 {
            return Err(WireError::ShapeMismatch {
                product: product(&self.shape),
                len: self.data.len(),
            });
        }
        if self.data.is_empty() {
            return Err(WireError::Empty);
        }
        if !matches!(self.spatial_shape.len(), 0 | 3) {
            return Err(WireError::Rank {
                field: "spatial_shape",
                rank: self.spatial_shape.len(),
            });
        }
        if self.spatial.len() > MAX_SPATIAL {
            return Err(WireError::TooLong {
                field: "spatial",
                len: self.spatial.len(),
                max: MAX_SPATIAL,
            });
        }
        let sp = if self.spatial_shape.is_empty() {
            0
        } else {
            product(&self.spatial_shape)
        };
        if sp != self.spatial.len() as u64 {
            return Err(WireError::SpatialShapeMismatch {
                product: sp,
                len: self.spatial.len(),
            });
        }
        if !self.data.iter().all(|v| v.is_finite()) {
            return Err(WireError::NonFinite { field: "data" });
        }
        if !self.spatial.iter().all(|v| v.is_finite()) {
            return Err(WireError::NonFinite { field: "spatial" });
        }
        Ok(region)
    }

    /// Decode `bytes` into this message, reusing its strings' and vectors' allocations (a
    /// receiver that keeps one message decodes without allocating once it has seen the largest
    /// embedding), then [`EmbeddingMsg::validate`]. On error the message holds partial data.
    pub fn decode_into(&mut self, bytes: &[u8]) -> Result<RegionId, WireError> {
        let mut r = Reader::new(bytes)?;
        self.header.read_into(&mut r)?;
        self.schema_version = r.u16()?;
        // A different version may lay out the rest differently: say so, not what breaks next.
        check_schema(self.schema_version)?;
        r.string_into(&mut self.region, MAX_NAME_BYTES)
            .map_err(WireError::at("region"))?;
        self.model_id = r.u32()?;
        self.sequence = r.u64()?;
        r.u32_seq_into(&mut self.shape, MAX_RANK)
            .map_err(WireError::at("shape"))?;
        r.f32_seq_into(&mut self.data, MAX_VECTOR)
            .map_err(WireError::at("data"))?;
        r.u32_seq_into(&mut self.spatial_shape, MAX_RANK)
            .map_err(WireError::at("spatial_shape"))?;
        r.f32_seq_into(&mut self.spatial, MAX_SPATIAL)
            .map_err(WireError::at("spatial"))?;
        check_trailing(&r)?;
        self.validate()
    }
}

impl EmbeddingMsg {
    /// ROS 2 type name.
    pub const TYPE_NAME: &'static str = "brainloop_msgs/msg/Embedding";
    /// DDS type name (the type segment of its rmw_zenoh key expression).
    pub const DDS_TYPE_NAME: &'static str = "brainloop_msgs::msg::dds_::Embedding_";

    /// Encodes the fields as they are, `schema_version` included: call
    /// [`EmbeddingMsg::validate`] first to send only what a receiver accepts.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer::with_buffer(std::mem::take(out));
        self.header.write(&mut w);
        w.u16(self.schema_version)
            .string(&self.region)
            .u32(self.model_id)
            .u64(self.sequence)
            .u32_seq(&self.shape)
            .f32_seq(&self.data)
            .u32_seq(&self.spatial_shape)
            .f32_seq(&self.spatial);
        *out = w.finish();
    }

    /// Decode and check.
    pub fn from_cdr(bytes: &[u8]) -> Result<Self, WireError> {
        let mut m = Self::default();
        m.decode_into(bytes)?;
        Ok(m)
    }

    /// Encode into a new buffer.
    pub fn to_cdr(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

impl WireMessage for EmbeddingMsg {
    const TYPE_NAME: &'static str = EmbeddingMsg::TYPE_NAME;
    const DDS_TYPE_NAME: &'static str = EmbeddingMsg::DDS_TYPE_NAME;
    fn encode_into(&self, out: &mut Vec<u8>) {
        EmbeddingMsg::encode_into(self, out)
    }
    fn from_cdr(bytes: &[u8]) -> Result<Self, WireError> {
        EmbeddingMsg::from_cdr(bytes)
    }
}

// ------------------------------------------------------------------ RegionFreshness

/// `brainloop_msgs/msg/RegionFreshness`: how one input of the loop is doing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegionFreshnessMsg {
    /// The input (a region name or another source).
    pub region: String,
    /// Whether its latest value is fresh.
    pub fresh: bool,
    /// Age of the latest value, ms.
    pub age_ms: f64,
    /// Arrival rate, Hz.
    pub rate_hz: f64,
    /// Capture-to-arrival latency, ms.
    pub latency_ms: f64,
    /// Values received.
    pub received: u64,
    /// Values missing by sequence number.
    pub gaps: u64,
    /// Values refused.
    pub rejected: u64,
    /// Restarts of the input's process.
    pub restarts: u32,
}

impl RegionFreshnessMsg {
    fn write(&self, w: &mut Writer) {
        w.string(&self.region)
            .bool(self.fresh)
            .f64(self.age_ms)
            .f64(self.rate_hz)
            .f64(self.latency_ms)
            .u64(self.received)
            .u64(self.gaps)
            .u64(self.rejected)
            .u32(self.restarts);
    }

    fn read_into(&mut self, r: &mut Reader<'_>) -> Result<(), WireError> {
        r.string_into(&mut self.region, MAX_NAME_BYTES)
            .map_err(WireError::at("regions.region"))?;
        self.fresh = r.bool()?;
        self.age_ms = r.f64()?;
        self.rate_hz = r.f64()?;
        self.latency_ms = r.f64()?;
        self.received = r.u64()?;
        self.gaps = r.u64()?;
        self.rejected = r.u64()?;
        self.restarts = r.u32()?;
        Ok(())
    }
}

/// Telemetry floats are passed as they are (an input never heard from may report an infinite
/// age); only the structure is checked.
impl RegionFreshnessMsg {
    /// ROS 2 type name.
    pub const TYPE_NAME: &'static str = "brainloop_msgs/msg/RegionFreshness";
    /// DDS type name (the type segment of its rmw_zenoh key expression).
    pub const DDS_TYPE_NAME: &'static str = "brainloop_msgs::msg::dds_::RegionFreshness_";

    /// Encode into `out` (cleared first; its capacity is reused).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer::with_buffer(std::mem::take(out));
        self.write(&mut w);
        *out = w.finish();
    }

    /// Decode and check.
    pub fn from_cdr(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes)?;
        let mut m = Self::default();
        m.read_into(&mut r)?;
        check_trailing(&r)?;
        Ok(m)
    }

    /// Encode into a new buffer.
    pub fn to_cdr(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

impl WireMessage for RegionFreshnessMsg {
    const TYPE_NAME: &'static str = RegionFreshnessMsg::TYPE_NAME;
    const DDS_TYPE_NAME: &'static str = RegionFreshnessMsg::DDS_TYPE_NAME;
    fn encode_into(&self, out: &mut Vec<u8>) {
        RegionFreshnessMsg::encode_into(self, out)
    }
    fn from_cdr(bytes: &[u8]) -> Result<Self, WireError> {
        RegionFreshnessMsg::from_cdr(bytes)
    }
}

// ------------------------------------------------------------------ LoopHealth

/// `brainloop_msgs/msg/LoopHealth`: the periodic health report of the loop.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoopHealthMsg {
    /// `stamp`: time of the report; `frame_id`: empty.
    pub header: Header,
    /// [`SCHEMA_VERSION`] of the sender.
    pub schema_version: u16,
    /// Configured tick rate, Hz.
    pub rate_hz: f64,
    /// Configured tick period, us.
    pub period_us: f64,
    /// Tick lateness p50, us.
    pub jitter_p50_us: f64,
    /// Tick lateness p99, us.
    pub jitter_p99_us: f64,
    /// Tick lateness maximum, us.
    pub jitter_max_us: f64,
    /// Tick compute time p99, us.
    pub compute_p99_us: f64,
    /// Ticks run.
    pub ticks: u64,
    /// Tick deadlines missed.
    pub missed: u64,
    /// Drowsiness, 0..=1.
    pub drowsiness: f32,
    /// Speed scale applied to autonomy, 0..=1.
    pub speed_scale: f32,
    /// Load-shedding level.
    pub shed_level: u8,
    /// Sleep periods.
    pub sleeps: u32,
    /// Behaviour mode.
    pub mode: String,
    /// One entry per input.
    pub regions: Vec<RegionFreshnessMsg>,
}

/// Checks the structure, the schema version, the stamp and at most [`MAX_HEALTH_REGIONS`]
/// entries; telemetry floats are passed as they are.
impl LoopHealthMsg {
    /// ROS 2 type name.
    pub const TYPE_NAME: &'static str = "brainloop_msgs/msg/LoopHealth";
    /// DDS type name (the type segment of its rmw_zenoh key expression).
    pub const DDS_TYPE_NAME: &'static str = "brainloop_msgs::msg::dds_::LoopHealth_";

    /// Encode into `out` (cleared first; its capacity is reused).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer::with_buffer(std::mem::take(out));
        self.header.write(&mut w);
        w.u16(self.schema_version)
            .f64(self.rate_hz)
            .f64(self.period_us)
            .f64(self.jitter_p50_us)
            .f64(self.jitter_p99_us)
            .f64(self.jitter_max_us)
            .f64(self.compute_p99_us)
            .u64(self.ticks)
            .u64(self.missed)
            .f32(self.drowsiness)
            .f32(self.speed_scale)
            .u8(self.shed_level)
            .u32(self.sleeps)
            .string(&self.mode)
            .seq_len(self.regions.len());
        for f in &self.regions {
            f.write(&mut w);
        }
        *out = w.finish();
    }

    /// Decode and check.
    pub fn from_cdr(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes)?;
        let mut m = Self::default();
        m.header.read_into(&mut r)?;
        m.schema_version = r.u16()?;
        check_schema(m.schema_version)?;
        m.header.check_stamp()?;
        m.rate_hz = r.f64()?;
        m.period_us = r.f64()?;
        m.jitter_p50_us = r.f64()?;
        m.jitter_p99_us = r.f64()?;
        m.jitter_max_us = r.f64()?;
        m.compute_p99_us = r.f64()?;
        m.ticks = r.u64()?;
        m.missed = r.u64()?;
        m.drowsiness = r.f32()?;
        m.speed_scale = r.f32()?;
        m.shed_level = r.u8()?;
        m.sleeps = r.u32()?;
        r.string_into(&mut m.mode, MAX_NAME_BYTES)
            .map_err(WireError::at("mode"))?;
        let n = r
            .seq_len(MIN_FRESHNESS_BYTES, MAX_HEALTH_REGIONS)
            .map_err(WireError::at("regions"))?;
        m.regions = Vec::with_capacity(n);
        for _ in 0..n {
            let mut f = RegionFreshnessMsg::default();
            f.read_into(&mut r)?;
            m.regions.push(f);
        }
        check_trailing(&r)?;
        Ok(m)
    }

    /// Encode into a new buffer.
    pub fn to_cdr(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

impl WireMessage for LoopHealthMsg {
    const TYPE_NAME: &'static str = LoopHealthMsg::TYPE_NAME;
    const DDS_TYPE_NAME: &'static str = LoopHealthMsg::DDS_TYPE_NAME;
    fn encode_into(&self, out: &mut Vec<u8>) {
        LoopHealthMsg::encode_into(self, out)
    }
    fn from_cdr(bytes: &[u8]) -> Result<Self, WireError> {
        LoopHealthMsg::from_cdr(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vision(seq: u64) -> EmbeddingMsg {
        let data: Vec<f32> = (0..8).map(|i| i as f32 * 0.25 - 1.0).collect();
        let spatial: Vec<f32> = (0..12).map(|i| i as f32 / 12.0).collect();
        EmbeddingMsg::from_ref(
            "vision",
            &EmbeddingRef {
                seq,
                stamp_ns: 1_500_000_123,
                model_id: 0xabcd,
                vector: &data,
                grid: [2, 2, 3],
                spatial: &spatial,
            },
        )
    }

    #[test]
    fn round_trip_and_the_borrowed_view() {
        let m = vision(7);
        let bytes = m.to_cdr();
        let back = EmbeddingMsg::from_cdr(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.validate(), Ok(RegionId::Vision));
        let e = back.embedding_ref();
        assert_eq!((e.seq, e.stamp_ns, e.model_id), (7, 1_500_000_123, 0xabcd));
        assert_eq!(e.grid, [2, 2, 3]);
        // Borrowed, not copied.
        assert!(std::ptr::eq(e.vector.as_ptr(), back.data.as_ptr()));
        assert!(std::ptr::eq(e.spatial.as_ptr(), back.spatial.as_ptr()));
    }

    #[test]
    fn encoding_from_a_ref_is_the_messages_encoding_and_reuses_the_buffer() {
        let v = [1.0f32, 2.0, 3.0];
        for (grid, spatial) in [([0u32; 3], &[][..]), ([1, 1, 2], &[0.5f32, -0.5][..])] {
            let e = EmbeddingRef {
                seq: 3,
                stamp_ns: 9,
                model_id: 1,
                vector: &v,
                grid,
                spatial,
            };
            let mut out = Vec::with_capacity(4096);
            let cap = out.capacity();
            EmbeddingMsg::encode_ref_into("audition", &e, &mut out);
            assert_eq!(out, EmbeddingMsg::from_ref("audition", &e).to_cdr());
            assert_eq!(out.capacity(), cap);
            EmbeddingMsg::encode_ref_into("audition", &e, &mut out);
            assert_eq!(out, EmbeddingMsg::from_ref("audition", &e).to_cdr());
        }
    }

    #[test]
    fn decode_into_reuses_the_vectors() {
        let bytes = vision(1).to_cdr();
        let mut m = EmbeddingMsg::default();
        m.decode_into(&bytes).unwrap();
        let (pd, ps) = (m.data.as_ptr(), m.spatial.as_ptr());
        m.decode_into(&vision(2).to_cdr()).unwrap();
        assert_eq!(m.sequence, 2);
        assert_eq!((m.data.as_ptr(), m.spatial.as_ptr()), (pd, ps));
    }

    fn reject(m: &EmbeddingMsg) -> WireError {
        let bytes = m.to_cdr();
        let e = EmbeddingMsg::from_cdr(&bytes).unwrap_err();
        assert_eq!(m.validate().unwrap_err(), e, "validate and decode agree");
        e
    }

    #[test]
    fn each_invalid_embedding_has_its_own_error() {
        let mut m = vision(0);
        m.schema_version = 2;
        assert_eq!(reject(&m), WireError::SchemaVersion { got: 2, want: 1 });

        let mut m = vision(0);
        m.region = "smell".into();
        m.header.frame_id = "smell".into();
        assert_eq!(reject(&m), WireError::UnknownRegion("smell".into()));

        let mut m = vision(0);
        m.header.frame_id = "map".into();
        assert!(matches!(reject(&m), WireError::FrameMismatch { .. }));

        let mut m = vision(0);
        m.header.stamp_sec = -1;
        assert_eq!(
            reject(&m),
            WireError::BadStamp {
                sec: -1,
                nanosec: 500_000_123
            }
        );

        let mut m = vision(0);
        m.shape = vec![9];
        assert_eq!(reject(&m), WireError::ShapeMismatch { product: 9, len: 8 });
        m.shape = vec![2, 4];
        assert_eq!(
            reject(&m),
            WireError::Rank {
                field: "shape",
                rank: 2
            }
        );

        let mut m = vision(0);
        m.spatial_shape = vec![2, 2, 2];
        assert_eq!(
            reject(&m),
            WireError::SpatialShapeMismatch {
                product: 8,
                len: 12
            }
        );
        m.spatial_shape = vec![];
        assert_eq!(
            reject(&m),
            WireError::SpatialShapeMismatch {
                product: 0,
                len: 12
            }
        );
        m.spatial_shape = vec![12];
        assert_eq!(
            reject(&m),
            WireError::Rank {
                field: "spatial_shape",
                rank: 1
            }
        );
        // A product that overflows u32 (and would overflow a naive usize product on 32 bits).
        m.spatial_shape = vec![u32::MAX, u32::MAX, u32::MAX];
        assert!(matches!(reject(&m), WireError::SpatialShapeMismatch { .. }));

        let mut m = vision(0);
        m.data.clear();
        m.shape = vec![0];
        assert_eq!(reject(&m), WireError::Empty);

        let mut m = vision(0);
        m.data[3] = f32::NAN;
        assert_eq!(reject(&m), WireError::NonFinite { field: "data" });
        let mut m = vision(0);
        m.spatial[11] = f32::NEG_INFINITY;
        assert_eq!(reject(&m), WireError::NonFinite { field: "spatial" });

        let mut m = vision(0);
        m.data = vec![0.0; MAX_VECTOR + 1];
        m.shape = vec![m.data.len() as u32];
        assert_eq!(
            reject(&m),
            WireError::TooLong {
                field: "data",
                len: MAX_VECTOR + 1,
                max: MAX_VECTOR
            }
        );
        let mut m = vision(0);
        m.spatial = vec![0.0; MAX_SPATIAL + 1];
        m.spatial_shape = vec![MAX_SPATIAL as u32 + 1, 1, 1];
        assert!(matches!(
            reject(&m),
            WireError::TooLong {
                field: "spatial",
                ..
            }
        ));
    }

    #[test]
    fn trailing_padding_is_accepted_and_garbage_is_not() {
        let mut bytes = vision(0).to_cdr();
        for _ in 0..MAX_TRAILING {
            bytes.push(0);
            assert!(EmbeddingMsg::from_cdr(&bytes).is_ok());
        }
        bytes.push(0);
        assert_eq!(
            EmbeddingMsg::from_cdr(&bytes),
            Err(WireError::Trailing(MAX_TRAILING + 1))
        );
    }

    #[test]
    fn a_huge_length_prefix_is_refused_before_allocating() {
        // Header, schema, region "vision", model, sequence, shape [1000], then data claiming
        // 1000 floats with none present.
        let mut w = Writer::new();
        w.i32(0).u32(0).string("vision");
        w.u16(SCHEMA_VERSION).string("vision").u32(0).u64(0);
        w.u32_seq(&[1000]).u32(1000);
        let bytes = w.finish();
        let mut m = EmbeddingMsg::default();
        assert_eq!(m.decode_into(&bytes), Err(WireError::Truncated));
        assert_eq!(m.data.capacity(), 0);
        // Over the limit: refused as too long whatever the buffer holds.
        let mut w = Writer::new();
        w.i32(0).u32(0).string("vision");
        w.u16(SCHEMA_VERSION).string("vision").u32(0).u64(0);
        w.u32_seq(&[1]).u32(u32::MAX);
        assert_eq!(
            m.decode_into(&w.finish()),
            Err(WireError::TooLong {
                field: "data",
                len: u32::MAX as usize,
                max: MAX_VECTOR
            })
        );
        assert_eq!(m.data.capacity(), 0);
        // A LoopHealth claiming more regions than its bytes could hold.
        let mut h = LoopHealthMsg {
            schema_version: SCHEMA_VERSION,
            ..Default::default()
        };
        h.regions = vec![RegionFreshnessMsg::default(); 2];
        let mut bytes = h.to_cdr();
        bytes.truncate(bytes.len() - 1);
        assert_eq!(LoopHealthMsg::from_cdr(&bytes), Err(WireError::Truncated));
    }

    #[test]
    fn stamps_split_into_seconds_and_saturate() {
        let h = Header::from_stamp_ns(3_000_000_007, "x");
        assert_eq!((h.stamp_sec, h.stamp_nanosec), (3, 7));
        assert_eq!(h.stamp_ns(), Some(3_000_000_007));
        let h = Header::from_stamp_ns(u64::MAX, "x");
        assert_eq!((h.stamp_sec, h.stamp_nanosec), (i32::MAX, 999_999_999));
        let bad = Header {
            stamp_nanosec: 1_000_000_000,
            ..Header::default()
        };
        assert_eq!(bad.stamp_ns(), None);
    }

    fn health() -> LoopHealthMsg {
        LoopHealthMsg {
            header: Header::from_stamp_ns(42, ""),
            schema_version: SCHEMA_VERSION,
            rate_hz: 100.0,
            period_us: 10_000.0,
            jitter_p50_us: 12.5,
            jitter_p99_us: 80.0,
            jitter_max_us: 950.0,
            compute_p99_us: 400.0,
            ticks: 12_345,
            missed: 2,
            drowsiness: 0.25,
            speed_scale: 0.8,
            shed_level: 1,
            sleeps: 3,
            mode: "approach".into(),
            regions: vec![
                RegionFreshnessMsg {
                    region: "vision".into(),
                    fresh: true,
                    age_ms: 33.0,
                    rate_hz: 30.0,
                    latency_ms: 12.0,
                    received: 900,
                    gaps: 1,
                    rejected: 0,
                    restarts: 0,
                },
                RegionFreshnessMsg {
                    region: "language".into(),
                    fresh: false,
                    age_ms: f64::INFINITY,
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn loop_health_round_trips_and_checks_its_version() {
        let h = health();
        assert_eq!(LoopHealthMsg::from_cdr(&h.to_cdr()).unwrap(), h);
        let mut bad = h.clone();
        bad.schema_version = 0;
        assert_eq!(
            LoopHealthMsg::from_cdr(&bad.to_cdr()),
            Err(WireError::SchemaVersion { got: 0, want: 1 })
        );
        let mut many = h;
        many.regions = vec![RegionFreshnessMsg::default(); MAX_HEALTH_REGIONS + 1];
        assert!(matches!(
            LoopHealthMsg::from_cdr(&many.to_cdr()),
            Err(WireError::TooLong {
                field: "regions",
                ..
            })
        ));
    }

    fn arb_embedding() -> impl Strategy<Value = EmbeddingMsg> {
        let region = prop::sample::select(RegionId::ALL.to_vec());
        let grid = prop_oneof![
            Just([0u32; 3]),
            (1u32..4, 1u32..4, 1u32..5).prop_map(|(a, b, c)| [a, b, c]),
        ];
        (
            region,
            any::<u64>(),
            0u64..(i32::MAX as u64 * 1_000_000_000),
            any::<u32>(),
            prop::collection::vec(-1e6f32..1e6, 1..40),
            grid,
        )
            .prop_flat_map(|(region, seq, stamp, model, vector, grid)| {
                let n = grid.iter().product::<u32>() as usize;
                let n = if grid == [0; 3] { 0 } else { n };
                prop::collection::vec(-1e3f32..1e3, n..=n).prop_map(move |spatial| {
                    EmbeddingMsg::from_ref(
                        region.name(),
                        &EmbeddingRef {
                            seq,
                            stamp_ns: stamp,
                            model_id: model,
                            vector: &vector,
                            grid,
                            spatial: &spatial,
                        },
                    )
                })
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = EmbeddingMsg::from_cdr(&bytes);
            let _ = LoopHealthMsg::from_cdr(&bytes);
            let _ = RegionFreshnessMsg::from_cdr(&bytes);
            // And past the encapsulation header, where the fields start.
            let mut b = vec![0, 1, 0, 0];
            b.extend_from_slice(&bytes);
            let _ = EmbeddingMsg::from_cdr(&b);
            let _ = LoopHealthMsg::from_cdr(&b);
            let _ = RegionFreshnessMsg::from_cdr(&b);
        }

        #[test]
        fn valid_embeddings_round_trip(m in arb_embedding()) {
            prop_assert!(m.validate().is_ok());
            let bytes = m.to_cdr();
            prop_assert_eq!(EmbeddingMsg::from_cdr(&bytes).unwrap(), m.clone());
            let mut out = Vec::new();
            EmbeddingMsg::encode_ref_into(&m.region, &m.embedding_ref(), &mut out);
            prop_assert_eq!(out, bytes);
        }

        #[test]
        fn truncated_or_corrupted_embeddings_never_panic(
            m in arb_embedding(), cut in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(), byte in any::<u8>(),
        ) {
            let bytes = m.to_cdr();
            // Every truncation is an error: the encoding ends with a length-prefixed field.
            let n = cut.index(bytes.len());
            prop_assert!(EmbeddingMsg::from_cdr(&bytes[..n]).is_err());
            let mut b = bytes.clone();
            let i = at.index(b.len());
            b[i] = byte;
            if let Ok(d) = EmbeddingMsg::from_cdr(&b) {
                prop_assert!(d.validate().is_ok());
            }
        }

        #[test]
        fn loop_health_round_trips(
            seed in any::<u64>(), n in 0usize..5, mode in "[a-z]{0,12}",
        ) {
            let mut rng = crate::util::rng::SplitMix::new(seed);
            let mut h = health();
            h.mode = mode;
            h.ticks = rng.next_u64();
            h.jitter_p99_us = rng.normal();
            h.regions = (0..n).map(|i| RegionFreshnessMsg {
                region: RegionId::ALL[i % 4].name().into(),
                fresh: rng.uniform() < 0.5,
                age_ms: rng.range(0.0, 1e3),
                received: rng.next_u64(),
                restarts: rng.next_u64() as u32,
                ..Default::default()
            }).collect();
            prop_assert_eq!(LoopHealthMsg::from_cdr(&h.to_cdr()).unwrap(), h);
        }
    }
}

// ------------------------------------------------------------------ sensor_msgs/Image

/// Largest image side accepted, px.
pub const MAX_IMAGE_SIDE: u32 = 4096;

/// `sensor_msgs/msg/Image`, as the simulated body's camera publishes it (`rgb8`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageMsg {
    /// Capture time and the camera frame.
    pub header: Header,
    /// Rows, px.
    pub height: u32,
    /// Columns, px.
    pub width: u32,
    /// Pixel encoding; only `rgb8` is accepted.
    pub encoding: String,
    /// Big-endian data (irrelevant for 8-bit channels).
    pub is_bigendian: u8,
    /// Bytes per row.
    pub step: u32,
    /// `height * step` bytes.
    pub data: Vec<u8>,
}

impl ImageMsg {
    /// ROS 2 type name.
    pub const TYPE_NAME: &'static str = "sensor_msgs/msg/Image";
    /// DDS type name.
    pub const DDS_TYPE_NAME: &'static str = "sensor_msgs::msg::dds_::Image_";

    /// Encode into `out` (cleared first; its capacity is reused).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer::with_buffer(std::mem::take(out));
        self.header.write(&mut w);
        w.u32(self.height)
            .u32(self.width)
            .string(&self.encoding)
            .u8(self.is_bigendian)
            .u32(self.step)
            .u8_seq(&self.data);
        *out = w.finish();
    }

    /// Decode and check: `rgb8`, sides within [`MAX_IMAGE_SIDE`], `step == 3 * width` and
    /// `height * step` bytes of data.
    pub fn from_cdr(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes)?;
        let mut m = Self::default();
        m.header.read_into(&mut r)?;
        m.header.check_stamp()?;
        m.height = r.u32()?;
        m.width = r.u32()?;
        r.string_into(&mut m.encoding, MAX_NAME_BYTES)
            .map_err(WireError::at("encoding"))?;
        m.is_bigendian = r.u8()?;
        m.step = r.u32()?;
        if m.width == 0 || m.height == 0 || m.width > MAX_IMAGE_SIDE || m.height > MAX_IMAGE_SIDE {
            return Err(WireError::TooLong {
                field: "width/height",
                len: m.width.max(m.height) as usize,
                max: MAX_IMAGE_SIDE as usize,
            });
        }
        if m.encoding != "rgb8" || m.step != 3 * m.width {
            return Err(WireError::ShapeMismatch {
                product: 3 * m.width as u64,
                len: m.step as usize,
            });
        }
        let want = m.height as usize * m.step as usize;
        r.u8_seq_into(&mut m.data, want)
            .map_err(WireError::at("data"))?;
        if m.data.len() != want {
            return Err(WireError::ShapeMismatch {
                product: want as u64,
                len: m.data.len(),
            });
        }
        check_trailing(&r)?;
        Ok(m)
    }

    /// Encode into a new buffer.
    pub fn to_cdr(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}
