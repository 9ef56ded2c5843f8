//! A live camera (or a video file) through OpenCV's `VideoCapture` (cargo feature `camera`,
//! Debian `libopencv-dev`). It implements the [`Camera`] seam, so [`ReconnectingCamera`] reopens
//! it with backoff when the device disappears, and the vision region reads it like any other
//! [`FrameSource`](super::sources::FrameSource).
//!
//! [`ReconnectingCamera`]: super::sources::ReconnectingCamera

use super::sources::{Camera, Frame};
use opencv::core::Mat;
use opencv::prelude::*;
use opencv::{imgproc, videoio};

/// Where the frames come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraSpec {
    /// A V4L2 device index (`/dev/video<N>`).
    Index(i32),
    /// A device path, a video file or a stream URL.
    Path(String),
}

impl CameraSpec {
    /// `0` or `/dev/video0` style device, or a path to a video file.
    pub fn parse(s: &str) -> Self {
        match s.parse::<i32>() {
            Ok(i) => CameraSpec::Index(i),
            Err(_) => CameraSpec::Path(s.to_string()),
        }
    }
}

/// An OpenCV `VideoCapture`, converted to RGB8 frames.
pub struct OpenCvCamera {
    spec: CameraSpec,
    cap: Option<videoio::VideoCapture>,
    bgr: Mat,
    rgb: Mat,
}

impl OpenCvCamera {
    /// A camera that opens on first use.
    pub fn new(spec: CameraSpec) -> Self {
        Self {
            spec,
            cap: None,
            bgr: Mat::default(),
            rgb: Mat::default(),
        }
    }
}

impl Camera for OpenCvCamera {
    fn open(&mut self) -> Result<(), String> {
        let cap = match &self.spec {
            CameraSpec::Index(i) => videoio::VideoCapture::new(*i, videoio::CAP_ANY),
            CameraSpec::Path(p) => videoio::VideoCapture::from_file(p, videoio::CAP_ANY),
        }
        .map_err(|e| format!("cannot open camera {}: {e}", self.name()))?;
        if !cap.is_opened().map_err(|e| e.to_string())? {
            return Err(format!("cannot open camera {}", self.name()));
        }
        self.cap = Some(cap);
        Ok(())
    }

    fn grab(&mut self) -> Result<Frame, String> {
        let cap = self.cap.as_mut().ok_or("camera not open")?;
        if !cap.read(&mut self.bgr).map_err(|e| e.to_string())? || self.bgr.empty() {
            self.cap = None;
            return Err("no frame (device gone or end of video)".into());
        }
        imgproc::cvt_color(&self.bgr, &mut self.rgb, imgproc::COLOR_BGR2RGB, 0)
            .map_err(|e| e.to_string())?;
        let (width, height) = (self.rgb.cols() as u32, self.rgb.rows() as u32);
        let data = self.rgb.data_bytes().map_err(|e| e.to_string())?.to_vec();
        let frame = Frame {
            width,
            height,
            stamp_ns: 0,
            data,
        };
        frame.validate().map_err(|e| e.to_string())?;
        Ok(frame)
    }

    fn name(&self) -> String {
        match &self.spec {
            CameraSpec::Index(i) => format!("/dev/video{i}"),
            CameraSpec::Path(p) => p.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::sources::{FrameSource, ReconnectingCamera};

    /// A video file written by OpenCV itself plays back through the camera seam as RGB.
    #[test]
    fn video_file_plays_as_rgb_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.avi");
        let p = path.to_string_lossy().to_string();
        let fourcc = videoio::VideoWriter::fourcc('M', 'J', 'P', 'G').unwrap();
        let size = opencv::core::Size::new(64, 48);
        let mut w = videoio::VideoWriter::new(&p, fourcc, 10.0, size, true).unwrap();
        // Pure red in BGR order.
        let red = Mat::new_rows_cols_with_default(
            48,
            64,
            opencv::core::CV_8UC3,
            opencv::core::Scalar::new(0.0, 0.0, 255.0, 0.0),
        )
        .unwrap();
        for _ in 0..5 {
            w.write(&red).unwrap();
        }
        drop(w);
        let mut src = ReconnectingCamera::new(OpenCvCamera::new(CameraSpec::parse(&p)));
        let f = src.latest(1).expect("a frame");
        assert_eq!((f.width, f.height), (64, 48));
        let (r, g, b) = (f.data[0], f.data[1], f.data[2]);
        assert!(r > 200 && g < 60 && b < 60, "not red in RGB: {r} {g} {b}");
    }

    #[test]
    fn missing_device_is_retried_not_fatal() {
        let mut src = ReconnectingCamera::with_backoff(
            OpenCvCamera::new(CameraSpec::Path("/nonexistent/video.avi".into())),
            1_000,
            10_000,
        );
        assert!(src.latest(0).is_none());
        assert!(src.latest(10).is_none());
        assert!(src.failed_opens >= 1);
    }
}
