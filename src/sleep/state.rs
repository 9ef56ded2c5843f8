//! The learned state a night leaves behind (`--state FILE`): the connector with what the night
//! added (new concepts, the weight update, new instruction-head rows), the words it learned and
//! the reports of its nights. Versioned, tied to the vision and language models it was learned
//! on, with its sha256 beside it (`FILE.sha256`) and the last night's report (`FILE.report.json`).
//!
//! Loading checks everything before anything is used: a corrupt file, one from another format
//! version, from other models or for another vision width is refused with one line naming the
//! file, and nothing of it is loaded. Saving writes temporary files and renames them, so a crash
//! leaves the previous state (or none), never half a state.

use crate::grounding::connector::{checksum_path, hex, AlignConnector};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"BLSTATE1";
/// The state format version this build reads and writes.
pub const STATE_VERSION: u32 = 1;

/// Errors loading or saving a state file (each names the file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// I/O.
    #[error("state {path}: {message}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        message: String,
    },
    /// Damaged or not a state file.
    #[error("state {path} is corrupt: {message}; it was not loaded")]
    Corrupt {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Made by another format version or for other models.
    #[error("state {path} does not fit this brain: {message}; it was not loaded")]
    Incompatible {
        /// File.
        path: PathBuf,
        /// What differs.
        message: String,
    },
}

/// A word the robot was taught, and what it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnedWord {
    /// The word ("white", "vermilion", "capsule").
    pub word: String,
    /// "colour" or "shape".
    pub kind: String,
    /// The term it belongs to ("white", "red", "capsule").
    pub term: String,
}

/// The header of a state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateHeader {
    /// Always "brainloop-state".
    pub format: String,
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Vision feature width per cell the connector reads.
    pub vision_width: usize,
    /// Language embedding width.
    pub language_width: usize,
    /// sha256 of the vision model the views were seen with.
    pub vision_model: String,
    /// sha256 of the language model the words were embedded with.
    pub language_model: String,
    /// sha256 of the connector this state grew from (the shipped one, for a first night).
    pub base_connector: String,
    /// sha256 of the connector bytes inside.
    pub connector_sha256: String,
    /// Words learned (all nights).
    pub words: Vec<LearnedWord>,
    /// Concepts learned (all nights), by name.
    pub concepts: Vec<String>,
    /// The training report of each night, oldest first.
    pub nights: Vec<serde_json::Value>,
}

/// A loaded (or freshly learned) brain state.
#[derive(Debug, Clone)]
pub struct BrainState {
    /// Header (versions, vocabulary, reports).
    pub header: StateHeader,
    /// The connector to run with.
    pub connector: AlignConnector,
}

/// sha256 of a model in the compiled-in manifest ("" when it is not there).
pub fn model_sha(name: &str) -> String {
    crate::regions::models::Manifest::builtin()
        .get(name)
        .map(|m| m.sha256.clone())
        .unwrap_or_default()
}

impl BrainState {
    /// A state that is just `connector` (nothing learned yet), grown from `base_sha256`.
    pub fn fresh(connector: AlignConnector, base_sha256: String) -> Self {
        Self {
            header: StateHeader {
                format: "brainloop-state".into(),
                version: STATE_VERSION,
                vision_width: connector.in_dim(),
                language_width: connector.out_dim(),
                vision_model: model_sha("vision"),
                language_model: model_sha("language"),
                base_connector: base_sha256,
                connector_sha256: String::new(),
                words: Vec::new(),
                concepts: Vec::new(),
                nights: Vec::new(),
            },
            connector,
        }
    }

    /// The shipped connector as a state.
    pub fn shipped() -> Result<Self, crate::grounding::ConnectorError> {
        let path = crate::grounding::default_connector_path();
        let c = AlignConnector::load(&path)?;
        let sha = std::fs::read_to_string(checksum_path(&path))
            .ok()
            .and_then(|s| s.split_whitespace().next().map(|s| s.to_string()))
            .unwrap_or_default();
        Ok(Self::fresh(c, sha))
    }

