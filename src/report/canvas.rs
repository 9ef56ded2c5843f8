//! A tiny RGB raster for the run report's plots: lines, rectangles, discs and 8x8 bitmap text,
//! written out as PNG. Enough for a top-down map and two time series, with no font files and
//! no plotting framework.

use std::path::Path;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// An RGB8 image being drawn on.
#[derive(Debug, Clone)]
pub struct Canvas {
    /// Width, px.
    pub width: u32,
    /// Height, px.
    pub height: u32,
    /// Pixels, rows top to bottom.
    pub data: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `bg`.
    pub fn new(width: u32, height: u32, bg: Rgb) -> Self {
        let mut data = Vec::with_capacity((width * height * 3) as usize);
        for _ in 0..width * height {
            data.extend_from_slice(&bg);
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// Set one pixel (ignored outside).
    pub fn put(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as u32) < self.width && (y as u32) < self.height {
            let i = ((y as u32 * self.width + x as u32) * 3) as usize;
            self.data[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Filled axis-aligned rectangle between two corners.
    pub fn rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, c: Rgb) {
        let (xa, xb) = (x0.min(x1).round() as i64, x0.max(x1).round() as i64);
        let (ya, yb) = (y0.min(y1).round() as i64, y0.max(y1).round() as i64);
        for y in ya..=yb {
            for x in xa..=xb {
                self.put(x, y, c);
            }
        }
    }

    /// Filled disc.
    pub fn disc(&mut self, cx: f64, cy: f64, r: f64, c: Rgb) {
        let r2 = r * r;
        for y in (cy - r).floor() as i64..=(cy + r).ceil() as i64 {
            for x in (cx - r).floor() as i64..=(cx + r).ceil() as i64 {
                let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                if dx * dx + dy * dy <= r2 {
                    self.put(x, y, c);
                }
            }
        }
    }

    /// Line of width `w` px.
    pub fn line(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, w: f64, c: Rgb) {
        let len = (x1 - x0).hypot(y1 - y0);
        let n = (len.ceil() as usize).max(1);
        for i in 0..=n {
            let t = i as f64 / n as f64;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            if w <= 1.0 {
                self.put(x.round() as i64, y.round() as i64, c);
            } else {
                self.disc(x, y, w / 2.0, c);
            }
        }
    }

    /// Text in the 8x8 bitmap font, scaled by `scale`, top-left at (x, y).
    pub fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, c: Rgb) {
        let mut cx = x;
        for ch in s.chars() {
            let glyph = font8x8::legacy::BASIC_LEGACY
                .get(ch as usize)
                .copied()
                .unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.put(cx + col * scale + dx, y + row as i64 * scale + dy, c);
                            }
                        }
                    }
                }
            }
            cx += 8 * scale;
        }
    }

    /// Write as PNG.
    pub fn save_png(&self, path: &Path) -> Result<(), image::ImageError> {
        save_rgb_png(path, self.width, self.height, &self.data)
    }
}

/// Write RGB8 pixels as a PNG file.
pub fn save_rgb_png(path: &Path, w: u32, h: u32, rgb: &[u8]) -> Result<(), image::ImageError> {
    image::save_buffer(path, rgb, w, h, image::ExtendedColorType::Rgb8)
}

/// Encode RGB8 pixels as PNG bytes.
pub fn encode_png(w: u32, h: u32, rgb: &[u8]) -> Result<Vec<u8>, image::ImageError> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(
        rgb,
        w,
        h,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

/// Maps data coordinates to a plot rectangle on a canvas.
#[derive(Debug, Clone, Copy)]
pub struct Axes {
    /// Plot rectangle left, px.
    pub left: f64,
    /// Plot rectangle top, px.
    pub top: f64,
    /// Plot rectangle width, px.
    pub width: f64,
    /// Plot rectangle height, px.
    pub height: f64,
    /// Data x range.
    pub x: (f64, f64),
    /// Data y range.
    pub y: (f64, f64),
}

impl Axes {
    /// Pixel position of a data point (y up).
    pub fn map(&self, x: f64, y: f64) -> (f64, f64) {
        let fx = (x - self.x.0) / (self.x.1 - self.x.0).max(1e-12);
        let fy = (y - self.y.0) / (self.y.1 - self.y.0).max(1e-12);
        (
            self.left + fx * self.width,
            self.top + (1.0 - fy) * self.height,
        )
    }

    /// Frame, min/max tick labels and a title.
    pub fn frame(&self, c: &mut Canvas, title: &str, xlabel: &str, ylabel: &str) {
        let ink = [40, 40, 40];
        let (l, t, r, b) = (
            self.left,
            self.top,
            self.left + self.width,
            self.top + self.height,
        );
        c.line(l, t, r, t, 1.0, ink);
        c.line(l, b, r, b, 1.0, ink);
        c.line(l, t, l, b, 1.0, ink);
        c.line(r, t, r, b, 1.0, ink);
        c.text(l as i64, t as i64 - 14, title, 1, ink);
        c.text(l as i64, b as i64 + 4, &fmt_num(self.x.0), 1, ink);
        let xs = fmt_num(self.x.1);
        c.text(r as i64 - 8 * xs.len() as i64, b as i64 + 4, &xs, 1, ink);
        c.text(
            (l + r) as i64 / 2 - 4 * xlabel.len() as i64,
            b as i64 + 4,
            xlabel,
            1,
            ink,
        );
        let y1 = fmt_num(self.y.1);
        let y0 = fmt_num(self.y.0);
        c.text(l as i64 - 8 * y1.len() as i64 - 3, t as i64, &y1, 1, ink);
        c.text(
            l as i64 - 8 * y0.len() as i64 - 3,
            b as i64 - 8,
            &y0,
            1,
            ink,
        );
        c.text(
            r as i64 - 8 * ylabel.len() as i64 - 4,
            t as i64 + 4,
            ylabel,
            1,
            ink,
        );
    }
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
