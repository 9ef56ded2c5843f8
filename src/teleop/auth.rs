//! Only the operator drives: commands from `brainloop console` are signed with a shared
//! operator key (HMAC-SHA256), and the brain executes only those whose signature, sequence and
//! time check out. Anything else is dropped and counted, never executed.
//!
//! A signed command on the wire is `mac (32 bytes) || body`, where `body` is the JSON of
//! [`SignedBody`] and `mac = HMAC-SHA256(key, body)`. The body carries the console's random id,
//! a sequence number that must grow per id (a replayed sample is refused), the wall-clock send
//! time (a sample more than [`MAX_SKEW_NS`] from the brain's clock is refused) and the time of
//! the key event it stands for (a drive lapses from then, not from when it arrived).
//!
//! The key is 32 random bytes stored as hex in a file readable by its owner only
//! (`~/.config/brainloop/operator.key` by default): whoever can read it is an operator. The
//! brain creates it on first use; copy it to an operator's machine to let them drive. The
//! e-stop does not need the key (see `bus::zenoh::net_topics::ESTOP`); clearing it does.

use crate::msg::OperatorCommand;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

type HmacSha256 = Hmac<Sha256>;

/// Length of the signature in front of a signed command.
pub const MAC_LEN: usize = 32;

/// A sample sent more than this far from the receiver's wall clock is refused, ns.
pub const MAX_SKEW_NS: i64 = 2_000_000_000;

/// The longest signed command accepted, bytes.
pub const MAX_SIGNED_BYTES: usize = 4096;

/// Errors reading or making an operator key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("operator key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold 64 hex digits.
    #[error("operator key {0}: not 64 hex digits (32 bytes)")]
    Format(PathBuf),
}

/// The shared operator key.
#[derive(Clone)]
pub struct OperatorKey {
    bytes: [u8; 32],
    path: PathBuf,
}

impl std::fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the bytes.
        f.debug_struct("OperatorKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Where the operator key lives: `configured` if not empty, else `$BRAINLOOP_OPERATOR_KEY`,
/// else `$XDG_CONFIG_HOME/brainloop/operator.key` (or `~/.config/...`).
pub fn key_path(configured: &str) -> PathBuf {
    if !configured.trim().is_empty() {
        return PathBuf::from(configured.trim());
    }
    if let Some(p) = std::env::var_os("BRAINLOOP_OPERATOR_KEY").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("brainloop").join("operator.key")
}

impl OperatorKey {
    /// A key from its bytes (tests, tools).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            bytes,
            path: PathBuf::new(),
        }
    }

    /// Read the key at `path`.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let hex = text.trim();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeyError::Format(path.to_path_buf()));
        }
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| KeyError::Format(path.to_path_buf()))?;
        }
        Ok(Self {
            bytes,
            path: path.to_path_buf(),
        })
    }

    /// Read the key at `path`, or make one there (32 bytes from the kernel's random source,
    /// mode 0600) if there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        if path.exists() {
            return Self::load(path);
        }
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = [0u8; 32];
        {
            use std::io::Read;
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut bytes))
                .map_err(io)?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
            writeln!(f, "{hex}").map_err(io)?;
        }
        tracing::info!(path = %path.display(), "made a new operator key: consoles that hold it may drive");
        Ok(Self {
            bytes,
            path: path.to_path_buf(),
        })
    }

    /// Where it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length.
        <HmacSha256 as Mac>::new_from_slice(&self.bytes).expect("HMAC accepts any key length")
    }
}

/// What a signed command says besides the command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedBody {
    /// The sending console's random id.
    pub id: u64,
    /// Grows by one per command of this console.
    pub seq: u64,
    /// Wall-clock send time, ns since the epoch.
    pub wall_ns: i64,
    /// Wall-clock time of the operator's key event this command stands for, ns.
    pub key_wall_ns: i64,
    /// The command.
    pub cmd: OperatorCommand,
}

/// Signs a console's commands.
#[derive(Debug)]
pub struct Signer {
    key: OperatorKey,
    id: u64,
    seq: u64,
}

