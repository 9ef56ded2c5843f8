//! Where the regions' inputs come from. Sources are traits so that image files, a camera, the
//! simulator's camera, WAV files, a microphone and the body all serve the same regions:
//! [`FrameSource`] (RGB8 frames), [`AudioSource`] (16 kHz mono chunks) and [`BodyStateSource`].

use super::RegionError;
use crate::msg::BodyState;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One RGB8 camera frame, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Width, px.
    pub width: u32,
    /// Height, px.
    pub height: u32,
    /// Capture time, ns.
    pub stamp_ns: u64,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
}

impl Frame {
    /// Check that `data` has `width * height * 3` bytes and the frame is not empty.
    pub fn validate(&self) -> Result<(), RegionError> {
        let want = self.width as usize * self.height as usize * 3;
        if self.width == 0 || self.height == 0 || self.data.len() != want {
            return Err(RegionError::Source(format!(
                "bad frame: {}x{} with {} bytes (want {want})",
                self.width,
                self.height,
                self.data.len()
            )));
        }
        Ok(())
    }
}

/// A source of camera frames.
pub trait FrameSource: Send {
    /// The newest frame at `now_ns`, or `None` when there is no new frame.
    fn latest(&mut self, now_ns: u64) -> Option<Frame>;
}

/// Decode an image file (PNG or JPEG) to an RGB8 frame.
pub fn load_image(path: &Path) -> Result<Frame, RegionError> {
    let img = image::open(path)
        .map_err(|e| RegionError::Source(format!("cannot read image {}: {e}", path.display())))?
        .to_rgb8();
    Ok(Frame {
        width: img.width(),
        height: img.height(),
        stamp_ns: 0,
        data: img.into_raw(),
    })
}

/// Still images or an image sequence (a "video" as a folder of frames) played at `fps`,
/// looping. A single image is seen continuously, as a camera pointed at it would.
#[derive(Debug, Clone)]
pub struct ImageFiles {
    frames: Vec<Frame>,
    fps: f64,
    start_ns: Option<u64>,
}

