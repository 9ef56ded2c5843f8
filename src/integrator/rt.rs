//! The real-time runner: the integrator on a dedicated OS thread, ticking at absolute
//! `CLOCK_MONOTONIC` deadlines (never `sleep(period)`), with a configurable wait strategy
//! (sleep, sleep then spin, spin), `SCHED_FIFO` and `mlockall` when permitted (said once in the
//! log when not), and the CPU time spent spinning accounted. Tick records leave the thread
//! through a lock-free single-producer ring, so logging and publishing happen elsewhere.

use super::{Integrator, TickRecord, WallTimer};
use crate::body::Body;
use crate::config::{IntegratorConfig, WaitStrategy};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

pub use crate::util::clock::monotonic_ns;

/// Sleep until an absolute `CLOCK_MONOTONIC` time (restarts after signals).
pub fn sleep_until_ns(t: u64) {
    let ts = libc::timespec {
        tv_sec: (t / 1_000_000_000) as libc::time_t,
        tv_nsec: (t % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: valid timespec; TIMER_ABSTIME with a null remainder is allowed.
        let r = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        if r != libc::EINTR {
            break;
        }
    }
}

/// How the runner waits and schedules itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RtOptions {
    /// Wait strategy.
    pub wait: WaitStrategy,
    /// Spin this long before each deadline (`SleepSpin`), ns.
    pub spin_margin_ns: u64,
    /// SCHED_FIFO priority (0: do not ask).
    pub priority: u32,
    /// Call `mlockall`.
    pub lock_memory: bool,
}

/// The largest spin margin, as a fraction of the period (see [`crate::config::MAX_SPIN_FRACTION`]).
pub use crate::config::MAX_SPIN_FRACTION;

impl From<&IntegratorConfig> for RtOptions {
    /// The spin margin follows the period: at most a fifth of it.
    fn from(c: &IntegratorConfig) -> Self {
        let period = crate::config::graph::period_ns(c.rate_hz);
        Self {
            wait: c.wait,
            spin_margin_ns: (c.spin_margin_us * 1000).min(period / MAX_SPIN_FRACTION),
            priority: c.realtime_priority,
            lock_memory: c.lock_memory,
        }
    }
}

/// What real-time facilities the loop got.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct RtStatus {
    /// SCHED_FIFO priority in effect, if any.
    pub fifo_priority: Option<u32>,
    /// Why SCHED_FIFO was not granted (when asked).
    pub fifo_error: Option<String>,
    /// Whether memory is locked.
    pub memory_locked: bool,
    /// Why mlockall failed (when asked).
    pub mlock_error: Option<String>,
}

/// Apply SCHED_FIFO and mlockall to the calling thread/process as far as permitted; each
/// refusal is logged once and the loop goes on without it.
pub fn make_realtime(o: &RtOptions) -> RtStatus {
    let mut st = RtStatus::default();
    if o.priority > 0 {
        let p = libc::sched_param {
            sched_priority: o.priority.min(99) as libc::c_int,
        };
        // SAFETY: plain syscall on the calling thread with a valid sched_param.
        let r = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &p) };
        if r == 0 {
            st.fifo_priority = Some(o.priority.min(99));
        } else {
            let e = std::io::Error::from_raw_os_error(r).to_string();
            tracing::warn!(error = %e, "SCHED_FIFO not permitted; the integrator runs at normal priority");
            st.fifo_error = Some(e);
        }
    }
    if o.lock_memory {
        // SAFETY: plain syscall.
        let r = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
        if r == 0 {
            st.memory_locked = true;
        } else {
            let e = std::io::Error::last_os_error().to_string();
            tracing::warn!(error = %e, "mlockall not permitted; memory may be paged");
            st.mlock_error = Some(e);
        }
    }
    st
}

/// Waits for absolute deadlines and accounts the CPU spent spinning.
#[derive(Debug, Clone)]
pub struct Waiter {
    wait: WaitStrategy,
    margin_ns: u64,
    /// Total time spent spinning, ns.
    pub spin_ns: u64,
}

impl Waiter {
    /// A waiter with these options.
    pub fn new(o: &RtOptions) -> Self {
        Self {
            wait: o.wait,
            margin_ns: o.spin_margin_ns,
            spin_ns: 0,
        }
    }

    /// Wait until `deadline_ns`; returns the time at wake-up.
    pub fn wait_until(&mut self, deadline_ns: u64) -> u64 {
        match self.wait {
            WaitStrategy::Sleep => {
                sleep_until_ns(deadline_ns);
                monotonic_ns()
            }
            WaitStrategy::SleepSpin | WaitStrategy::Spin => {
                if self.wait == WaitStrategy::SleepSpin {
                    let wake = deadline_ns.saturating_sub(self.margin_ns);
                    if monotonic_ns() < wake {
                        sleep_until_ns(wake);
                    }
                }
                let s0 = monotonic_ns();
                let mut now = s0;
                while now < deadline_ns {
                    std::hint::spin_loop();
                    now = monotonic_ns();
                }
                self.spin_ns += now - s0;
                now
            }
        }
    }
}

