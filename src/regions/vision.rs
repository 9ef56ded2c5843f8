//! The vision region: camera frame -> EfficientNet-Lite0 on ONNX Runtime -> the pooled
//! 1280-d image embedding plus the 7x7x1504 spatial feature map (for query-based connectors
//! that ground language in what the robot sees): per cell the head's 1280 features, then the
//! earlier stages pooled over the cell (colour and small, far things the head has pooled away).
//!
//! Preprocessing (in Rust, no allocation per frame): centre-crop to a square, bilinear resize to
//! 224x224 with half-pixel centres; mean/std normalisation is inside the model.

use super::runtime::ModelSession;
use super::sources::{Frame, FrameSource};
use super::{models, EmbeddingRef, Region, RegionCore, RegionError, ShedLevel};
use crate::config::RegionConfig;
use crate::msg::RegionId;
use ort::value::TensorRef;

/// Input side of the model, px.
pub const SIZE: usize = 224;
/// Pooled embedding width.
pub const EMBED_DIM: usize = 1280;
/// Spatial grid side.
pub const GRID: usize = 7;
/// Channels per spatial cell: head features (the first `EMBED_DIM`), then max/mean over the cell
/// of stages 5 (112), 3 (2 x 40) and 1 (2 x 16) of the network.
pub const SPATIAL_DIM: usize = EMBED_DIM + 112 + 2 * 40 + 2 * 16;
/// ImageNet classes of the classifier output.
pub const CLASSES: usize = 1000;

/// Centre-crop `frame` to a square and resize it bilinearly (half-pixel centres, edge clamp) to
/// `SIZE` x `SIZE`, writing RGB values 0..255 as f32 (HWC) into `out`.
pub fn preprocess(frame: &Frame, out: &mut [f32]) -> Result<(), RegionError> {
    frame.validate()?;
    if out.len() != SIZE * SIZE * 3 {
        return Err(RegionError::Source("preprocess: output buffer size".into()));
    }
    let (w, h) = (frame.width as usize, frame.height as usize);
    let m = w.min(h);
    let (x0, y0) = ((w - m) / 2, (h - m) / 2);
    let scale = m as f64 / SIZE as f64;
    let max = (m - 1) as f64;
    // Source coordinates of every output column/row: (low index, high index, weight of high).
    let mut taps = [(0usize, 0usize, 0.0f64); SIZE];
    for (i, t) in taps.iter_mut().enumerate() {
        let s = ((i as f64 + 0.5) * scale - 0.5).clamp(0.0, max);
        let lo = s.floor() as usize;
        *t = (lo, (lo + 1).min(m - 1), s - lo as f64);
    }
    let row = |y: usize| {
        let start = ((y0 + y) * w + x0) * 3;
        &frame.data[start..start + m * 3]
    };
    for (oy, &(ylo, yhi, wy)) in taps.iter().enumerate() {
        let (top_row, bot_row) = (row(ylo), row(yhi));
        let out_row = &mut out[oy * SIZE * 3..(oy + 1) * SIZE * 3];
        for (o, &(xlo, xhi, wx)) in out_row.chunks_exact_mut(3).zip(taps.iter()) {
            for c in 0..3 {
                let p = |r: &[u8], x: usize| f64::from(r[x * 3 + c]);
                let top = p(top_row, xlo) * (1.0 - wx) + p(top_row, xhi) * wx;
                let bot = p(bot_row, xlo) * (1.0 - wx) + p(bot_row, xhi) * wx;
                o[c] = (top * (1.0 - wy) + bot * wy) as f32;
            }
        }
    }
    Ok(())
}

/// EfficientNet-Lite0 on ONNX Runtime with preallocated input and output buffers.
pub struct VisionModel {
    session: ModelSession,
    input: Vec<f32>,
    /// Pooled embedding of the last run.
    pub embedding: Vec<f32>,
    /// Spatial map of the last run, `[7, 7, SPATIAL_DIM]` row-major.
    pub spatial: Vec<f32>,
    /// ImageNet logits of the last run.
    pub logits: Vec<f32>,
    /// Model id (sha prefix).
    pub model_id: u32,
}

