//! `brainloop console --json`: the console for scripts and tests. One health object per line
//! on standard output (the fields of [`Model::health_json`]), commands as JSON lines on
//! standard input:
//!
//! `{"drive": [v, w]}` (m/s, rad/s; held while repeated, lapses [`DEADMAN`] after the last
//! line like a released key), `{"release": true}`, `{"estop": true}`, `{"reset": true}`,
//! `{"instruction": "..."}`, `{"sleep": true}`, `{"mode": "manual"|"assist"|"autonomous"}`.
//!
//! A line that is not a command (bad JSON, bad UTF-8, an unknown key, a non-finite number) is
//! reported on standard error, counted and skipped; an e-stop never depends on the lines
//! around it. The end of standard input lets go of any drive and keeps watching.

use super::{lock, Client, Controls, Model, DEADMAN};
use crate::bus::zenoh::wall_ns;
use crate::msg::{OperatorCommand, OperatorMode, Twist};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One input line, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Drive (held while repeated).
    Drive(Twist),
    /// Anything else, sent as is.
    Command(OperatorCommand),
}

/// Parse one line of standard input.
pub fn parse_line(line: &str) -> Result<Input, String> {
    let v: serde_json::Value =
        serde_json::from_str(line.trim()).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("expected an object such as {\"drive\": [0.2, 0.0]}")?;
    if obj.len() != 1 {
        return Err(format!(
            "expected exactly one command per line, got {} keys",
            obj.len()
        ));
    }
    let (k, v) = obj.iter().next().ok_or("empty object")?;
    let yes = |v: &serde_json::Value| v.as_bool() == Some(true);
    match k.as_str() {
        "drive" => {
            let a = v
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or("drive: expected [linear_m_s, angular_rad_s]")?;
            let (l, w) = (a[0].as_f64(), a[1].as_f64());
            match (l, w) {
                (Some(linear), Some(angular)) if linear.is_finite() && angular.is_finite() => {
                    Ok(Input::Drive(Twist { linear, angular }))
                }
                _ => Err("drive: expected two finite numbers".into()),
            }
        }
        "release" if yes(v) => Ok(Input::Command(OperatorCommand::Release)),
        "estop" if yes(v) => Ok(Input::Command(OperatorCommand::Estop)),
        "reset" if yes(v) => Ok(Input::Command(OperatorCommand::Reset)),
        "sleep" if yes(v) => Ok(Input::Command(OperatorCommand::Sleep)),
        "instruction" => match v.as_str().map(str::trim) {
            Some(t) if !t.is_empty() => Ok(Input::Command(OperatorCommand::Instruction(t.into()))),
            _ => Err("instruction: expected a non-empty string".into()),
        },
        "mode" => OperatorMode::ALL
            .into_iter()
            .find(|m| Some(m.name()) == v.as_str())
            .map(|m| Input::Command(OperatorCommand::Mode(m)))
            .ok_or_else(|| "mode: expected \"autonomous\", \"assist\" or \"manual\"".into()),
        "release" | "estop" | "reset" | "sleep" => Err(format!("{k}: expected true")),
        other => Err(format!(
            "unknown command {other:?} (drive, release, estop, reset, instruction, sleep, mode)"
        )),
    }
}

/// Options of the JSON mode.
#[derive(Debug, Clone)]
pub struct JsonOptions {
    /// Health lines per second (>= 1).
    pub rate_hz: f64,
    /// Stop after this long.
    pub seconds: Option<f64>,
}

/// Run the JSON mode until `stop` or `seconds`.
pub fn run(mut client: Client, opts: &JsonOptions, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let model = client.model();
    let (tx, rx) = crossbeam_channel::bounded::<Option<Input>>(256);
    let m2 = model.clone();
    std::thread::Builder::new()
        .name("console-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = Vec::with_capacity(256);
            let mut n = 0u64;
            loop {
                buf.clear();
                match stdin.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                n += 1;
                let line = String::from_utf8_lossy(&buf);
                if line.trim().is_empty() {
                    continue;
                }
                match parse_line(&line) {
                    Ok(i) => {
                        if tx.send(Some(i)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        lock(&m2).bad_input += 1;
                        eprintln!("console: line {n}: {e}");
                    }
                }
            }
            let _ = tx.send(None);
        })?;
    let mut controls = Controls::new(DEADMAN);
    let period = Duration::from_secs_f64(1.0 / opts.rate_hz.clamp(1.0, 100.0));
    let t0 = Instant::now();
    let mut next_print = t0 + period;
    let mut out = std::io::stdout().lock();
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if opts
            .seconds
            .is_some_and(|s| now.duration_since(t0).as_secs_f64() >= s)
        {
            break;
        }
        while let Ok(i) = rx.try_recv() {
            let (now, wall) = (Instant::now(), wall_ns());
            match i {
                Some(Input::Drive(t)) => {
                    let (c, k) = controls.drive(t, now, wall);
                    client.send(c, k);
                }
                Some(Input::Command(c)) => {
                    if matches!(c, OperatorCommand::Estop | OperatorCommand::Release) {
                        // Let go first, so nothing held resumes after a reset.
                        if let Some((r, k)) = controls.release(wall) {
                            if c == OperatorCommand::Estop {
                                client.send(r, k);
                            }
                        }
                    }
                    if let OperatorCommand::Mode(m) = c {
                        lock(&model).mode = m;
                    }
                    client.send(c, wall);
                }
                None => {
                    if let Some((c, k)) = controls.release(wall) {
                        client.send(c, k);
                    }
                }
            }
        }
        if let Some((c, k)) = controls.poll(Instant::now(), wall_ns()) {
            client.send(c, k);
        }
        lock(&model).held = controls.held();
        let now = Instant::now();
        if now >= next_print {
            next_print += period;
            if next_print < now {
                next_print = now + period;
            }
            let j = lock(&model).health_json(now);
            if writeln!(out, "{j}").and_then(|_| out.flush()).is_err() {
                // Nobody reads any more (a closed pipe): stop driving and end.
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Some((c, k)) = controls.release(wall_ns()) {
        client.send(c, k);
    }
    Ok(())
}

/// For tests and tools: the model after `f` ran with it locked.
pub fn with_model<R>(m: &std::sync::Mutex<Model>, f: impl FnOnce(&Model) -> R) -> R {
    f(&lock(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_to_commands_and_bad_ones_say_why() {
        assert_eq!(
            parse_line(r#"{"drive": [0.2, -0.5]}"#),
            Ok(Input::Drive(Twist {
                linear: 0.2,
                angular: -0.5
            }))
        );
        assert_eq!(
            parse_line(r#"{"estop": true}"#),
            Ok(Input::Command(OperatorCommand::Estop))
        );
        assert_eq!(
            parse_line(r#" {"mode": "assist"} "#),
            Ok(Input::Command(OperatorCommand::Mode(OperatorMode::Assist)))
        );
        assert_eq!(
            parse_line(r#"{"instruction": " go to the red ball "}"#),
            Ok(Input::Command(OperatorCommand::Instruction(
                "go to the red ball".into()
            )))
        );
        for bad in [
            "",
            "drive 1 2",
            r#"{"drive": [1e999, 0]}"#,
            r#"{"drive": [0.1]}"#,
            r#"{"drive": ["a", 0]}"#,
            r#"{"estop": false}"#,
            r#"{"mode": "turbo"}"#,
            r#"{"instruction": ""}"#,
            r#"{"fly": true}"#,
            r#"{"estop": true, "reset": true}"#,
            "[1, 2]",
        ] {
            assert!(parse_line(bad).is_err(), "{bad:?} accepted");
        }
    }
}
