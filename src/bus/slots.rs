//! The in-process transport of embeddings into the integrator: one lock-free latest-value slot
//! per sensory region.
//!
//! Each slot is a triple buffer with storage preallocated at construction: a region's
//! [`SlotWriter::publish`] copies its embedding into the writer's back buffer and swaps it into
//! the middle with one atomic exchange; the tick swaps the middle into its front buffer when it
//! is fresh. Neither side ever waits for the other, and nothing allocates after construction.
//! Non-finite values and wrong dimensions are rejected at the writer and counted per region, so
//! they are never fused.

use crate::msg::{Embedding, RegionId};
use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

/// Longest embedding vector a slot holds.
pub const MAX_VECTOR: usize = 1536;
/// Most spatial values a slot holds (7 x 7 x 1536: the vision region's 1504 channels fit).
pub const MAX_SPATIAL: usize = 7 * 7 * 1536;

const FRESH: u8 = 0b100;
const INDEX: u8 = 0b011;

/// A borrowed embedding as a region publishes it (no allocation needed to publish).
#[derive(Debug, Clone, Copy)]
pub struct EmbeddingRef<'a> {
    /// Per-region sequence number.
    pub seq: u64,
    /// Capture time of the input, nanoseconds on the brain's clock.
    pub stamp_ns: u64,
    /// Identifier of the model that produced it.
    pub model_id: u32,
    /// The pooled / sentence / acoustic / body-state vector.
    pub vector: &'a [f32],
    /// Spatial grid `[rows, cols, channels]`, zeros when absent.
    pub grid: [u32; 3],
    /// Row-major spatial tokens (`rows * cols * channels` values).
    pub spatial: &'a [f32],
}

impl<'a> EmbeddingRef<'a> {
    /// Borrow a serialisable [`Embedding`].
    pub fn from_embedding(e: &'a Embedding, model_id: u32) -> Self {
        Self {
            seq: e.seq,
            stamp_ns: e.stamp_ns,
            model_id,
            vector: &e.vector,
            grid: e.grid,
            spatial: &e.spatial,
        }
    }
}

/// Why a publish was rejected (the embedding is dropped and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// A NaN or infinity in the vector or spatial tokens.
    #[error("non-finite value in embedding")]
    NonFinite,
    /// The vector length differs from the region's declared dimension.
    #[error("wrong dimension: expected {expected}, got {got}")]
    WrongDim {
        /// Declared (or first-published) dimension.
        expected: usize,
        /// Dimension received.
        got: usize,
    },
    /// Vector or spatial data longer than the slot's preallocated storage.
    #[error("too long: at most {max} values, got {got}")]
    TooLong {
        /// Capacity.
        max: usize,
        /// Length received.
        got: usize,
    },
    /// `grid` does not match the number of spatial values.
    #[error("spatial grid {grid:?} does not match {len} values")]
    BadGrid {
        /// Grid received.
        grid: [u32; 3],
        /// Spatial values received.
        len: usize,
    },
    /// Empty vector.
    #[error("empty embedding vector")]
    Empty,
}

struct SlotData {
    valid: bool,
    seq: u64,
    stamp_ns: u64,
    model_id: u32,
    vec_len: usize,
    vector: Box<[f32]>,
    grid: [u32; 3],
    spatial_len: usize,
    spatial: Box<[f32]>,
}

impl SlotData {
    fn new(spatial_cap: usize) -> Self {
        Self {
            valid: false,
            seq: 0,
            stamp_ns: 0,
            model_id: 0,
            vec_len: 0,
            vector: vec![0.0; MAX_VECTOR].into_boxed_slice(),
            grid: [0; 3],
            spatial_len: 0,
            spatial: vec![0.0; spatial_cap].into_boxed_slice(),
        }
    }
}

struct RegionSlot {
    bufs: [UnsafeCell<SlotData>; 3],
    /// Index of the middle buffer, with `FRESH` set when it holds data the reader has not seen.
    middle: AtomicU8,
    /// Index of the writer's back buffer (touched only by the one live writer).
    back: AtomicU8,
    expected_dim: AtomicUsize,
    spatial_cap: usize,
    published: AtomicU64,
    rejected: AtomicU64,
    writer_taken: AtomicBool,
}

// SAFETY: the triple-buffer protocol gives each buffer exactly one owner at a time: the back
// buffer belongs to the single live `SlotWriter` (enforced by `writer_taken` and `!Sync`), the
// front buffer to the single `SlotReader` (enforced by `reader_taken` and `&mut self`), and the
// middle buffer is handed over only through the atomic exchange on `middle` (AcqRel), which
// orders the writer's copies before the reader's reads.
unsafe impl Sync for RegionSlot {}

/// Per-region publish counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotStats {
    /// Embeddings accepted.
    pub published: u64,
    /// Embeddings rejected (non-finite, wrong dimension, too long, bad grid).
    pub rejected: u64,
}