impl ImageFiles {
    /// Open files, or every `.png`/`.jpg`/`.jpeg` in a folder (sorted by name).
    pub fn open(paths: &[PathBuf], fps: f64) -> Result<Self, RegionError> {
        let mut files = Vec::new();
        for p in paths {
            if p.is_dir() {
                let mut inner: Vec<PathBuf> = std::fs::read_dir(p)
                    .map_err(|e| {
                        RegionError::Source(format!("cannot read folder {}: {e}", p.display()))
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| {
                        matches!(
                            f.extension()
                                .and_then(|x| x.to_str())
                                .map(|x| x.to_ascii_lowercase())
                                .as_deref(),
                            Some("png" | "jpg" | "jpeg")
                        )
                    })
                    .collect();
                inner.sort();
                files.extend(inner);
            } else {
                files.push(p.clone());
            }
        }
        if files.is_empty() {
            return Err(RegionError::Source(
                "no image files given (png or jpeg files, or a folder of them)".into(),
            ));
        }
        let frames = files
            .iter()
            .map(|f| load_image(f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_frames(frames, fps))
    }

    /// Play already decoded frames.
    pub fn from_frames(frames: Vec<Frame>, fps: f64) -> Self {
        Self {
            frames,
            fps: if fps.is_finite() && fps > 0.0 {
                fps
            } else {
                1.0
            },
            start_ns: None,
        }
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl FrameSource for ImageFiles {
    fn latest(&mut self, now_ns: u64) -> Option<Frame> {
        if self.frames.is_empty() {
            return None;
        }
        let start = *self.start_ns.get_or_insert(now_ns);
        let t = now_ns.saturating_sub(start) as f64 * 1e-9;
        let idx = (t * self.fps) as usize % self.frames.len();
        let mut f = self.frames[idx].clone();
        f.stamp_ns = now_ns;
        Some(f)
    }
}

/// A latest-frame mailbox: a producer (the simulator's camera, a camera thread) puts frames in,
/// the vision region takes the newest. Cloning shares the mailbox.
#[derive(Debug, Clone, Default)]
pub struct SharedFrame(Arc<Mutex<Option<Frame>>>);

impl SharedFrame {
    /// An empty mailbox.
    pub fn new() -> Self {
        Self::default()
    }
    /// Whether anyone besides this handle still holds the mailbox (a producer thread stops
    /// when its consumer is gone).
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
    /// Replace the pending frame.
    pub fn put(&self, frame: Frame) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(frame);
        }
    }
}

impl FrameSource for SharedFrame {
    fn latest(&mut self, _now_ns: u64) -> Option<Frame> {
        self.0.lock().ok().and_then(|mut g| g.take())
    }
}

/// A camera device seam: open it, grab frames. A real camera driver implements it (no driver
/// is built in yet; OpenCV's `VideoCapture` is the intended one) and tests use fakes;
/// [`ReconnectingCamera`] adds reconnection with backoff on top.
pub trait Camera: Send {
    /// (Re)open the device.
    fn open(&mut self) -> Result<(), String>;
    /// Grab the newest frame; an error means the device is gone (it will be reopened).
    fn grab(&mut self) -> Result<Frame, String>;
    /// Name for reports, e.g. `/dev/video0`.
    fn name(&self) -> String;
}

/// A [`FrameSource`] over a [`Camera`] that survives disconnects: when the device fails, it is
/// reopened with exponential backoff (`min_backoff_ns` doubling up to `max_backoff_ns`, timed on
/// the caller's clock, so tests are deterministic), and every disconnect is counted and logged once.
pub struct ReconnectingCamera<C: Camera> {
    camera: C,
    open: bool,
    next_try_ns: u64,
    backoff_ns: u64,
    min_backoff_ns: u64,
    max_backoff_ns: u64,
    /// Times the device was lost.
    pub disconnects: u64,
    /// Failed reopen attempts.
    pub failed_opens: u64,
    /// The last error, if the camera is down.
    pub last_error: Option<String>,
}

impl<C: Camera> ReconnectingCamera<C> {
    /// Wrap `camera`; backoff from 100 ms up to 5 s.
    pub fn new(camera: C) -> Self {
        Self::with_backoff(camera, 100_000_000, 5_000_000_000)
    }

    /// Wrap `camera` with the given backoff bounds (ns).
    pub fn with_backoff(camera: C, min_backoff_ns: u64, max_backoff_ns: u64) -> Self {
        Self {
            camera,
            open: false,
            next_try_ns: 0,
            backoff_ns: min_backoff_ns.max(1),
            min_backoff_ns: min_backoff_ns.max(1),
            max_backoff_ns: max_backoff_ns.max(min_backoff_ns.max(1)),
            disconnects: 0,
            failed_opens: 0,
            last_error: None,
        }
    }

    /// Whether the device is currently open.
    pub fn is_open(&self) -> bool {
        self.open
    }

    fn schedule_retry(&mut self, now_ns: u64, e: String) {
        self.next_try_ns = now_ns.saturating_add(self.backoff_ns);
        self.backoff_ns = (self.backoff_ns.saturating_mul(2)).min(self.max_backoff_ns);
        self.last_error = Some(e);
    }
}

impl<C: Camera> FrameSource for ReconnectingCamera<C> {
    fn latest(&mut self, now_ns: u64) -> Option<Frame> {
        if !self.open {
            if now_ns < self.next_try_ns {
                return None;
            }
            match self.camera.open() {
                Ok(()) => {
                    if self.disconnects > 0 || self.failed_opens > 0 {
                        tracing::info!("camera {} reopened", self.camera.name());
                    }
                    self.open = true;
                    self.backoff_ns = self.min_backoff_ns;
                    self.last_error = None;
                }
                Err(e) => {
                    self.failed_opens += 1;
                    self.schedule_retry(now_ns, e);
                    return None;
                }
            }
        }
        match self.camera.grab() {
            Ok(mut f) => {
                f.stamp_ns = now_ns;
                Some(f)
            }
            Err(e) => {
                self.disconnects += 1;
                tracing::warn!(
                    "camera {} lost ({e}); retrying with backoff",
                    self.camera.name()
                );
                self.open = false;
                self.schedule_retry(now_ns, e);
                None
            }
        }
    }
}

/// Sample rate every audio source delivers, Hz.
pub const AUDIO_RATE: u32 = 16_000;

/// A source of 16 kHz mono audio.
pub trait AudioSource: Send {
    /// Fill `out` with the next `out.len()` samples in [-1, 1] and return their capture time,
    /// or `None` when not enough audio is available yet.
    fn read_chunk(&mut self, now_ns: u64, out: &mut [f32]) -> Option<u64>;
}

/// Decode a WAV file to 16 kHz mono f32 (channels averaged; integer multiples of 16 kHz are
/// decimated, as silero VAD's own wrapper does).
pub fn load_wav(path: &Path) -> Result<Vec<f32>, RegionError> {
    let err = |e: &dyn std::fmt::Display| {
        RegionError::Source(format!("cannot read WAV {}: {e}", path.display()))
    };
    let mut r = hound::WavReader::open(path).map_err(|e| err(&e))?;
    let spec = r.spec();
    let ch = usize::from(spec.channels.max(1));
    if spec.sample_rate % AUDIO_RATE != 0 {
        return Err(err(&format!(
            "sample rate {} Hz is not a multiple of 16000 Hz",
            spec.sample_rate
        )));
    }
    let step = (spec.sample_rate / AUDIO_RATE) as usize;
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|e| err(&e))?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(|e| err(&e))?
        }
    };
    Ok(interleaved
        .chunks_exact(ch)
        .step_by(step)
        .map(|c| c.iter().sum::<f32>() / ch as f32)
        .collect())
}