impl Signer {
    /// A signer with a fresh random id.
    pub fn new(key: OperatorKey) -> Self {
        let mut id = [0u8; 8];
        let ok = {
            use std::io::Read;
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut id))
                .is_ok()
        };
        let id = if ok {
            u64::from_le_bytes(id)
        } else {
            // No random source: time and pid still tell two consoles apart.
            (crate::bus::zenoh::wall_ns() as u64) ^ ((std::process::id() as u64) << 32)
        };
        Self { key, id, seq: 0 }
    }

    /// This console's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// `cmd` signed, sent at `wall_ns` for a key event at `key_wall_ns`.
    pub fn sign(&mut self, cmd: OperatorCommand, wall_ns: i64, key_wall_ns: i64) -> Vec<u8> {
        self.seq += 1;
        let body = SignedBody {
            id: self.id,
            seq: self.seq,
            wall_ns,
            key_wall_ns,
            cmd,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut m = self.key.mac();
        m.update(&json);
        let mut out = m.finalize().into_bytes().to_vec();
        out.extend_from_slice(&json);
        out
    }
}

/// Why a signed command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Shorter than a signature, longer than [`MAX_SIGNED_BYTES`], or the body is not a
    /// command.
    #[error("not a signed operator command")]
    Malformed,
    /// The signature does not match the operator key (an unknown or unauthenticated source).
    #[error("bad signature (not signed with the operator key)")]
    BadSignature,
    /// A sequence number already seen from this console (a replay).
    #[error("replayed")]
    Replayed,
    /// Sent too far from this clock (a stale or future stamp), or a key event too old.
    #[error("stale or future stamp")]
    Stale,
}

/// Counters of what the verifier accepted and refused.
#[derive(Debug, Default)]
pub struct AuthStats {
    /// Commands accepted.
    pub accepted: AtomicU64,
    /// Refused: malformed.
    pub malformed: AtomicU64,
    /// Refused: bad signature.
    pub bad_signature: AtomicU64,
    /// Refused: replayed.
    pub replayed: AtomicU64,
    /// Refused: stale or future stamp.
    pub stale: AtomicU64,
    /// E-stops from the public e-stop key (no key needed).
    pub public_estops: AtomicU64,
}

/// A plain copy of [`AuthStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuthSnapshot {
    /// Commands accepted.
    pub accepted: u64,
    /// Refused: malformed.
    pub malformed: u64,
    /// Refused: bad signature.
    pub bad_signature: u64,
    /// Refused: replayed.
    pub replayed: u64,
    /// Refused: stale or future stamp.
    pub stale: u64,
    /// E-stops from the public e-stop key.
    pub public_estops: u64,
}

impl AuthSnapshot {
    /// Every refusal.
    pub fn refused(&self) -> u64 {
        self.malformed + self.bad_signature + self.replayed + self.stale
    }
}

