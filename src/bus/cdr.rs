//! ROS 2 wire encoding (OMG CDR, little-endian, XCDR1 as used by rmw_cyclonedds, rmw_fastrtps
//! and rmw_zenoh) for the few standard messages the brain exchanges with ROS 2 tools:
//! `geometry_msgs/msg/Twist`, `std_msgs/msg/String`, `std_msgs/msg/Bool`, `std_msgs/msg/Float32`.
//!
//! Pure and allocation-light; checked byte for byte against an independent encoder (PyPI
//! `rosbags`, see `scripts/ros2/gen_cdr_fixtures.py`).

use crate::msg::Twist;

/// Encapsulation header: CDR little-endian, no options.
pub const HEADER_LE: [u8; 4] = [0x00, 0x01, 0x00, 0x00];

/// Errors decoding CDR bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CdrError {
    /// The buffer ended early.
    #[error("CDR buffer too short")]
    Truncated,
    /// Unsupported encapsulation (only little-endian plain CDR is accepted).
    #[error("unsupported CDR encapsulation {0:02x?}")]
    Encapsulation([u8; 2]),
    /// A string was not valid UTF-8 or not NUL-terminated.
    #[error("invalid CDR string")]
    BadString,
}

/// CDR writer; alignment is relative to the end of the encapsulation header.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A writer with the encapsulation header already written.
    pub fn new() -> Self {
        Self {
            buf: HEADER_LE.to_vec(),
        }
    }
    fn align(&mut self, n: usize) {
        while (self.buf.len() - 4) % n != 0 {
            self.buf.push(0);
        }
    }
    /// Write an `f64`.
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Write an `f32`.
    pub fn f32(&mut self, v: f32) -> &mut Self {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Write a `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Write a `bool`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(v as u8);
        self
    }
    /// Write a string (length including the NUL terminator, bytes, NUL).
    pub fn string(&mut self, s: &str) -> &mut Self {
        self.u32(s.len() as u32 + 1);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        self
    }
    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// CDR reader over a complete serialized message.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Check the encapsulation header and start reading.
    pub fn new(buf: &'a [u8]) -> Result<Self, CdrError> {
        if buf.len() < 4 {
            return Err(CdrError::Truncated);
        }
        if buf[0..2] != HEADER_LE[0..2] {
            return Err(CdrError::Encapsulation([buf[0], buf[1]]));
        }
        Ok(Self { buf, pos: 4 })
    }
    fn take(&mut self, align: usize, n: usize) -> Result<&'a [u8], CdrError> {
        while (self.pos - 4) % align != 0 {
            self.pos += 1;
        }
        let end = self.pos.checked_add(n).ok_or(CdrError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(CdrError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    /// Read an `f64`.
    pub fn f64(&mut self) -> Result<f64, CdrError> {
        let b = self.take(8, 8)?;
        Ok(f64::from_le_bytes(
            b.try_into().map_err(|_| CdrError::Truncated)?,
        ))
    }
    /// Read an `f32`.
    pub fn f32(&mut self) -> Result<f32, CdrError> {
        let b = self.take(4, 4)?;
        Ok(f32::from_le_bytes(
            b.try_into().map_err(|_| CdrError::Truncated)?,
        ))
    }
    /// Read a `u32`.
    pub fn u32(&mut self) -> Result<u32, CdrError> {
        let b = self.take(4, 4)?;
        Ok(u32::from_le_bytes(
            b.try_into().map_err(|_| CdrError::Truncated)?,
        ))
    }
    /// Read a `bool`.
    pub fn bool(&mut self) -> Result<bool, CdrError> {
        Ok(self.take(1, 1)?[0] != 0)
    }
    /// Read a string.
    pub fn string(&mut self) -> Result<String, CdrError> {
        let n = self.u32()? as usize;
        if n == 0 {
            return Err(CdrError::BadString);
        }
        let b = self.take(1, n)?;
        let (text, nul) = b.split_at(n - 1);
        if nul != [0] {
            return Err(CdrError::BadString);
        }
        String::from_utf8(text.to_vec()).map_err(|_| CdrError::BadString)
    }
}

/// A message with a ROS 2 type name and a CDR encoding.
pub trait RosMessage: Sized {
    /// ROS 2 type name, e.g. `geometry_msgs/msg/Twist`.
    const TYPE_NAME: &'static str;
    /// DDS type name, e.g. `geometry_msgs::msg::dds_::Twist_`.
    const DDS_TYPE_NAME: &'static str;
    /// Serialize to CDR (with encapsulation header).
    fn to_cdr(&self) -> Vec<u8>;
    /// Deserialize from CDR.
    fn from_cdr(bytes: &[u8]) -> Result<Self, CdrError>;
}

impl RosMessage for Twist {
    const TYPE_NAME: &'static str = "geometry_msgs/msg/Twist";
    const DDS_TYPE_NAME: &'static str = "geometry_msgs::msg::dds_::Twist_";
    /// Planar twist: linear.x and angular.z; the other components are 0.
    fn to_cdr(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.f64(self.linear).f64(0.0).f64(0.0);
        w.f64(0.0).f64(0.0).f64(self.angular);
        w.finish()
    }
    fn from_cdr(bytes: &[u8]) -> Result<Self, CdrError> {
        let mut r = Reader::new(bytes)?;
        let lin = [r.f64()?, r.f64()?, r.f64()?];
        let ang = [r.f64()?, r.f64()?, r.f64()?];
        Ok(Twist {
            linear: lin[0],
            angular: ang[2],
        })
    }
}

/// `std_msgs/msg/String`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RosString(pub String);

impl RosMessage for RosString {
    const TYPE_NAME: &'static str = "std_msgs/msg/String";
    const DDS_TYPE_NAME: &'static str = "std_msgs::msg::dds_::String_";
    fn to_cdr(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.string(&self.0);
        w.finish()
    }
    fn from_cdr(bytes: &[u8]) -> Result<Self, CdrError> {
        Ok(RosString(Reader::new(bytes)?.string()?))
    }
}

/// `std_msgs/msg/Bool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RosBool(pub bool);

impl RosMessage for RosBool {
    const TYPE_NAME: &'static str = "std_msgs/msg/Bool";
    const DDS_TYPE_NAME: &'static str = "std_msgs::msg::dds_::Bool_";
    fn to_cdr(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bool(self.0);
        w.finish()
    }
    fn from_cdr(bytes: &[u8]) -> Result<Self, CdrError> {
        Ok(RosBool(Reader::new(bytes)?.bool()?))
    }
}

/// `std_msgs/msg/Float32`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RosFloat32(pub f32);

impl RosMessage for RosFloat32 {
    const TYPE_NAME: &'static str = "std_msgs/msg/Float32";
    const DDS_TYPE_NAME: &'static str = "std_msgs::msg::dds_::Float32_";
    fn to_cdr(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.f32(self.0);
        w.finish()
    }
    fn from_cdr(bytes: &[u8]) -> Result<Self, CdrError> {
        Ok(RosFloat32(Reader::new(bytes)?.f32()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Twist::from_cdr(&bytes);
            let _ = RosString::from_cdr(&bytes);
            let _ = RosBool::from_cdr(&bytes);
            let _ = RosFloat32::from_cdr(&bytes);
        }

        #[test]
        fn string_round_trip(s in ".{0,40}") {
            let m = RosString(s);
            prop_assert_eq!(RosString::from_cdr(&m.to_cdr()).unwrap(), m);
        }
    }

    #[test]
    fn twist_is_52_bytes() {
        assert_eq!(Twist::ZERO.to_cdr().len(), 52);
    }
}
