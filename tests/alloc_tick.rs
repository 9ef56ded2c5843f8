//! The integrator tick allocates nothing: a counting global allocator watches 10,000 ticks after
//! warm-up, with every region publishing, teleop taking over and letting go, working memory
//! filling up, sleeps consolidating it and refitting the forward model.

use brainloop::body::{RobotParams, SimulatedBody};
use brainloop::config::Config;
use brainloop::integrator::{EmbeddingRef, Integrator};
use brainloop::msg::{RegionId, TeleopCommand, Twist};
use brainloop::sim::kinematic::KinematicBody;
use brainloop::teleop::TeleopInput;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts allocations made by threads that opted in (so the test harness's own threads do not
/// disturb the count).
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if WATCHED.with(|w| w.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if WATCHED.with(|w| w.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if WATCHED.with(|w| w.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn tick_does_not_allocate_over_10000_ticks() {
    let mut cfg = Config::default();
    cfg.integrator.rate_hz = 100.0;
    cfg.integrator.context_capacity = 1024;
    cfg.integrator.width = 64;
    let params = RobotParams::load_default();
    let mut integ = Integrator::new(&cfg, &params).unwrap();
    let teleop = TeleopInput::new();
    integ.set_teleop(teleop.clone());
    let slots = integ.slots();
    let writers: Vec<_> = RegionId::ALL
        .iter()
        .map(|&r| slots.writer(r).unwrap())
        .collect();
    let mut body = KinematicBody::new(params);
    let dims = [1280usize, 384, 64, 16];
    let mut v = vec![0f32; 1280];
    let spatial = vec![0.25f32; 7 * 7 * 64];
    let period = 10_000_000u64;
    let mut tick = |k: u64, integ: &mut Integrator, body: &mut KinematicBody| {
        let now = k * period;
        for (i, x) in v.iter_mut().enumerate() {
            *x = ((i + k as usize) as f32 * 0.01).sin();
        }
        for r in RegionId::ALL {
            let (grid, sp): ([u32; 3], &[f32]) = if r == RegionId::Vision {
                ([7, 7, 64], &spatial)
            } else {
                ([0; 3], &[])
            };
            if k % 3 == 0 || r == RegionId::Proprioception {
                writers[r.index()]
                    .publish(&EmbeddingRef {
                        seq: k,
                        stamp_ns: now,
                        model_id: 1,
                        vector: &v[..dims[r.index()]],
                        grid,
                        spatial: sp,
                    })
                    .unwrap();
            }
        }
        match k % 1000 {
            100 => teleop.send(
                TeleopCommand::Drive(Twist {
                    linear: 0.2,
                    angular: 0.3,
                }),
                now,
            ),
            300 => teleop.send(TeleopCommand::Release, now),
            _ => {}
        }
        if k % 2500 == 0 {
            integ.sleep_now();
        }
        let r = *integ.tick(now, body);
        body.advance(0.01);
        r
    };
    for k in 0..1000 {
        tick(k, &mut integ, &mut body);
    }
    WATCHED.with(|w| w.set(true));
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut slept = 0;
    let mut max_context = 0;
    for k in 1000..11_000 {
        let r = tick(k, &mut integ, &mut body);
        slept += r.slept as u32;
        max_context = max_context.max(r.context_len);
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    WATCHED.with(|w| w.set(false));
    // The run exercised what it claims to.
    assert!(slept >= 4, "sleeps: {slept}");
    assert_eq!(max_context, 1024);
    assert_eq!(allocs, 0, "allocations in 10,000 ticks");
    // And the counter does count on this thread.
    WATCHED.with(|w| w.set(true));
    let b = ALLOCS.load(Ordering::Relaxed);
    drop(std::hint::black_box(vec![1u8; 16]));
    assert_eq!(ALLOCS.load(Ordering::Relaxed) - b, 1);
    WATCHED.with(|w| w.set(false));
}
