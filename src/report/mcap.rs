//! Recording a run's messages to MCAP (JSON-encoded, with JSON schemas, so Foxglove and the
//! `mcap` tools read it) and playing a recording back (`brainloop replay`).

use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Errors recording or replaying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// MCAP format error.
    #[error("{path}: not a readable MCAP recording: {message}")]
    Mcap {
        /// File.
        path: String,
        /// Cause.
        message: String,
    },
}

/// Writes a run's messages to an MCAP file.
pub struct Recorder {
    writer: mcap::Writer<BufWriter<File>>,
    channels: BTreeMap<String, u16>,
    seq: u32,
    path: String,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .finish()
    }
}

/// JSON schema of a topic's messages (loose: Foxglove only needs it to be valid).
fn schema_for(topic: &str) -> (&'static str, String) {
    match topic {
        "/camera/image" => (
            "foxglove.CompressedImage",
            r#"{"type":"object","properties":{"timestamp":{"type":"object","properties":{"sec":{"type":"integer"},"nsec":{"type":"integer"}}},"frame_id":{"type":"string"},"data":{"type":"string","contentEncoding":"base64"},"format":{"type":"string"}}}"#.to_string(),
        ),
        _ => ("brainloop.Json", r#"{"type":"object"}"#.to_string()),
    }
}

impl Recorder {
    /// Create `path`.
    pub fn create(path: &Path) -> Result<Self, RecordError> {
        let io = |source| RecordError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = File::create(path).map_err(io)?;
        let writer = mcap::WriteOptions::new()
            .compression(None)
            .profile("")
            .create(BufWriter::new(file))
            .map_err(|e| RecordError::Mcap {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(Self {
            writer,
            channels: BTreeMap::new(),
            seq: 0,
            path: path.display().to_string(),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> RecordError {
        RecordError::Mcap {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Record one message on `topic` at `stamp_ns` (JSON).
    pub fn record<T: Serialize>(
        &mut self,
        topic: &str,
        stamp_ns: u64,
        msg: &T,
    ) -> Result<(), RecordError> {
        let data = serde_json::to_vec(msg).map_err(|e| self.err(e))?;
        self.record_raw(topic, stamp_ns, &data)
    }

    /// Record pre-encoded JSON bytes.
    pub fn record_raw(
        &mut self,
        topic: &str,
        stamp_ns: u64,
        data: &[u8],
    ) -> Result<(), RecordError> {
        let channel = match self.channels.get(topic) {
            Some(c) => *c,
            None => {
                let (name, schema) = schema_for(topic);
                let sid = self
                    .writer
                    .add_schema(name, "jsonschema", schema.as_bytes())
                    .map_err(|e| self.err(e))?;
                let c = self
                    .writer
                    .add_channel(sid, topic, "json", &BTreeMap::new())
                    .map_err(|e| self.err(e))?;
                self.channels.insert(topic.to_string(), c);
                c
            }
        };
        self.seq += 1;
        let header = mcap::records::MessageHeader {
            channel_id: channel,
            sequence: self.seq,
            log_time: stamp_ns,
            publish_time: stamp_ns,
        };
        self.writer
            .write_to_known_channel(&header, data)
            .map_err(|e| self.err(e))
    }

    /// Record an RGB8 frame as a Foxglove `CompressedImage` (PNG, base64 in JSON).
    pub fn record_image(
        &mut self,
        stamp_ns: u64,
        width: u32,
        height: u32,
        rgb: &[u8],
    ) -> Result<(), RecordError> {
        let png = super::encode_png(width, height, rgb).map_err(|e| self.err(e))?;
        let msg = serde_json::json!({
            "timestamp": {"sec": stamp_ns / 1_000_000_000, "nsec": stamp_ns % 1_000_000_000},
            "frame_id": "front_camera",
            "format": "png",
            "data": base64(&png),
        });
        self.record("/camera/image", stamp_ns, &msg)
    }

    /// Finish the file (summary section, index).
    pub fn finish(mut self) -> Result<(), RecordError> {
        self.writer.finish().map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// Standard base64 (RFC 4648) with padding.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Options for playing a recording back.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Only these topics (all when empty).
    pub topics: Vec<String>,
    /// Playback speed relative to recorded time; 0 = as fast as possible.
    pub speed: f64,
    /// Print only per-topic counts.
    pub summary_only: bool,
}

/// Play a recording back: print each message as one JSON line `{"t": seconds, "topic": ...,
/// "msg": ...}` (image data elided), paced by `speed`; then return per-topic message counts.
pub fn replay(
    path: &Path,
    opts: &ReplayOptions,
    out: &mut dyn Write,
) -> Result<BTreeMap<String, u64>, RecordError> {
    let bytes = std::fs::read(path).map_err(|source| RecordError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let bad = |e: &dyn std::fmt::Display| RecordError::Mcap {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let stream = mcap::MessageStream::new(&bytes).map_err(|e| bad(&e))?;
    let mut counts = BTreeMap::new();
    let start = std::time::Instant::now();
    let mut first: Option<u64> = None;
    for m in stream {
        let m = m.map_err(|e| bad(&e))?;
        let topic = m.channel.topic.clone();
        if !opts.topics.is_empty() && !opts.topics.contains(&topic) {
            continue;
        }
        *counts.entry(topic.clone()).or_insert(0) += 1;
        if opts.summary_only {
            continue;
        }
        let t0 = *first.get_or_insert(m.log_time);
        let rel = m.log_time.saturating_sub(t0) as f64 * 1e-9;
        if opts.speed > 0.0 {
            let due = std::time::Duration::from_secs_f64(rel / opts.speed);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let mut msg: serde_json::Value =
            serde_json::from_slice(&m.data).unwrap_or(serde_json::Value::Null);
        if let Some(d) = msg.get_mut("data") {
            if d.is_string() {
                *d = serde_json::Value::String(format!(
                    "<{} bytes base64>",
                    d.as_str().map(str::len).unwrap_or(0)
                ));
            }
        }
        let line = serde_json::json!({"t": (rel * 1e6).round() / 1e6, "topic": topic, "msg": msg});
        if let Err(source) = writeln!(out, "{line}") {
            // The reader went away (e.g. `| head`): stop quietly.
            if source.kind() == std::io::ErrorKind::BrokenPipe {
                break;
            }
            return Err(RecordError::Io {
                path: "stdout".into(),
                source,
            });
        }
    }
    if counts.is_empty() && opts.topics.is_empty() {
        return Err(bad(&"no messages"));
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn records_and_replays() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.mcap");
        let mut r = Recorder::create(&p).unwrap();
        for i in 0..5u64 {
            r.record("/a", i * 1000, &serde_json::json!({"i": i}))
                .unwrap();
        }
        r.record_image(10, 2, 2, &[0u8; 12]).unwrap();
        r.finish().unwrap();
        let mut out = Vec::new();
        let counts = replay(&p, &ReplayOptions::default(), &mut out).unwrap();
        assert_eq!(counts["/a"], 5);
        assert_eq!(counts["/camera/image"], 1);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 6);
        assert!(text.contains("\"i\":4"));
    }
}
