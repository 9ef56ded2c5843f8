//! The brain's side of the teleop console: signed operator commands and the public e-stop
//! from the zenoh bus into the override mux's `operator` input, the operator controls (mode,
//! sleep) and the run's instruction topic.
//!
//! A drive command is stamped with the time of the key event it stands for (the console's
//! wall clock carried in the signed body, mapped onto this process's clock and never later
//! than arrival), so the `operator` source's timeout runs from the key event: a held key is a
//! deadman that lapses `[teleop.sources.operator].timeout_ms` after the last key event even
//! if the console froze or the link dropped after it.

use crate::bus::zenoh::{net_topics, wall_ns, ZenohBus, ZenohError};
use crate::bus::{topics, Bus, LocalBus};
use crate::msg::{Instruction, OperatorCommand, TeleopCommand};
use crate::teleop::auth::{AuthStats, OperatorKey, Verifier};
use crate::teleop::{OperatorControls, TeleopInput};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Longest instruction an operator may send, bytes.
pub const MAX_INSTRUCTION_BYTES: usize = crate::bus::ros_map::MAX_INSTRUCTION_BYTES;

/// Where the operator's commands go.
#[derive(Clone)]
pub struct OperatorTargets {
    /// The mux input of the `operator` source.
    pub input: Arc<TeleopInput>,
    /// Mode and sleep requests.
    pub controls: Arc<OperatorControls>,
    /// The run's bus (instructions go out on `topics::INSTRUCTION`).
    pub local: LocalBus,
}

/// Apply one verified command received at `now_ns` (this process's clock), for a key event
/// `age_ns` before arrival.
pub fn apply(t: &OperatorTargets, cmd: OperatorCommand, now_ns: u64, age_ns: u64) {
    match cmd {
        OperatorCommand::Drive(tw) => t
            .input
            .send(TeleopCommand::Drive(tw), now_ns.saturating_sub(age_ns)),
        OperatorCommand::Release => t.input.send(TeleopCommand::Release, now_ns),
        OperatorCommand::Estop => t.input.send(TeleopCommand::Estop, now_ns),
        OperatorCommand::Reset => t.input.send(TeleopCommand::ClearEstop, now_ns),
        OperatorCommand::Sleep => t.controls.request_sleep(),
        OperatorCommand::Mode(m) => {
            tracing::info!(mode = m.name(), "operator mode");
            t.controls.set_mode(m)
        }
        OperatorCommand::Instruction(text) => {
            let text = text.trim();
            if text.is_empty() || text.len() > MAX_INSTRUCTION_BYTES {
                tracing::warn!("operator instruction refused: empty or longer than {MAX_INSTRUCTION_BYTES} bytes");
                return;
            }
            tracing::info!(instruction = text, "operator instruction");
            t.local.publish(
                topics::INSTRUCTION,
                &Instruction {
                    stamp_ns: now_ns,
                    text: text.to_string(),
                },
            );
        }
    }
}

/// Serve the teleop console on `net`: signed commands on `teleop/operator` (verified with
/// `key`; refusals counted and never executed; without a key nothing there is executed) and
/// any sample on the public `estop` key (always an e-stop). Returns the counters.
pub fn serve(
    net: &ZenohBus,
    targets: OperatorTargets,
    key: Option<OperatorKey>,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
) -> Result<Arc<AuthStats>, ZenohError> {
    let stats = Arc::new(AuthStats::default());
    if let Some(key) = key {
        serve_signed(net, &targets, key, clock.clone(), stats.clone())?;
    }
    let (st, input) = (stats.clone(), targets.input.clone());
    net.subscribe_raw(net_topics::ESTOP, move |_| {
        input.send(TeleopCommand::Estop, clock());
        let n = st.public_estops.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(count = n, "e-stop from the bus");
    })?;
    Ok(stats)
}

fn serve_signed(
    net: &ZenohBus,
    targets: &OperatorTargets,
    key: OperatorKey,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    stats: Arc<AuthStats>,
) -> Result<(), ZenohError> {
    // The verifier, and the last key event's (console, wall time, stamp here): a repeat of
    // one key event keeps the stamp it was first given, so it lapses from the key event.
    let state = Mutex::new((Verifier::new(key), (0u64, 0i64, 0u64)));
    let (st, t, c) = (stats.clone(), targets.clone(), clock.clone());
    net.subscribe_raw(net_topics::OPERATOR, move |bytes| {
        let clock = &c;
        let (now, wall) = (clock(), wall_ns());
        let mut g = state.lock().unwrap_or_else(|e| e.into_inner());
        let (verifier, last) = &mut *g;
        let Ok(b) = verifier.verify(bytes, wall, &st) else {
            return;
        };
        let age = (wall - b.key_wall_ns).clamp(0, crate::teleop::auth::MAX_SKEW_NS) as u64;
        let stamp = if (last.0, last.1) == (b.id, b.key_wall_ns) {
            last.2
        } else {
            now.saturating_sub(age)
        };
        *last = (b.id, b.key_wall_ns, stamp);
        drop(g);
        tracing::debug!(
            seq = b.seq,
            key_age_ms = age as f64 * 1e-6,
            "operator command"
        );
        apply(&t, b.cmd, stamp, 0);
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{OperatorMode, Twist};

    #[test]
    fn commands_reach_their_targets() {
        let t = OperatorTargets {
            input: TeleopInput::new(),
            controls: OperatorControls::new(),
            local: LocalBus::new(),
        };
        let sub = t.local.subscribe(topics::INSTRUCTION, 4);
        let tw = Twist {
            linear: 0.2,
            angular: 0.1,
        };
        apply(&t, OperatorCommand::Drive(tw), 1_000_000_000, 40_000_000);
        assert_eq!(t.input.snapshot().unwrap().drive, Some((tw, 960_000_000)));
        apply(&t, OperatorCommand::Estop, 1, 0);
        assert!(t.input.snapshot().unwrap().estop);
        apply(&t, OperatorCommand::Reset, 2, 0);
        assert!(!t.input.snapshot().unwrap().estop);
        apply(&t, OperatorCommand::Mode(OperatorMode::Manual), 3, 0);
        assert_eq!(t.controls.mode(), OperatorMode::Manual);
        apply(&t, OperatorCommand::Sleep, 4, 0);
        assert_eq!(t.controls.sleep_requests(), 1);
        apply(&t, OperatorCommand::Instruction("   ".into()), 5, 0);
        apply(
            &t,
            OperatorCommand::Instruction(" go to the red ball ".into()),
            6,
            0,
        );
        assert_eq!(sub.try_recv().unwrap().text, "go to the red ball");
        assert!(sub.try_recv().is_none(), "an empty instruction is refused");
    }
}
