//! The language region: the current instruction -> all-MiniLM-L6-v2 on ONNX Runtime -> a
//! 384-d unit-length sentence embedding. The embedding is computed once per instruction and
//! re-published unchanged until the instruction changes; an empty instruction publishes nothing
//! (the robot stays idle).
//!
//! Tokenisation is the model's own `tokenizer.json` through the `tokenizers` crate, with padding
//! disabled (so ids match the Python tokenizer) and its truncation at 128 tokens kept.

use super::runtime::ModelSession;
use super::{models, EmbeddingRef, Region, RegionCore, RegionError, ShedLevel};
use crate::config::RegionConfig;
use crate::msg::{Instruction, RegionId};
use ort::value::TensorRef;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokenizers::Tokenizer;

/// Sentence embedding width.
pub const EMBED_DIM: usize = 384;

/// all-MiniLM-L6-v2 with its tokenizer.
pub struct LanguageModel {
    session: ModelSession,
    tokenizer: Tokenizer,
    ids: Vec<i64>,
    mask: Vec<i64>,
    /// Embedding of the last run.
    pub embedding: Vec<f32>,
    /// Model id (sha prefix).
    pub model_id: u32,
}

impl LanguageModel {
    /// Load the `model` entry of the manifest and its `<model>-tokenizer` entry (both verified).
    pub fn load(model: &str, threads: usize) -> Result<Self, RegionError> {
        let (entry, path) = models::resolve(model)?;
        let (_, tok_path) = models::resolve(&format!("{model}-tokenizer"))?;
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| {
            RegionError::Runtime(format!("cannot load tokenizer {}: {e}", tok_path.display()))
        })?;
        tokenizer.with_padding(None);
        Ok(Self {
            session: ModelSession::open(RegionId::Language, &path, threads)?,
            tokenizer,
            ids: Vec::with_capacity(128),
            mask: Vec::with_capacity(128),
            embedding: vec![0.0; EMBED_DIM],
            model_id: entry.model_id(),
        })
    }

    /// Token ids of `text` (with `[CLS]` and `[SEP]`).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, RegionError> {
        self.tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| self.session.errors()(&format_args!("tokenizer: {e}")))
    }

    /// Embed `text` into [`LanguageModel::embedding`].
    pub fn embed(&mut self, text: &str) -> Result<&[f32], RegionError> {
        let ids = self.tokenize(text)?;
        self.ids.clear();
        self.ids.extend(ids.iter().map(|&i| i64::from(i)));
        self.mask.clear();
        self.mask.resize(self.ids.len(), 1);
        self.run()?;
        Ok(&self.embedding)
    }

    /// Run the model on the current ids (for benchmarks: tokenisation excluded).
    pub fn run(&mut self) -> Result<(), RegionError> {
        let err = self.session.errors();
        let n = self.ids.len();
        let ids = TensorRef::from_array_view(([1usize, n], &self.ids[..])).map_err(|e| err(&e))?;
        let mask =
            TensorRef::from_array_view(([1usize, n], &self.mask[..])).map_err(|e| err(&e))?;
        let out = self
            .session
            .run(ort::inputs!["input_ids" => ids, "attention_mask" => mask])?;
        let v = out
            .get("embedding")
            .ok_or_else(|| err(&"model has no output `embedding`"))?;
        let (_, data) = v.try_extract_tensor::<f32>().map_err(|e| err(&e))?;
        if data.len() != EMBED_DIM {
            return Err(err(&format!("embedding has {} values", data.len())));
        }
        self.embedding.copy_from_slice(data);
        Ok(())
    }

    /// Set the ids directly (benchmarks).
    pub fn set_ids(&mut self, ids: &[u32]) {
        self.ids.clear();
        self.ids.extend(ids.iter().map(|&i| i64::from(i)));
        self.mask.clear();
        self.mask.resize(self.ids.len(), 1);
    }
}

/// Where instructions arrive (from the CLI, the bus or the teleop console): a shared cell with
/// a version counter, so the region notices a change without taking the lock each step.
#[derive(Debug, Clone, Default)]
pub struct InstructionInbox {
    version: Arc<AtomicU64>,
    current: Arc<Mutex<Option<Instruction>>>,
}

impl InstructionInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }
    /// Replace the current instruction (an empty text clears it).
    pub fn set(&self, instruction: Instruction) {
        if let Ok(mut g) = self.current.lock() {
            *g = Some(instruction);
            self.version.fetch_add(1, Ordering::Release);
        }
    }
    /// Current version (changes with every `set`).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
    /// A copy of the current instruction.
    pub fn get(&self) -> Option<Instruction> {
        self.current.lock().ok().and_then(|g| g.clone())
    }
}

/// The language region.
pub struct LanguageRegion {
    core: RegionCore,
    model: LanguageModel,
    inbox: InstructionInbox,
    seen_version: u64,
    active: bool,
    text: String,
}

impl LanguageRegion {
    /// Build from the `[regions.language]` config section, reading instructions from `inbox`.
    pub fn new(
        cfg: &RegionConfig,
        inbox: InstructionInbox,
        shed: ShedLevel,
    ) -> Result<Self, RegionError> {
        let model = LanguageModel::load(&cfg.model, cfg.threads)?;
        let core = RegionCore::new(RegionId::Language, cfg, model.model_id, shed);
        Ok(Self {
            core,
            model,
            inbox,
            seen_version: 0,
            active: false,
            text: String::new(),
        })
    }

    /// The instruction text currently embedded ("" when none).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The model (e.g. to embed label texts with the same encoder).
    pub fn model_mut(&mut self) -> &mut LanguageModel {
        &mut self.model
    }
}

impl Region for LanguageRegion {
    fn core(&self) -> &RegionCore {
        &self.core
    }
    fn step(&mut self, now_ns: u64) -> Result<Option<EmbeddingRef<'_>>, RegionError> {
        if self.core.skip() {
            return Ok(None);
        }
        let v = self.inbox.version();
        if v != self.seen_version {
            self.seen_version = v;
            let text = self
                .inbox
                .get()
                .map(|i| i.text.trim().to_string())
                .unwrap_or_default();
            self.active = false;
            self.text.clear();
            if !text.is_empty() {
                self.core.timed(|| self.model.embed(&text).map(|_| ()))?;
                self.text = text;
                self.active = true;
            }
        }
        if !self.active {
            self.core.stats.no_input += 1;
            return Ok(None);
        }
        Ok(Some(self.core.vector(now_ns, &self.model.embedding)))
    }
}