impl AuthStats {
    /// A copy.
    pub fn snapshot(&self) -> AuthSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AuthSnapshot {
            accepted: l(&self.accepted),
            malformed: l(&self.malformed),
            bad_signature: l(&self.bad_signature),
            replayed: l(&self.replayed),
            stale: l(&self.stale),
            public_estops: l(&self.public_estops),
        }
    }

    fn count(&self, r: Refusal) -> u64 {
        let c = match r {
            Refusal::Malformed => &self.malformed,
            Refusal::BadSignature => &self.bad_signature,
            Refusal::Replayed => &self.replayed,
            Refusal::Stale => &self.stale,
        };
        c.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Checks signed commands (the brain's side).
#[derive(Debug)]
pub struct Verifier {
    key: OperatorKey,
    /// Per console id: (last sequence number, wall time last seen).
    seen: HashMap<u64, (u64, i64)>,
}

/// Consoles remembered for replay checks; the one seen longest ago is forgotten first (its
/// old samples are outside the clock window by then).
const MAX_CONSOLES: usize = 64;

impl Verifier {
    /// A verifier for `key`.
    pub fn new(key: OperatorKey) -> Self {
        Self {
            key,
            seen: HashMap::new(),
        }
    }

    /// Check one sample received at wall time `now_wall_ns`; counts the outcome on `stats`.
    pub fn verify(
        &mut self,
        sample: &[u8],
        now_wall_ns: i64,
        stats: &AuthStats,
    ) -> Result<SignedBody, Refusal> {
        let r = self.check(sample, now_wall_ns);
        match &r {
            Ok(_) => {
                stats.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let n = stats.count(*e);
                // Once, then every 100th: a flood must not flood the log.
                if n % 100 == 1 {
                    tracing::warn!(refused = n, "dropped an operator command: {e}");
                }
            }
        }
        r
    }

    fn check(&mut self, sample: &[u8], now: i64) -> Result<SignedBody, Refusal> {
        if sample.len() <= MAC_LEN || sample.len() > MAX_SIGNED_BYTES {
            return Err(Refusal::Malformed);
        }
        let (mac, body) = sample.split_at(MAC_LEN);
        let mut m = self.key.mac();
        m.update(body);
        m.verify_slice(mac).map_err(|_| Refusal::BadSignature)?;
        let b: SignedBody = serde_json::from_slice(body).map_err(|_| Refusal::Malformed)?;
        if (b.wall_ns - now).abs() > MAX_SKEW_NS
            || b.key_wall_ns > b.wall_ns
            || b.wall_ns - b.key_wall_ns > MAX_SKEW_NS
        {
            return Err(Refusal::Stale);
        }
        if let OperatorCommand::Drive(t) = &b.cmd {
            if !t.is_finite() {
                return Err(Refusal::Malformed);
            }
        }
        match self.seen.get_mut(&b.id) {
            Some((seq, last)) => {
                if b.seq <= *seq {
                    return Err(Refusal::Replayed);
                }
                *seq = b.seq;
                *last = now;
            }
            None => {
                if self.seen.len() >= MAX_CONSOLES {
                    if let Some(oldest) = self.seen.iter().min_by_key(|e| e.1 .1).map(|e| *e.0) {
                        self.seen.remove(&oldest);
                    }
                }
                self.seen.insert(b.id, (b.seq, now));
            }
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Twist;

    fn key(b: u8) -> OperatorKey {
        OperatorKey::from_bytes([b; 32])
    }

    #[test]
    fn signed_commands_pass_once_and_nothing_else_does() {
        let (mut s, mut v, st) = (
            Signer::new(key(7)),
            Verifier::new(key(7)),
            AuthStats::default(),
        );
        let now = 1_700_000_000_000_000_000i64;
        let drive = OperatorCommand::Drive(Twist {
            linear: 0.2,
            angular: 0.0,
        });
        let a = s.sign(drive.clone(), now, now - 1000);
        assert_eq!(v.verify(&a, now + 5_000_000, &st).unwrap().cmd, drive);
        assert_eq!(v.verify(&a, now, &st), Err(Refusal::Replayed));
        // Another key: an unauthenticated console.
        let mut other = Signer::new(key(8));
        let b = other.sign(OperatorCommand::Reset, now, now);
        assert_eq!(v.verify(&b, now, &st), Err(Refusal::BadSignature));
        // A tampered body.
        let mut c = s.sign(OperatorCommand::Sleep, now, now);
        let n = c.len();
        c[n - 3] ^= 1;
        assert_eq!(v.verify(&c, now, &st), Err(Refusal::BadSignature));
        // Unsigned JSON, garbage, empty.
        assert_eq!(
            v.verify(br#"{"drive":[1,0]}"#, now, &st),
            Err(Refusal::Malformed)
        );
        assert_eq!(v.verify(&[], now, &st), Err(Refusal::Malformed));
        // Too old, from the future.
        let d = s.sign(
            OperatorCommand::Release,
            now - 3_000_000_000,
            now - 3_000_000_000,
        );
        assert_eq!(v.verify(&d, now, &st), Err(Refusal::Stale));
        let e = s.sign(OperatorCommand::Release, now + 3_000_000_000, now);
        assert_eq!(v.verify(&e, now, &st), Err(Refusal::Stale));
        let snap = st.snapshot();
        assert_eq!(snap.accepted, 1);
        assert_eq!(snap.refused(), 7);
        assert_eq!((snap.bad_signature, snap.replayed, snap.stale), (2, 1, 2));
    }

    #[test]
    fn a_key_file_is_made_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("brainloop-key-{}", std::process::id()));
        let p = dir.join("sub").join("operator.key");
        let _ = std::fs::remove_dir_all(&dir);
        let k = OperatorKey::load_or_create(&p).unwrap();
        let again = OperatorKey::load_or_create(&p).unwrap();
        assert_eq!(k.bytes, again.bytes);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
        std::fs::write(&p, "not hex\n").unwrap();
        assert!(matches!(OperatorKey::load(&p), Err(KeyError::Format(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
