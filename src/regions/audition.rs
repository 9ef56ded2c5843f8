//! The audition region: 16 kHz microphone audio in 512-sample chunks (31.25 per second) ->
//! silero VAD on ONNX Runtime for the speech probability, plus 32 log-mel band energies of the
//! chunk computed in Rust. The published vector is `[p_speech, logmel_0 .. logmel_31]`.
//!
//! The VAD is recurrent: its 2x1x128 state and the last 64 samples of context are carried from
//! chunk to chunk exactly as silero's own wrapper does.

use super::mel::LogMel;
use super::runtime::ModelSession;
use super::sources::{AudioSource, AUDIO_RATE};
use super::{models, EmbeddingRef, Region, RegionCore, RegionError, ShedLevel};
use crate::config::RegionConfig;
use crate::msg::RegionId;
use ort::value::{Tensor, TensorRef};

/// Samples per chunk.
pub const CHUNK: usize = 512;
/// Samples of context carried over from the previous chunk.
pub const CONTEXT: usize = 64;
/// Log-mel bands.
pub const BANDS: usize = 32;
/// Published vector width: speech probability + bands.
pub const EMBED_DIM: usize = 1 + BANDS;
const STATE: usize = 2 * 128;

/// Silero VAD plus the log-mel filterbank, with carried state.
pub struct AuditionModel {
    session: ModelSession,
    sr: Tensor<i64>,
    input: Vec<f32>,
    state: Vec<f32>,
    mel: LogMel,
    /// Output of the last chunk: `[p_speech, logmel...]`.
    pub vector: Vec<f32>,
    /// Model id (sha prefix).
    pub model_id: u32,
}

impl AuditionModel {
    /// Load the `model` entry of the manifest (verified) with `threads` threads.
    pub fn load(model: &str, threads: usize) -> Result<Self, RegionError> {
        let (entry, path) = models::resolve(model)?;
        let sr = Tensor::from_array(((), vec![i64::from(AUDIO_RATE)]))
            .map_err(|e| RegionError::Runtime(format!("audition: {e}")))?;
        Ok(Self {
            session: ModelSession::open(RegionId::Audition, &path, threads)?,
            sr,
            input: vec![0.0; CONTEXT + CHUNK],
            state: vec![0.0; STATE],
            mel: LogMel::new(CHUNK, BANDS, f64::from(AUDIO_RATE)),
            vector: vec![0.0; EMBED_DIM],
            model_id: entry.model_id(),
        })
    }

    /// Forget the recurrent state and context (start of a new stream).
    pub fn reset(&mut self) {
        self.input.iter_mut().for_each(|v| *v = 0.0);
        self.state.iter_mut().for_each(|v| *v = 0.0);
    }

    /// Process one chunk of `CHUNK` samples.
    pub fn process(&mut self, chunk: &[f32]) -> Result<&[f32], RegionError> {
        if chunk.len() != CHUNK {
            return Err(RegionError::Source(format!(
                "audition: chunk of {} samples, want {CHUNK}",
                chunk.len()
            )));
        }
        // input = last CONTEXT samples of the previous input, then the new chunk.
        self.input.copy_within(CHUNK.., 0);
        self.input[CONTEXT..].copy_from_slice(chunk);
        self.run_vad()?;
        self.mel.compute(chunk, &mut self.vector[1..]);
        Ok(&self.vector)
    }

    /// One VAD inference on the current input and state (benchmarks call this directly).
    pub fn run_vad(&mut self) -> Result<(), RegionError> {
        let err = self.session.errors();
        let x = TensorRef::from_array_view(([1usize, CONTEXT + CHUNK], &self.input[..]))
            .map_err(|e| err(&e))?;
        let s =
            TensorRef::from_array_view(([2usize, 1, 128], &self.state[..])).map_err(|e| err(&e))?;
        let out = self
            .session
            .run(ort::inputs!["input" => x, "state" => s, "sr" => &self.sr])?;
        let p = out
            .get("output")
            .ok_or_else(|| err(&"model has no output `output`"))?
            .try_extract_tensor::<f32>()
            .map_err(|e| err(&e))?
            .1
            .first()
            .copied()
            .ok_or_else(|| err(&"empty output"))?;
        let (_, st) = out
            .get("stateN")
            .ok_or_else(|| err(&"model has no output `stateN`"))?
            .try_extract_tensor::<f32>()
            .map_err(|e| err(&e))?;
        if st.len() != STATE {
            return Err(err(&format!("stateN has {} values", st.len())));
        }
        self.state.copy_from_slice(st);
        self.vector[0] = p;
        Ok(())
    }
}

/// The audition region.
pub struct AuditionRegion {
    core: RegionCore,
    model: AuditionModel,
    source: Box<dyn AudioSource>,
    chunk: Vec<f32>,
}

impl AuditionRegion {
    /// Build from the `[regions.audition]` config section, reading audio from `source`.
    pub fn new(
        cfg: &RegionConfig,
        source: Box<dyn AudioSource>,
        shed: ShedLevel,
    ) -> Result<Self, RegionError> {
        let model = AuditionModel::load(&cfg.model, cfg.threads)?;
        let core = RegionCore::new(RegionId::Audition, cfg, model.model_id, shed);
        Ok(Self {
            core,
            model,
            source,
            chunk: vec![0.0; CHUNK],
        })
    }
}

impl Region for AuditionRegion {
    fn core(&self) -> &RegionCore {
        &self.core
    }
    fn step(&mut self, now_ns: u64) -> Result<Option<EmbeddingRef<'_>>, RegionError> {
        let Some(stamp) = self
            .core
            .input(|| self.source.read_chunk(now_ns, &mut self.chunk))
        else {
            return Ok(None);
        };
        self.core
            .timed(|| self.model.process(&self.chunk).map(|_| ()))?;
        Ok(Some(self.core.vector(stamp, &self.model.vector)))
    }
}