/// A WAV file played chunk by chunk (optionally looping).
#[derive(Debug, Clone)]
pub struct WavFile {
    samples: Vec<f32>,
    pos: usize,
    looping: bool,
    start_ns: Option<u64>,
}

impl WavFile {
    /// Open a WAV file.
    pub fn open(path: &Path, looping: bool) -> Result<Self, RegionError> {
        Ok(Self::from_samples(load_wav(path)?, looping))
    }
    /// Play samples already at 16 kHz.
    pub fn from_samples(samples: Vec<f32>, looping: bool) -> Self {
        Self {
            samples,
            pos: 0,
            looping,
            start_ns: None,
        }
    }
}

impl AudioSource for WavFile {
    fn read_chunk(&mut self, now_ns: u64, out: &mut [f32]) -> Option<u64> {
        let start = *self.start_ns.get_or_insert(now_ns);
        if self.samples.is_empty() {
            return None;
        }
        if self.pos + out.len() > self.samples.len() {
            if !self.looping {
                return None;
            }
            self.pos = 0;
            if out.len() > self.samples.len() {
                return None;
            }
        }
        out.copy_from_slice(&self.samples[self.pos..self.pos + out.len()]);
        let stamp = start + (self.pos as u64 * 1_000_000_000) / u64::from(AUDIO_RATE);
        self.pos += out.len();
        Some(stamp)
    }
}

/// A sample queue: a producer (microphone thread, simulator) pushes 16 kHz samples, the audition
/// region reads fixed-size chunks. Bounded: the oldest samples are dropped past `capacity`.
#[derive(Debug, Clone)]
pub struct SharedAudio {
    inner: Arc<Mutex<VecDeque<f32>>>,
    capacity: usize,
}

impl SharedAudio {
    /// A queue holding at most `capacity` samples.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(VecDeque::with_capacity(capacity))),
            capacity: capacity.max(1),
        }
    }
    /// Append samples.
    pub fn push(&self, samples: &[f32]) {
        if let Ok(mut q) = self.inner.lock() {
            q.extend(samples.iter().copied());
            while q.len() > self.capacity {
                q.pop_front();
            }
        }
    }
}

impl AudioSource for SharedAudio {
    fn read_chunk(&mut self, now_ns: u64, out: &mut [f32]) -> Option<u64> {
        let mut q = self.inner.lock().ok()?;
        if q.len() < out.len() {
            return None;
        }
        for o in out.iter_mut() {
            *o = q.pop_front().unwrap_or(0.0);
        }
        Some(now_ns)
    }
}

