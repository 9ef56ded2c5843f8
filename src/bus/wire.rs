//! TEMPORARY (replaced by the msgs branch).
use super::slots::EmbeddingRef;
/// Decoded embedding.
#[derive(Debug)]
pub struct EmbeddingMsg {
    /// Region.
    pub region: String,
    seq: u64,
    stamp: u64,
    model_id: u32,
    vector: Vec<f32>,
    grid: [u32; 3],
    spatial: Vec<f32>,
}
impl EmbeddingMsg {
    /// Encode.
    pub fn encode_ref_into(region: &str, e: &EmbeddingRef<'_>, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&(region.len() as u32).to_le_bytes());
        out.extend_from_slice(region.as_bytes());
        out.extend_from_slice(&e.seq.to_le_bytes());
        out.extend_from_slice(&e.stamp_ns.to_le_bytes());
        out.extend_from_slice(&e.model_id.to_le_bytes());
        for g in e.grid {
            out.extend_from_slice(&g.to_le_bytes());
        }
        out.extend_from_slice(&(e.vector.len() as u32).to_le_bytes());
        for v in e.vector {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(e.spatial.len() as u32).to_le_bytes());
        for v in e.spatial {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    /// Decode.
    pub fn from_cdr(b: &[u8]) -> Result<Self, String> {
        let mut p = 0usize;
        let mut take = |n: usize| -> Result<&[u8], String> {
            let s = b.get(p..p + n).ok_or("short")?;
            p += n;
            Ok(s)
        };
        let u32_ = |s: &[u8]| u32::from_le_bytes(s.try_into().unwrap());
        let rl = u32_(take(4)?) as usize;
        let region = String::from_utf8(take(rl)?.to_vec()).map_err(|e| e.to_string())?;
        let seq = u64::from_le_bytes(take(8)?.try_into().unwrap());
        let stamp = u64::from_le_bytes(take(8)?.try_into().unwrap());
        let model_id = u32_(take(4)?);
        let grid = [u32_(take(4)?), u32_(take(4)?), u32_(take(4)?)];
        let n = u32_(take(4)?) as usize;
        let vector = take(n * 4)?
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let n = u32_(take(4)?) as usize;
        let spatial = take(n * 4)?
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Ok(Self {
            region,
            seq,
            stamp,
            model_id,
            vector,
            grid,
            spatial,
        })
    }
    /// Borrow.
    pub fn as_ref(&self) -> EmbeddingRef<'_> {
        EmbeddingRef {
            seq: self.seq,
            stamp_ns: self.stamp,
            model_id: self.model_id,
            vector: &self.vector,
            grid: self.grid,
            spatial: &self.spatial,
        }
    }
}

/// `std_msgs/Header`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Header {
    /// Seconds.
    pub stamp_sec: i32,
    /// Nanoseconds.
    pub stamp_nanosec: u32,
    /// Frame.
    pub frame_id: String,
}
/// Region freshness.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RegionFreshnessMsg {
    /// Region.
    pub region: String,
    /// Fresh.
    pub fresh: bool,
    /// Age.
    pub age_ms: f64,
    /// Rate.
    pub rate_hz: f64,
    /// Latency.
    pub latency_ms: f64,
    /// Received.
    pub received: u64,
    /// Gaps.
    pub gaps: u64,
    /// Rejected.
    pub rejected: u64,
    /// Restarts.
    pub restarts: u32,
}
/// Loop health.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoopHealthMsg {
    /// Header.
    pub header: Header,
    /// Version.
    pub schema_version: u16,
    /// Rate.
    pub rate_hz: f64,
    /// Period.
    pub period_us: f64,
    /// Jitter.
    pub jitter_p50_us: f64,
    /// Jitter.
    pub jitter_p99_us: f64,
    /// Jitter.
    pub jitter_max_us: f64,
    /// Compute.
    pub compute_p99_us: f64,
    /// Ticks.
    pub ticks: u64,
    /// Missed.
    pub missed: u64,
    /// Drowsiness.
    pub drowsiness: f32,
    /// Speed scale.
    pub speed_scale: f32,
    /// Shed level.
    pub shed_level: u8,
    /// Sleeps.
    pub sleeps: u32,
    /// Mode.
    pub mode: String,
    /// Regions.
    pub regions: Vec<RegionFreshnessMsg>,
}
impl LoopHealthMsg {
    /// Encode.
    pub fn to_cdr(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    /// Decode.
    pub fn from_cdr(b: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(b).map_err(|e| e.to_string())
    }
}
