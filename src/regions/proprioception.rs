//! The proprioception region: the body's own state (wheel speeds, odometry, IMU, battery, faults
//! and the range rays) as a small fixed-layout embedding. No model: the features are scaled so
//! that each is of order one.
//!
//! Layout ([`PROPRIO_DIM`] values): wheel speeds left/right over the maximum wheel speed;
//! odometry deltas since the previous step (forward metres, yaw radians) from the encoder ticks;
//! gyro z / 4 rad/s; accel x, y / 9.81; battery volts / 12; fault flag; e-stop flag; the valid
//! range rays over the sensor's maximum range (missing rays read 1.0); the fraction of valid rays.

use super::sources::BodyStateSource;
use super::{EmbeddingRef, Region, RegionCore, RegionError, ShedLevel};
use crate::body::RobotParams;
use crate::config::RegionConfig;
use crate::msg::{BodyState, RegionId, RANGE_RAYS_MAX};

/// Embedding width.
pub const PROPRIO_DIM: usize = 11 + RANGE_RAYS_MAX;

/// Compute the embedding of `s` given the previous state (for odometry deltas).
pub fn features(p: &RobotParams, prev: Option<&BodyState>, s: &BodyState, out: &mut [f32]) {
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let maxw = if p.max_wheel_speed > 0.0 {
        p.max_wheel_speed
    } else {
        1.0
    };
    out.iter_mut().for_each(|v| *v = 0.0);
    out[0] = finite(s.wheel_speed[0] / maxw) as f32;
    out[1] = finite(s.wheel_speed[1] / maxw) as f32;
    if let Some(prev) = prev {
        let per_tick =
            2.0 * std::f64::consts::PI * p.wheel_radius / f64::from(p.ticks_per_rev.max(1));
        let dl = s.encoder_ticks[0].wrapping_sub(prev.encoder_ticks[0]) as f64 * per_tick;
        let dr = s.encoder_ticks[1].wrapping_sub(prev.encoder_ticks[1]) as f64 * per_tick;
        out[2] = finite((dl + dr) / 2.0) as f32;
        out[3] = finite((dr - dl) / p.wheel_separation) as f32;
    }
    out[4] = finite(s.gyro_z / 4.0) as f32;
    out[5] = finite(s.accel[0] / 9.81) as f32;
    out[6] = finite(s.accel[1] / 9.81) as f32;
    out[7] = finite(s.battery_v / 12.0) as f32;
    out[8] = f32::from(u8::from(s.faults != 0));
    out[9] = f32::from(u8::from(s.estop));
    let n = usize::from(s.range_count).min(RANGE_RAYS_MAX);
    let rmax = if p.range_max > 0.0 { p.range_max } else { 1.0 };
    for i in 0..RANGE_RAYS_MAX {
        out[10 + i] = if i < n {
            finite(f64::from(s.range[i]) / rmax).clamp(0.0, 1.0) as f32
        } else {
            1.0
        };
    }
    out[10 + RANGE_RAYS_MAX] = n as f32 / RANGE_RAYS_MAX as f32;
}

/// The proprioception region.
pub struct ProprioceptionRegion {
    core: RegionCore,
    params: RobotParams,
    source: Box<dyn BodyStateSource>,
    prev: Option<BodyState>,
    vector: Vec<f32>,
}

impl ProprioceptionRegion {
    /// Build from the `[regions.proprioception]` config section, reading the body from `source`.
    pub fn new(
        cfg: &RegionConfig,
        params: RobotParams,
        source: Box<dyn BodyStateSource>,
        shed: ShedLevel,
    ) -> Result<Self, RegionError> {
        Ok(Self {
            core: RegionCore::new(RegionId::Proprioception, cfg, 0, shed),
            params,
            source,
            prev: None,
            vector: vec![0.0; PROPRIO_DIM],
        })
    }
}

impl Region for ProprioceptionRegion {
    fn core(&self) -> &RegionCore {
        &self.core
    }
    fn step(&mut self, now_ns: u64) -> Result<Option<EmbeddingRef<'_>>, RegionError> {
        // A state with the stamp of the previous one is nothing new from the body: publishing
        // it again would hide its staleness.
        let fresh = |s: &BodyState| self.prev.is_none_or(|p| p.stamp_ns != s.stamp_ns);
        let Some(s) = self.core.input(|| self.source.latest(now_ns).filter(fresh)) else {
            return Ok(None);
        };
        self.core.timed(|| {
            features(&self.params, self.prev.as_ref(), &s, &mut self.vector);
            Ok(())
        })?;
        self.prev = Some(s);
        Ok(Some(self.core.vector(s.stamp_ns, &self.vector)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::sources::SharedBodyState;
    use super::*;

    #[test]
    fn odometry_and_ranges_are_scaled_and_stale_state_not_republished() {
        let p = RobotParams::load_default();
        let cell = SharedBodyState::new();
        let mut r = ProprioceptionRegion::new(
            &RegionConfig::default(),
            p.clone(),
            Box::new(cell.clone()),
            ShedLevel::new(),
        )
        .unwrap();
        assert!(r.step(0).unwrap().is_none());
        let mut s = BodyState {
            stamp_ns: 1,
            battery_v: 12.0,
            range_count: 2,
            ..Default::default()
        };
        s.range[0] = p.range_max as f32 / 2.0;
        s.range[1] = f32::NAN;
        cell.put(s);
        let v = r.step(1).unwrap().unwrap().vector.to_vec();
        assert_eq!(v.len(), PROPRIO_DIM);
        assert!((v[7] - 1.0).abs() < 1e-6);
        assert!((v[10] - 0.5).abs() < 1e-6);
        assert_eq!(v[11], 0.0); // NaN ray -> 0, never NaN
        assert_eq!(v[12], 1.0); // missing ray
        assert!(r.step(2).unwrap().is_none()); // same stamp: nothing new
        s.stamp_ns = 2;
        s.encoder_ticks = [i64::from(p.ticks_per_rev); 2];
        cell.put(s);
        let v = r.step(3).unwrap().unwrap().vector.to_vec();
        let circ = 2.0 * std::f64::consts::PI * p.wheel_radius;
        assert!((f64::from(v[2]) - circ).abs() < 1e-5);
        assert!(v[3].abs() < 1e-6);
        assert!(v.iter().all(|x| x.is_finite()));
    }
}