/// A lock-free single-producer single-consumer ring of tick records (the real-time thread
/// pushes; a health/bench thread pops). A full ring drops the record and counts it.
pub struct RecordRing {
    buf: Box<[UnsafeCell<TickRecord>]>,
    mask: usize,
    head: AtomicUsize,
    tail: AtomicUsize,
    dropped: AtomicU64,
}

// SAFETY: single producer writes slot `tail` before publishing it with a Release store of
// `tail`; single consumer reads slot `head` after an Acquire load of `tail` and frees it with a
// Release store of `head`, which the producer Acquire-loads before reusing the slot.
unsafe impl Sync for RecordRing {}

impl std::fmt::Debug for RecordRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordRing")
            .field("capacity", &self.buf.len())
            .finish()
    }
}

impl RecordRing {
    /// Ring of at least `capacity` records (rounded up to a power of two).
    pub fn new(capacity: usize) -> Arc<Self> {
        let n = capacity.next_power_of_two().max(2);
        Arc::new(Self {
            buf: (0..n)
                .map(|_| UnsafeCell::new(TickRecord::default()))
                .collect(),
            mask: n - 1,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    /// Push (producer only). Never blocks or allocates.
    pub fn push(&self, r: &TickRecord) -> bool {
        let t = self.tail.load(Ordering::Relaxed);
        let h = self.head.load(Ordering::Acquire);
        if t.wrapping_sub(h) > self.mask {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        // SAFETY: see the `Sync` impl: slot `t` is owned by the producer until published.
        unsafe { *self.buf[t & self.mask].get() = *r };
        self.tail.store(t.wrapping_add(1), Ordering::Release);
        true
    }

    /// Pop (consumer only).
    pub fn pop(&self) -> Option<TickRecord> {
        let h = self.head.load(Ordering::Relaxed);
        let t = self.tail.load(Ordering::Acquire);
        if h == t {
            return None;
        }
        // SAFETY: see the `Sync` impl: slot `h` was published and is not reused until freed.
        let r = unsafe { *self.buf[h & self.mask].get() };
        self.head.store(h.wrapping_add(1), Ordering::Release);
        Some(r)
    }

    /// Records dropped because the consumer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// What the real-time thread hands back when it stops.
pub struct RtOutcome<B> {
    /// The integrator, with its health.
    pub integrator: Integrator,
    /// The body.
    pub body: B,
    /// Real-time facilities in effect.
    pub status: RtStatus,
    /// Time spent spinning, ns.
    pub spin_ns: u64,
    /// Wall time of the loop, ns.
    pub wall_ns: u64,
}

/// Run the integrator on a dedicated OS thread until `stop` is set. Before each tick,
/// `pre_tick(now_ns, &mut body)` runs (e.g. to advance a simulated body to `now_ns`). Each
/// tick's record is pushed into `ring`.
pub fn run_realtime<B, H>(
    mut integrator: Integrator,
    mut body: B,
    opts: RtOptions,
    stop: Arc<AtomicBool>,
    ring: Arc<RecordRing>,
    mut pre_tick: H,
) -> std::io::Result<JoinHandle<RtOutcome<B>>>
where
    B: Body + 'static,
    H: FnMut(u64, &mut B) + Send + 'static,
{
    std::thread::Builder::new()
        .name("integrator".into())
        .spawn(move || {
            let status = make_realtime(&opts);
            integrator.set_compute_timer(Box::new(WallTimer::default()));
            let mut waiter = Waiter::new(&opts);
            let t0 = monotonic_ns();
            integrator.start_at(t0 + integrator.period_ns());
            while !stop.load(Ordering::Relaxed) {
                let deadline = integrator
                    .next_deadline()
                    .unwrap_or_else(|| monotonic_ns() + integrator.period_ns());
                let now = waiter.wait_until(deadline);
                pre_tick(now, &mut body);
                let rec = *integrator.tick(now, &mut body);
                ring.push(&rec);
            }
            RtOutcome {
                integrator,
                body,
                status,
                spin_ns: waiter.spin_ns,
                wall_ns: monotonic_ns() - t0,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_fifo_and_drop_when_full() {
        let r = RecordRing::new(4);
        for i in 0..6 {
            let rec = TickRecord {
                tick: i,
                ..Default::default()
            };
            r.push(&rec);
        }
        assert_eq!(r.dropped(), 2);
        let got: Vec<u64> = std::iter::from_fn(|| r.pop()).map(|x| x.tick).collect();
        assert_eq!(got, vec![0, 1, 2, 3]);
    }

    #[test]
    fn absolute_sleep_reaches_deadline() {
        let mut w = Waiter::new(&RtOptions {
            wait: WaitStrategy::SleepSpin,
            spin_margin_ns: 500_000,
            priority: 0,
            lock_memory: false,
        });
        let d = monotonic_ns() + 2_000_000;
        assert!(w.wait_until(d) >= d);
    }

    #[test]
    fn the_spin_margin_follows_the_period() {
        let mut c = IntegratorConfig::default();
        assert_eq!(RtOptions::from(&c).spin_margin_ns, 2_000_000);
        c.rate_hz = 1000.0;
        assert_eq!(RtOptions::from(&c).spin_margin_ns, 200_000);
        c.spin_margin_us = 50;
        assert_eq!(RtOptions::from(&c).spin_margin_ns, 50_000);
    }
}
