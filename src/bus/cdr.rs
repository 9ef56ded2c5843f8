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
    /// A sequence or string longer than the caller's limit (checked before anything is
    /// allocated for it).
    #[error("CDR sequence of {len} elements is longer than {max}")]
    TooLong {
        /// Length prefix read.
        len: usize,
        /// The caller's limit.
        max: usize,
    },
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
    /// A writer into a reused buffer: `buf` is cleared (its capacity kept) and the
    /// encapsulation header written; [`Writer::finish`] hands it back. With a buffer that already
    /// has the capacity, encoding allocates nothing:
    /// `let mut w = Writer::with_buffer(std::mem::take(out)); ...; *out = w.finish();`
    pub fn with_buffer(mut buf: Vec<u8>) -> Self {
        buf.clear();
        buf.extend_from_slice(&HEADER_LE);
        Self { buf }
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
    /// Write a `u8` (`uint8`, `byte`, `char`).
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// Write a `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.align(2);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Write an `i32`.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Write a `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Write the length prefix of a sequence (`T[]`) of `n` elements; the caller then writes
    /// the elements (nested structs field by field: XCDR1 aligns each primitive, not the struct).
    pub fn seq_len(&mut self, n: usize) -> &mut Self {
        self.u32(n as u32)
    }
    /// Write a `float32[]` (length prefix, then the values in one pass).
    pub fn f32_seq(&mut self, v: &[f32]) -> &mut Self {
        self.seq_len(v.len());
        let start = self.buf.len();
        self.buf.resize(start + 4 * v.len(), 0);
        for (dst, x) in self.buf[start..].chunks_exact_mut(4).zip(v) {
            dst.copy_from_slice(&x.to_le_bytes());
        }
        self
    }
    /// Write a `uint8[]` (length prefix, then the bytes).
    pub fn u8_seq(&mut self, v: &[u8]) -> &mut Self {
        self.seq_len(v.len());
        self.buf.extend_from_slice(v);
        self
    }
    /// Write a `uint32[]` (length prefix, then the values in one pass).
    pub fn u32_seq(&mut self, v: &[u32]) -> &mut Self {
        self.seq_len(v.len());
        let start = self.buf.len();
        self.buf.resize(start + 4 * v.len(), 0);
        for (dst, x) in self.buf[start..].chunks_exact_mut(4).zip(v) {
            dst.copy_from_slice(&x.to_le_bytes());
        }
        self
    }
    /// Bytes written so far, the encapsulation header included.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// Whether nothing but the encapsulation header has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.len() <= HEADER_LE.len()
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
    /// Read a `u8`.
    pub fn u8(&mut self) -> Result<u8, CdrError> {
        Ok(self.take(1, 1)?[0])
    }
    /// Read a `u16`.
    pub fn u16(&mut self) -> Result<u16, CdrError> {
        let b = self.take(2, 2)?;
        Ok(u16::from_le_bytes(
            b.try_into().map_err(|_| CdrError::Truncated)?,
        ))
    }
    /// Read an `i32`.
    pub fn i32(&mut self) -> Result<i32, CdrError> {
        let b = self.take(4, 4)?;
        Ok(i32::from_le_bytes(
            b.try_into().map_err(|_| CdrError::Truncated)?,
        ))
    }
    /// Read a `u64`.
    pub fn u64(&mut self) -> Result<u64, CdrError> {
        let b = self.take(8, 8)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| CdrError::Truncated)?,
        ))
    }
    /// Bytes left after the read position.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    /// Read the length prefix of a sequence whose elements take at least `min_elem_bytes` each
    /// (at least 1 is assumed): more than `max` elements is [`CdrError::TooLong`], more than the
    /// remaining bytes could hold is [`CdrError::Truncated`], both before anything is allocated.
    pub fn seq_len(&mut self, min_elem_bytes: usize, max: usize) -> Result<usize, CdrError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(CdrError::TooLong { len: n, max });
        }
        if n.checked_mul(min_elem_bytes.max(1))
            .is_none_or(|b| b > self.remaining())
        {
            return Err(CdrError::Truncated);
        }
        Ok(n)
    }
    /// Read a `float32[]` of at most `max` values into `out` (cleared first; its capacity is
    /// reused, and grows only to what the buffer holds).
    pub fn f32_seq_into(&mut self, out: &mut Vec<f32>, max: usize) -> Result<(), CdrError> {
        let n = self.seq_len(4, max)?;
        let b = self.take(4, 4 * n)?;
        out.clear();
        out.extend(
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        Ok(())
    }
    /// Read a `uint8[]` of at most `max` bytes into `out` (cleared first, capacity reused).
    pub fn u8_seq_into(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), CdrError> {
        let n = self.seq_len(1, max)?;
        let b = self.take(1, n)?;
        out.clear();
        out.extend_from_slice(b);
        Ok(())
    }
    /// Read a `uint32[]` of at most `max` values into `out` (cleared first, capacity reused).
    pub fn u32_seq_into(&mut self, out: &mut Vec<u32>, max: usize) -> Result<(), CdrError> {
        let n = self.seq_len(4, max)?;
        let b = self.take(4, 4 * n)?;
        out.clear();
        out.extend(
            b.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        Ok(())
    }
    /// Read a string of at most `max` bytes (without its NUL) into `out` (cleared first,
    /// capacity reused).
    pub fn string_into(&mut self, out: &mut String, max: usize) -> Result<(), CdrError> {
        let n = self.u32()? as usize;
        if n == 0 {
            return Err(CdrError::BadString);
        }
        if n - 1 > max {
            return Err(CdrError::TooLong { len: n - 1, max });
        }
        let b = self.take(1, n)?;
        let (text, nul) = b.split_at(n - 1);
        if nul != [0] {
            return Err(CdrError::BadString);
        }
        let text = std::str::from_utf8(text).map_err(|_| CdrError::BadString)?;
        out.clear();
        out.push_str(text);
        Ok(())
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
    fn primitives_align_to_their_size_and_read_back() {
        let mut w = Writer::new();
        w.u8(7).u16(0x1234).u8(1).i32(-5).u8(2).u64(u64::MAX - 1);
        w.f32_seq(&[1.5, -2.0]).u32_seq(&[]).string("ok");
        let b = w.finish();
        // u8 @0, pad, u16 @2, u8 @4, pad, i32 @8, u8 @12, pad to 16, u64 @16, f32[] @24.
        assert_eq!(&b[4..8], &[7, 0, 0x34, 0x12]);
        assert_eq!(&b[12..16], &(-5i32).to_le_bytes());
        assert_eq!(&b[20..28], &(u64::MAX - 1).to_le_bytes());
        let mut r = Reader::new(&b).unwrap();
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.u16(), Ok(0x1234));
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.i32(), Ok(-5));
        assert_eq!(r.u8(), Ok(2));
        assert_eq!(r.u64(), Ok(u64::MAX - 1));
        let mut f = vec![9.0; 8];
        r.f32_seq_into(&mut f, 2).unwrap();
        assert_eq!(f, [1.5, -2.0]);
        let mut u = vec![3];
        r.u32_seq_into(&mut u, 0).unwrap();
        assert!(u.is_empty());
        let mut s = String::from("old");
        r.string_into(&mut s, 2).unwrap();
        assert_eq!(s, "ok");
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn sequence_limits_are_checked_before_allocating() {
        let mut w = Writer::new();
        w.f32_seq(&[1.0, 2.0, 3.0]).string("abc");
        let b = w.finish();
        let mut out = Vec::new();
        assert_eq!(
            Reader::new(&b).unwrap().f32_seq_into(&mut out, 2),
            Err(CdrError::TooLong { len: 3, max: 2 })
        );
        // A prefix claiming more than the buffer holds.
        let mut w = Writer::new();
        w.u32(1_000_000);
        let b = w.finish();
        assert_eq!(
            Reader::new(&b).unwrap().f32_seq_into(&mut out, usize::MAX),
            Err(CdrError::Truncated)
        );
        assert_eq!(out.capacity(), 0);
        assert_eq!(
            Reader::new(&b).unwrap().seq_len(1, usize::MAX),
            Err(CdrError::Truncated)
        );
        let mut w = Writer::new();
        w.string("abcd");
        let b = w.finish();
        let mut s = String::new();
        assert_eq!(
            Reader::new(&b).unwrap().string_into(&mut s, 3),
            Err(CdrError::TooLong { len: 4, max: 3 })
        );
    }

    #[test]
    fn a_reused_buffer_keeps_its_capacity() {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(b"stale bytes");
        let cap = buf.capacity();
        let mut w = Writer::with_buffer(buf);
        assert!(w.is_empty());
        w.f64(1.0);
        assert_eq!(w.len(), 12);
        let buf = w.finish();
        assert_eq!(buf.capacity(), cap);
        let mut fresh = Writer::new();
        fresh.f64(1.0);
        assert_eq!(buf, fresh.finish());
    }

    #[test]
    fn twist_is_52_bytes() {
        assert_eq!(Twist::ZERO.to_cdr().len(), 52);
    }
}