    /// Serialise (header + connector).
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let conn = self.connector.to_bytes()?;
        let mut header = self.header.clone();
        header.connector_sha256 = hex(&Sha256::digest(&conn));
        header.vision_width = self.connector.in_dim();
        header.language_width = self.connector.out_dim();
        let json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
        let mut b = Vec::with_capacity(16 + json.len() + conn.len());
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&(json.len() as u32).to_le_bytes());
        b.extend_from_slice(&json);
        b.extend_from_slice(&(conn.len() as u64).to_le_bytes());
        b.extend_from_slice(&conn);
        Ok(b)
    }

    /// Save to `path` with `path.sha256` and `path.report.json` (the last night's report),
    /// through temporary files renamed into place. Returns the sha256.
    pub fn save(&self, path: &Path) -> Result<String, StateError> {
        let io = |p: &Path, e: &dyn std::fmt::Display| StateError::Io {
            path: p.to_path_buf(),
            message: e.to_string(),
        };
        let bytes = self.to_bytes().map_err(|e| io(path, &e))?;
        let digest = hex(&Sha256::digest(&bytes));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, &e))?;
        }
        let tmp = |p: &Path| {
            let mut s = p.as_os_str().to_owned();
            s.push(".tmp");
            PathBuf::from(s)
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sum = checksum_path(path);
        let report = report_path(path);
        let last = self
            .header
            .nights
            .last()
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let report_text = serde_json::to_string_pretty(&last).map_err(|e| io(&report, &e))? + "\n";
        std::fs::write(tmp(path), &bytes).map_err(|e| io(path, &e))?;
        std::fs::write(tmp(&sum), format!("{digest}  {name}\n")).map_err(|e| io(&sum, &e))?;
        std::fs::write(tmp(&report), report_text).map_err(|e| io(&report, &e))?;
        std::fs::rename(tmp(path), path).map_err(|e| io(path, &e))?;
        std::fs::rename(tmp(&sum), &sum).map_err(|e| io(&sum, &e))?;
        std::fs::rename(tmp(&report), &report).map_err(|e| io(&report, &e))?;
        Ok(digest)
    }

    /// Load and check a state file.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let bytes = std::fs::read(path).map_err(|e| StateError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let sum = checksum_path(path);
        let recorded = std::fs::read_to_string(&sum).map_err(|e| StateError::Corrupt {
            path: path.to_path_buf(),
            message: format!("its checksum file {} cannot be read ({e})", sum.display()),
        })?;
        let expected = recorded.split_whitespace().next().unwrap_or("");
        let found = hex(&Sha256::digest(&bytes));
        if expected != found {
            return Err(StateError::Corrupt {
                path: path.to_path_buf(),
                message: format!("sha256 mismatch (recorded {expected}, file {found})"),
            });
        }
        Self::from_bytes(&bytes, path)
    }

    /// Parse and check the bytes of a state file (`path` names it in errors).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, StateError> {
        let corrupt = |m: &str| StateError::Corrupt {
            path: path.to_path_buf(),
            message: m.to_string(),
        };
        let incompatible = |m: String| StateError::Incompatible {
            path: path.to_path_buf(),
            message: m,
        };
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(corrupt("not a brainloop state file (bad magic)"));
        }
        let hlen = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        let hbytes = bytes
            .get(12..12 + hlen)
            .ok_or_else(|| corrupt("truncated header"))?;
        let header: StateHeader =
            serde_json::from_slice(hbytes).map_err(|e| corrupt(&format!("header: {e}")))?;
        if header.format != "brainloop-state" {
            return Err(corrupt("not a brainloop state file (format)"));
        }
        if header.version != STATE_VERSION {
            return Err(incompatible(format!(
                "format version {} (this build reads version {STATE_VERSION})",
                header.version
            )));
        }
        let want_v = crate::regions::vision::SPATIAL_DIM;
        if header.vision_width != want_v {
            return Err(incompatible(format!(
                "learned for a vision width of {} channels, but the vision region gives {want_v}",
                header.vision_width
            )));
        }
        let want_l = crate::regions::language::EMBED_DIM;
        if header.language_width != want_l {
            return Err(incompatible(format!(
                "learned for a language width of {}, but the language region gives {want_l}",
                header.language_width
            )));
        }
        for (name, got) in [
            ("vision", &header.vision_model),
            ("language", &header.language_model),
        ] {
            let want = model_sha(name);
            if *got != want {
                return Err(incompatible(format!(
                    "learned with another {name} model (sha256 {got}, this build's is {want})"
                )));
            }
        }
        let rest = &bytes[12 + hlen..];
        if rest.len() < 8 {
            return Err(corrupt("truncated connector"));
        }
        let clen = u64::from_le_bytes(rest[..8].try_into().unwrap_or([0; 8])) as usize;
        let conn = rest
            .get(8..8 + clen)
            .ok_or_else(|| corrupt("truncated connector"))?;
        if rest.len() != 8 + clen {
            return Err(corrupt("trailing bytes"));
        }
        if hex(&Sha256::digest(conn)) != header.connector_sha256 {
            return Err(corrupt(
                "the connector inside does not match its recorded sha256",
            ));
        }
        let connector = AlignConnector::from_file_bytes(conn)
            .map_err(|e| corrupt(&format!("connector: {e}")))?;
        if connector.in_dim() != want_v || connector.out_dim() != want_l {
            return Err(incompatible(format!(
                "its connector maps {} -> {}, the regions give {want_v} -> {want_l}",
                connector.in_dim(),
                connector.out_dim()
            )));
        }
        Ok(Self { header, connector })
    }
}