impl VisionModel {
    /// Load the `model` entry of the manifest (verified by sha256) with `threads` threads.
    pub fn load(model: &str, threads: usize) -> Result<Self, RegionError> {
        let (entry, path) = models::resolve(model)?;
        Ok(Self {
            session: ModelSession::open(RegionId::Vision, &path, threads)?,
            input: vec![0.0; SIZE * SIZE * 3],
            embedding: vec![0.0; EMBED_DIM],
            spatial: vec![0.0; GRID * GRID * SPATIAL_DIM],
            logits: vec![0.0; CLASSES],
            model_id: entry.model_id(),
        })
    }

    /// The input buffer (224x224x3 RGB 0..255, HWC) for callers that preprocess themselves.
    pub fn input_mut(&mut self) -> &mut [f32] {
        &mut self.input
    }

    /// Preprocess `frame` and run the model.
    pub fn run_frame(&mut self, frame: &Frame) -> Result<(), RegionError> {
        preprocess(frame, &mut self.input)?;
        self.run()
    }

    /// Run the model on the current input buffer.
    pub fn run(&mut self) -> Result<(), RegionError> {
        let err = self.session.errors();
        let t = TensorRef::from_array_view(([1usize, SIZE, SIZE, 3], &self.input[..]))
            .map_err(|e| err(&e))?;
        let out = self.session.run(ort::inputs!["image" => t])?;
        for (name, dst) in [
            ("embedding", &mut self.embedding),
            ("spatial", &mut self.spatial),
            ("logits", &mut self.logits),
        ] {
            let v = out
                .get(name)
                .ok_or_else(|| err(&format!("model has no output `{name}`")))?;
            let (_, data) = v.try_extract_tensor::<f32>().map_err(|e| err(&e))?;
            if data.len() != dst.len() {
                return Err(err(&format!(
                    "output `{name}` has {} values, want {}",
                    data.len(),
                    dst.len()
                )));
            }
            dst.copy_from_slice(data);
        }
        Ok(())
    }

    /// The `k` most likely ImageNet class indices of the last run, best first.
    pub fn top_k(&self, k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.logits.len()).collect();
        idx.sort_by(|&a, &b| self.logits[b].total_cmp(&self.logits[a]));
        idx.truncate(k);
        idx
    }
}

/// The vision region.
pub struct VisionRegion {
    core: RegionCore,
    model: VisionModel,
    source: Box<dyn FrameSource>,
}

impl VisionRegion {
    /// Build from the `[regions.vision]` config section, reading frames from `source`.
    pub fn new(
        cfg: &RegionConfig,
        source: Box<dyn FrameSource>,
        shed: ShedLevel,
    ) -> Result<Self, RegionError> {
        let model = VisionModel::load(&cfg.model, cfg.threads)?;
        let mut core = RegionCore::new(RegionId::Vision, cfg, model.model_id, shed);
        core.sheddable = true;
        Ok(Self {
            core,
            model,
            source,
        })
    }

    /// The model (e.g. to read the classifier output of the last frame).
    pub fn model(&self) -> &VisionModel {
        &self.model
    }
}

impl Region for VisionRegion {
    fn core(&self) -> &RegionCore {
        &self.core
    }
    fn step(&mut self, now_ns: u64) -> Result<Option<EmbeddingRef<'_>>, RegionError> {
        let Some(frame) = self.core.input(|| self.source.latest(now_ns)) else {
            return Ok(None);
        };
        self.core.timed(|| self.model.run_frame(&frame))?;
        let g = GRID as u32;
        Ok(Some(self.core.embedding(
            frame.stamp_ns,
            &self.model.embedding,
            [g, g, SPATIAL_DIM as u32],
            &self.model.spatial,
        )))
    }
}