/// A source of the body's state (proprioception).
pub trait BodyStateSource: Send {
    /// The latest state, or `None` when none has arrived yet.
    fn latest(&mut self, now_ns: u64) -> Option<BodyState>;
}

/// A latest-value cell for the body state, written by whoever talks to the body.
#[derive(Debug, Clone, Default)]
pub struct SharedBodyState(Arc<Mutex<Option<BodyState>>>);

impl SharedBodyState {
    /// An empty cell.
    pub fn new() -> Self {
        Self::default()
    }
    /// Store the latest state.
    pub fn put(&self, s: BodyState) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(s);
        }
    }
}

impl BodyStateSource for SharedBodyState {
    fn latest(&mut self, _now_ns: u64) -> Option<BodyState> {
        self.0.lock().ok().and_then(|g| *g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_plays_in_chunks_and_stops_without_loop() {
        let mut w = WavFile::from_samples((0..1200).map(|i| i as f32).collect(), false);
        let mut buf = [0.0f32; 512];
        assert_eq!(w.read_chunk(0, &mut buf), Some(0));
        assert_eq!(buf[0], 0.0);
        assert_eq!(w.read_chunk(1, &mut buf), Some(32_000_000));
        assert_eq!(buf[0], 512.0);
        assert_eq!(w.read_chunk(2, &mut buf), None);
    }

    #[test]
    fn shared_audio_is_bounded_and_chunked() {
        let a = SharedAudio::new(1000);
        a.push(&[1.0; 800]);
        a.push(&[2.0; 800]);
        let mut src = a.clone();
        let mut buf = [0.0f32; 512];
        assert!(src.read_chunk(5, &mut buf).is_some());
        assert_eq!(buf[0], 1.0);
        assert_eq!(buf[511], 2.0);
        assert!(src.read_chunk(6, &mut buf).is_none());
    }

    struct FakeCamera {
        up: std::sync::Arc<std::sync::atomic::AtomicBool>,
        opens: u32,
    }

    impl Camera for FakeCamera {
        fn open(&mut self) -> Result<(), String> {
            self.opens += 1;
            if self.up.load(std::sync::atomic::Ordering::Relaxed) {
                Ok(())
            } else {
                Err("no such device".into())
            }
        }
        fn grab(&mut self) -> Result<Frame, String> {
            if self.up.load(std::sync::atomic::Ordering::Relaxed) {
                Ok(Frame {
                    width: 1,
                    height: 1,
                    stamp_ns: 0,
                    data: vec![1, 2, 3],
                })
            } else {
                Err("unplugged".into())
            }
        }
        fn name(&self) -> String {
            "fake".into()
        }
    }

    #[test]
    fn a_lost_camera_is_reopened_with_backoff() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let up = std::sync::Arc::new(AtomicBool::new(true));
        let cam = FakeCamera {
            up: up.clone(),
            opens: 0,
        };
        let ms = 1_000_000u64;
        let mut src = ReconnectingCamera::with_backoff(cam, 100 * ms, 400 * ms);
        assert!(src.latest(0).is_some());
        up.store(false, Ordering::Relaxed);
        assert!(src.latest(10 * ms).is_none());
        assert_eq!(src.disconnects, 1);
        // Retries at +100 ms, then +200, +400, +400 (capped); nothing in between.
        let mut attempts = vec![];
        for t in (11..=1200).map(|k| k * ms) {
            let before = src.failed_opens;
            assert!(src.latest(t).is_none());
            if src.failed_opens > before {
                attempts.push(t / ms);
            }
        }
        assert_eq!(attempts, vec![110, 310, 710, 1110]);
        up.store(true, Ordering::Relaxed);
        assert!(src.latest(1300 * ms).is_none(), "still backing off");
        assert!(src.latest(1510 * ms).is_some(), "reopened");
        assert!(src.is_open() && src.last_error.is_none());
    }

    #[test]
    fn bad_frame_is_rejected() {
        let f = Frame {
            width: 4,
            height: 4,
            stamp_ns: 0,
            data: vec![0; 10],
        };
        assert!(f.validate().is_err());
    }
}