/// `<state>.report.json`.
pub fn report_path(state: &Path) -> PathBuf {
    let mut s = state.as_os_str().to_owned();
    s.push(".report.json");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grounding::connector::Concept;

    fn toy(in_dim: usize) -> AlignConnector {
        let out = crate::regions::language::EMBED_DIM;
        let concepts = (0..3)
            .map(|k| {
                let mut p = vec![0.0f32; out];
                p[k] = 1.0;
                Concept {
                    name: format!("c{k}"),
                    background: k == 2,
                    prototype: p,
                }
            })
            .collect();
        AlignConnector::from_parts(
            in_dim,
            out,
            vec![0.0; in_dim],
            vec![1.0; in_dim],
            vec![0.01; in_dim * out],
            vec![0.0; out],
            concepts,
            0.1,
        )
        .unwrap()
    }

    #[test]
    fn round_trip_and_every_bad_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.bin");
        let mut s = BrainState::fresh(toy(crate::regions::vision::SPATIAL_DIM), "base".into());
        s.header.concepts.push("white ball".into());
        s.header.nights.push(serde_json::json!({"moments": 3}));
        let sha = s.save(&p).unwrap();
        assert_eq!(sha.len(), 64);
        let back = BrainState::load(&p).unwrap();
        assert_eq!(back.header.concepts, vec!["white ball".to_string()]);
        assert!(report_path(&p).is_file());
        let x = vec![0.5f32; crate::regions::vision::SPATIAL_DIM];
        assert_eq!(back.connector.project(&x), s.connector.project(&x));

        // One flipped byte: corrupt, names the file.
        let good = std::fs::read(&p).unwrap();
        let mut bad = good.clone();
        let at = bad.len() - 5;
        bad[at] ^= 0x40;
        std::fs::write(&p, &bad).unwrap();
        let e = BrainState::load(&p).unwrap_err().to_string();
        assert!(e.contains("corrupt") && e.contains("s.bin"), "{e}");
        // Truncated with a matching checksum: still refused.
        let cut = &good[..good.len() / 2];
        let e = BrainState::from_bytes(cut, &p).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        // Another format version.
        let mut v2 = s.clone();
        v2.header.version = 2;
        v2.save(&p).unwrap();
        let e = BrainState::load(&p).unwrap_err().to_string();
        assert!(e.contains("version 2"), "{e}");
        // Another vision width.
        BrainState::fresh(toy(1280), "base".into())
            .save(&p)
            .unwrap();
        let e = BrainState::load(&p).unwrap_err().to_string();
        assert!(e.contains("vision width of 1280"), "{e}");
        // Another vision model.
        let mut other = s.clone();
        other.header.vision_model = "0".repeat(64);
        other.save(&p).unwrap();
        let e = BrainState::load(&p).unwrap_err().to_string();
        assert!(e.contains("another vision model"), "{e}");
        // No checksum file.
        s.save(&p).unwrap();
        std::fs::remove_file(checksum_path(&p)).unwrap();
        assert!(BrainState::load(&p)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        // Garbage.
        assert!(BrainState::from_bytes(b"hello", &p).is_err());
    }
}