/// One latest-value slot per [`RegionId`], preallocated.
pub struct InputSlots {
    regions: [RegionSlot; RegionId::COUNT],
    reader_taken: AtomicBool,
}

impl std::fmt::Debug for InputSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputSlots").finish_non_exhaustive()
    }
}

impl InputSlots {
    /// Slots for every region. `dims[i]` is region `i`'s declared vector length (0: fixed by
    /// its first accepted publish); vision gets spatial storage of [`MAX_SPATIAL`] values, the
    /// others [`MAX_VECTOR`].
    pub fn new(dims: [usize; RegionId::COUNT]) -> Arc<Self> {
        let slot = |i: usize| {
            let cap = if i == RegionId::Vision.index() {
                MAX_SPATIAL
            } else {
                MAX_VECTOR
            };
            RegionSlot {
                bufs: [
                    UnsafeCell::new(SlotData::new(cap)),
                    UnsafeCell::new(SlotData::new(cap)),
                    UnsafeCell::new(SlotData::new(cap)),
                ],
                middle: AtomicU8::new(1),
                back: AtomicU8::new(2),
                expected_dim: AtomicUsize::new(dims[i].min(MAX_VECTOR)),
                spatial_cap: cap,
                published: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                writer_taken: AtomicBool::new(false),
            }
        };
        Arc::new(Self {
            regions: [slot(0), slot(1), slot(2), slot(3)],
            reader_taken: AtomicBool::new(false),
        })
    }

    /// The writer for a region; `None` while another writer for it is alive.
    pub fn writer(self: &Arc<Self>, region: RegionId) -> Option<SlotWriter> {
        let slot = &self.regions[region.index()];
        if slot.writer_taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(SlotWriter {
            slots: Arc::clone(self),
            region,
            _not_sync: PhantomData,
        })
    }

    /// The single reader (taken by the integrator).
    pub(crate) fn reader(self: &Arc<Self>) -> Option<SlotReader> {
        if self.reader_taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(SlotReader {
            slots: Arc::clone(self),
            front: [0; RegionId::COUNT],
        })
    }

    /// Publish counters of a region.
    pub fn stats(&self, region: RegionId) -> SlotStats {
        let s = &self.regions[region.index()];
        SlotStats {
            published: s.published.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
        }
    }

    /// The vector dimension a region is held to (0 until its first accepted publish).
    pub fn dim(&self, region: RegionId) -> usize {
        self.regions[region.index()]
            .expected_dim
            .load(Ordering::Relaxed)
    }
}

/// The publishing end of one region's slot. Not `Sync`: one thread publishes at a time.
pub struct SlotWriter {
    slots: Arc<InputSlots>,
    region: RegionId,
    _not_sync: PhantomData<Cell<()>>,
}

impl std::fmt::Debug for SlotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotWriter")
            .field("region", &self.region)
            .finish()
    }
}

impl SlotWriter {
    /// Region this writer publishes for.
    pub fn region(&self) -> RegionId {
        self.region
    }

    /// Copy an embedding into the slot (non-blocking, allocation-free). Rejected embeddings are
    /// counted and never reach the integrator.
    pub fn publish(&self, e: &EmbeddingRef<'_>) -> Result<(), PublishError> {
        let slot = &self.slots.regions[self.region.index()];
        let r = Self::check(slot, e);
        if let Err(err) = r {
            slot.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(err);
        }
        let back = slot.back.load(Ordering::Relaxed) & INDEX;
        // SAFETY: the back buffer is owned by the single live writer (see `RegionSlot`).
        let d = unsafe { &mut *slot.bufs[back as usize].get() };
        d.valid = true;
        d.seq = e.seq;
        d.stamp_ns = e.stamp_ns;
        d.model_id = e.model_id;
        d.vec_len = e.vector.len();
        d.vector[..e.vector.len()].copy_from_slice(e.vector);
        d.grid = e.grid;
        d.spatial_len = e.spatial.len();
        d.spatial[..e.spatial.len()].copy_from_slice(e.spatial);
        let old = slot.middle.swap(back | FRESH, Ordering::AcqRel);
        slot.back.store(old & INDEX, Ordering::Relaxed);
        slot.published.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn check(slot: &RegionSlot, e: &EmbeddingRef<'_>) -> Result<(), PublishError> {
        let n = e.vector.len();
        if n == 0 {
            return Err(PublishError::Empty);
        }
        if n > MAX_VECTOR {
            return Err(PublishError::TooLong {
                max: MAX_VECTOR,
                got: n,
            });
        }
        if e.spatial.len() > slot.spatial_cap {
            return Err(PublishError::TooLong {
                max: slot.spatial_cap,
                got: e.spatial.len(),
            });
        }
        let g = e.grid.iter().map(|&x| x as usize).product::<usize>();
        if g != e.spatial.len() {
            return Err(PublishError::BadGrid {
                grid: e.grid,
                len: e.spatial.len(),
            });
        }
        if !e.vector.iter().all(|v| v.is_finite()) || !e.spatial.iter().all(|v| v.is_finite()) {
            return Err(PublishError::NonFinite);
        }
        let expected =
            match slot
                .expected_dim
                .compare_exchange(0, n, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => n,
                Err(d) => d,
            };
        if expected != n {
            return Err(PublishError::WrongDim { expected, got: n });
        }
        Ok(())
    }
}

impl Drop for SlotWriter {
    fn drop(&mut self) {
        self.slots.regions[self.region.index()]
            .writer_taken
            .store(false, Ordering::Release);
    }
}

/// What the tick sees of one region's latest embedding (borrowed from the front buffer).
#[derive(Debug, Clone, Copy)]
pub struct SlotView<'a> {
    /// Region.
    pub region: RegionId,
    /// Whether the region has ever published.
    pub valid: bool,
    /// Sequence number.
    pub seq: u64,
    /// Capture timestamp.
    pub stamp_ns: u64,
    /// Model identifier.
    pub model_id: u32,
    /// Embedding vector.
    pub vector: &'a [f32],
    /// Spatial grid.
    pub grid: [u32; 3],
    /// Spatial tokens.
    pub spatial: &'a [f32],
    /// Older than the region's staleness timeout (or never published).
    pub stale: bool,
}

