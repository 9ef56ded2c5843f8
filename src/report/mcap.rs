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

/// Chunk size of a recording, bytes.
pub const RECORD_CHUNK_BYTES: u64 = 64 * 1024;

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
        // Chunked and indexed, in small chunks: a writer killed (kill -9) leaves a file that
        // reads back up to its last 64 KiB chunk (`replay` recovers it and says so).
        let writer = mcap::WriteOptions::new()
            .compression(None)
            .chunk_size(Some(RECORD_CHUNK_BYTES))
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

    /// End the current chunk and flush it to the file: everything recorded so far reads back
    /// from the file as it is, even if the process dies before [`Recorder::finish`].
    pub fn flush(&mut self) -> Result<(), RecordError> {
        self.writer.flush().map_err(|e| self.err(e))
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

/// MCAP's magic bytes, at the start and the end of a finished file.
const MAGIC: &[u8] = b"\x89MCAP0\r\n";

/// What reading a recording found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Messages read.
    pub messages: u64,
    /// Messages per topic.
    pub counts: BTreeMap<String, u64>,
    /// The file was cut (not finished: a killed writer): where and why reading stopped. The
    /// messages before it (every flushed chunk, and the whole records of a cut one) were read.
    pub truncated: Option<String>,
}

/// Read every message of the recording at `path`, handing each to `each` with its payload
/// parsed (return false to stop). Chunk CRCs are checked and every payload must be JSON: a
/// corrupted recording is an error naming the message. A file that was never finished (its
/// writer killed) is read up to the cut (every flushed chunk) and reported as truncated.
fn scan(
    path: &Path,
    each: &mut dyn FnMut(&mcap::Message<'_>, serde_json::Value) -> Result<bool, RecordError>,
) -> Result<Recovered, RecordError> {
    let bytes = std::fs::read(path).map_err(|source| RecordError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let bad = |e: &dyn std::fmt::Display| RecordError::Mcap {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let finished = bytes.len() >= 2 * MAGIC.len() && bytes.ends_with(MAGIC);
    use mcap::read::Options;
    let stream = mcap::MessageStream::new_with_options(
        &bytes,
        Options::IgnoreEndMagic | Options::ValidateChunkCrcs,
    )
    .map_err(|e| bad(&e))?;
    let mut out = Recovered::default();
    for m in stream {
        let m = match m {
            Ok(m) => m,
            Err(e @ mcap::McapError::BadChunkCrc { .. }) => {
                return Err(bad(&format!(
                    "corrupted after message {}: {e}",
                    out.messages
                )))
            }
            Err(e) if !finished => {
                out.truncated = Some(format!(
                    "the file ends in the middle of a record after message {} ({e}): it was not finished (its writer was killed?)",
                    out.messages
                ));
                break;
            }
            Err(e) => return Err(bad(&e)),
        };
        let msg: serde_json::Value = serde_json::from_slice(&m.data).map_err(|e| {
            bad(&format!(
                "message {} on {} at log time {} ns: the payload is not JSON ({e}): the recording is corrupted",
                out.messages + 1,
                m.channel.topic,
                m.log_time
            ))
        })?;
        out.messages += 1;
        *out.counts.entry(m.channel.topic.clone()).or_insert(0) += 1;
        if !each(&m, msg)? {
            break;
        }
    }
    Ok(out)
}

/// Read the recording at `path` (finished, or cut by a killed writer) and count its messages;
/// an error if it is corrupted.
pub fn read_recoverable(path: &Path) -> Result<Recovered, RecordError> {
    scan(path, &mut |_, _| Ok(true))
}

/// Play a recording back: print each message as one JSON line `{"t": seconds, "topic": ...,
/// "msg": ...}` (image data elided), paced by `speed`; then return per-topic message counts.
/// A corrupted recording (a bad chunk CRC, a payload that is not JSON) is an error; a file that
/// was never finished is played up to the cut and said so on stderr.
pub fn replay(
    path: &Path,
    opts: &ReplayOptions,
    out: &mut dyn Write,
) -> Result<BTreeMap<String, u64>, RecordError> {
    let bad = |e: &dyn std::fmt::Display| RecordError::Mcap {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut counts = BTreeMap::new();
    let start = std::time::Instant::now();
    let mut first: Option<u64> = None;
    let mut each = |m: &mcap::Message<'_>, mut msg: serde_json::Value| {
        let topic = m.channel.topic.clone();
        if !opts.topics.is_empty() && !opts.topics.contains(&topic) {
            return Ok(true);
        }
        *counts.entry(topic.clone()).or_insert(0) += 1;
        if opts.summary_only {
            return Ok(true);
        }
        let t0 = *first.get_or_insert(m.log_time);
        let rel = m.log_time.saturating_sub(t0) as f64 * 1e-9;
        if opts.speed > 0.0 {
            let due = std::time::Duration::from_secs_f64(rel / opts.speed);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
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
                return Ok(false);
            }
            return Err(RecordError::Io {
                path: "stdout".into(),
                source,
            });
        }
        Ok(true)
    };
    let r = scan(path, &mut each)?;
    if let Some(why) = &r.truncated {
        eprintln!(
            "replay: {}: recovered {} messages up to the cut; {why}",
            path.display(),
            r.messages
        );
    }
    if r.messages == 0 {
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

    fn recording(p: &Path, n: u64) {
        let mut r = Recorder::create(p).unwrap();
        for i in 0..n {
            r.record(
                "/a",
                i * 1000,
                &serde_json::json!({"i": i, "text": "abcdefgh"}),
            )
            .unwrap();
        }
        r.finish().unwrap();
    }

    /// A flipped byte in a payload is an error naming the damage, never `"msg": null` or a
    /// changed value with success.
    #[test]
    fn a_corrupted_payload_fails_the_replay() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.mcap");
        recording(&p, 5);
        let mut bytes = std::fs::read(&p).unwrap();
        let at = bytes
            .windows(8)
            .position(|w| w == b"abcdefgh")
            .expect("the payload is stored uncompressed");
        bytes[at + 2] = b'Z';
        std::fs::write(&p, &bytes).unwrap();
        let mut out = Vec::new();
        let e = replay(&p, &ReplayOptions::default(), &mut out).unwrap_err();
        assert!(e.to_string().contains("corrupted"), "{e}");
        // A payload that is not JSON, with a CRC that matches (as a buggy writer would leave it).
        let p2 = dir.path().join("y.mcap");
        let mut r = Recorder::create(&p2).unwrap();
        r.record_raw("/a", 1, b"{\"i\": 1}").unwrap();
        r.record_raw("/a", 2, b"{not json").unwrap();
        r.finish().unwrap();
        let e = replay(&p2, &ReplayOptions::default(), &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
    }

    /// A recording whose writer was killed reads back up to its last complete chunk.
    #[test]
    fn a_killed_writer_leaves_every_full_chunk_readable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.mcap");
        let mut r = Recorder::create(&p).unwrap();
        // About 4 chunks of messages, never finished or flushed (as if killed).
        let pad = "x".repeat(200);
        let n = 4 * RECORD_CHUNK_BYTES / 220;
        for i in 0..n {
            r.record("/a", i, &serde_json::json!({"i": i, "pad": pad}))
                .unwrap();
        }
        let bytes = std::fs::read(&p).unwrap();
        std::mem::forget(r);
        std::fs::write(&p, &bytes).unwrap();
        let got = read_recoverable(&p).unwrap();
        assert!(got.truncated.is_some());
        assert!(got.messages >= n / 2, "{} of {n}", got.messages);
    }

    #[test]
    fn a_cut_recording_is_recovered_up_to_its_last_flushed_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.mcap");
        let mut r = Recorder::create(&p).unwrap();
        for i in 0..10u64 {
            r.record("/a", i, &serde_json::json!({"i": i})).unwrap();
        }
        r.flush().unwrap();
        let flushed = std::fs::read(&p).unwrap();
        for i in 10..20u64 {
            r.record("/a", i, &serde_json::json!({"i": i})).unwrap();
        }
        r.flush().unwrap();
        let mut cut = std::fs::read(&p).unwrap();
        // Killed in the middle of writing the second chunk.
        cut.truncate(flushed.len() + (cut.len() - flushed.len()) / 2);
        // The writer never finishes (as if killed): forget it rather than let its drop write.
        std::mem::forget(r);
        std::fs::write(&p, &cut).unwrap();
        // Everything flushed reads back, and the whole records of the cut chunk may too.
        let got = read_recoverable(&p).unwrap();
        assert!((10..20).contains(&got.messages), "{got:?}");
        assert!(got.truncated.is_some());
        let counts = replay(&p, &ReplayOptions::default(), &mut Vec::new()).unwrap();
        assert_eq!(counts["/a"], got.messages);
    }
}