/// The consuming end of all slots (owned by the integrator).
pub(crate) struct SlotReader {
    slots: Arc<InputSlots>,
    front: [u8; RegionId::COUNT],
}

impl SlotReader {
    /// Take the newest published buffer of a region if there is one; true if it changed.
    pub(crate) fn update(&mut self, region: RegionId) -> bool {
        let i = region.index();
        let slot = &self.slots.regions[i];
        if slot.middle.load(Ordering::Acquire) & FRESH == 0 {
            return false;
        }
        let old = slot.middle.swap(self.front[i], Ordering::AcqRel);
        self.front[i] = old & INDEX;
        true
    }

    /// View the front buffer of a region.
    pub(crate) fn view(&self, region: RegionId, stale: bool) -> SlotView<'_> {
        let i = region.index();
        // SAFETY: the front buffer is owned by the single reader; it only changes in `update`,
        // which needs `&mut self`, so no view outlives a swap.
        let d = unsafe { &*self.slots.regions[i].bufs[self.front[i] as usize].get() };
        SlotView {
            region,
            valid: d.valid,
            seq: d.seq,
            stamp_ns: d.stamp_ns,
            model_id: d.model_id,
            vector: &d.vector[..d.vec_len],
            grid: d.grid,
            spatial: &d.spatial[..d.spatial_len],
            stale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emb(seq: u64, v: &[f32]) -> EmbeddingRef<'_> {
        EmbeddingRef {
            seq,
            stamp_ns: seq * 10,
            model_id: 7,
            vector: v,
            grid: [0; 3],
            spatial: &[],
        }
    }

    #[test]
    fn latest_value_wins_and_bad_input_is_counted() {
        let slots = InputSlots::new([0; 4]);
        let w = slots.writer(RegionId::Audition).unwrap();
        assert!(slots.writer(RegionId::Audition).is_none());
        let mut r = slots.reader().unwrap();
        assert!(!r.update(RegionId::Audition));
        assert!(!r.view(RegionId::Audition, true).valid);
        w.publish(&emb(1, &[1.0, 2.0])).unwrap();
        w.publish(&emb(2, &[3.0, 4.0])).unwrap();
        assert_eq!(
            w.publish(&emb(3, &[f32::NAN, 0.0])),
            Err(PublishError::NonFinite)
        );
        assert_eq!(
            w.publish(&emb(4, &[1.0, 2.0, 3.0])),
            Err(PublishError::WrongDim {
                expected: 2,
                got: 3
            })
        );
        assert!(r.update(RegionId::Audition));
        let v = r.view(RegionId::Audition, false);
        assert_eq!((v.seq, v.vector), (2, &[3.0f32, 4.0][..]));
        assert!(!r.update(RegionId::Audition));
        assert_eq!(
            slots.stats(RegionId::Audition),
            SlotStats {
                published: 2,
                rejected: 2
            }
        );
        drop(w);
        assert!(slots.writer(RegionId::Audition).is_some());
    }

    #[test]
    fn concurrent_writer_never_tears() {
        let slots = InputSlots::new([64, 0, 0, 0]);
        let w = slots.writer(RegionId::Vision).unwrap();
        let mut r = slots.reader().unwrap();
        let t = std::thread::spawn(move || {
            let mut v = [0f32; 64];
            for s in 1..20_000u64 {
                v.iter_mut().for_each(|x| *x = s as f32);
                w.publish(&emb(s, &v)).unwrap();
            }
        });
        let mut last = 0;
        while !t.is_finished() || r.update(RegionId::Vision) {
            r.update(RegionId::Vision);
            let v = r.view(RegionId::Vision, false);
            if v.valid {
                assert!(v.vector.iter().all(|&x| x == v.seq as f32));
                assert!(v.seq >= last);
                last = v.seq;
            }
        }
        t.join().unwrap();
    }
}
