//! The console's terminal UI (ratatui over crossterm), redrawn at 10 Hz from the shared
//! [`Model`].
//!
//! Keys: arrows / WASD drive while held (a deadman: [`DEADMAN`] after the last key event the
//! command lapses; terminals that report key releases stop at the release), `+` / `-` scale
//! the speed, space latches the e-stop, `r` then `y` clears it, `i` types an instruction
//! (Enter sends, Esc cancels), `z` asks for sleep, `m` cycles the mode (autonomous, assist,
//! manual), `q` or Ctrl-C quits (letting go first).

use super::{lock, twist_of, Client, Controls, Model, DEADMAN};
use crate::bus::zenoh::wall_ns;
use crate::config::LimitsConfig;
use crate::msg::OperatorCommand;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Gauge, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Redraw period.
pub const REDRAW: Duration = Duration::from_millis(100);

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Prompt {
    /// Keys drive and command.
    #[default]
    None,
    /// Typing an instruction.
    Instruction(String),
    /// Asked whether to clear the e-stop.
    ConfirmReset,
}

/// The UI's own state beside the model.
#[derive(Debug, Default)]
pub struct Ui {
    /// The prompt.
    pub prompt: Prompt,
    /// Set when the operator quits.
    pub quit: bool,
}

/// A key, as the UI sees it (for tests without a terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A character.
    Char(char),
    /// An arrow: (forward, turn).
    Arrow(i8, i8),
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Backspace.
    Backspace,
    /// Ctrl-C.
    Interrupt,
}

fn drive_dir(k: Key) -> Option<(f64, f64)> {
    match k {
        Key::Arrow(f, t) => Some((f as f64, t as f64)),
        Key::Char('w') | Key::Char('W') => Some((1.0, 0.0)),
        Key::Char('s') | Key::Char('S') => Some((-1.0, 0.0)),
        Key::Char('a') | Key::Char('A') => Some((0.0, 1.0)),
        Key::Char('d') | Key::Char('D') => Some((0.0, -1.0)),
        _ => None,
    }
}

impl Ui {
    /// Handle one key press (or repeat); returns the commands to send, with the key event's
    /// wall time.
    pub fn key(
        &mut self,
        k: Key,
        m: &mut Model,
        controls: &mut Controls,
        limits: &LimitsConfig,
        now: Instant,
        wall: i64,
    ) -> Vec<(OperatorCommand, i64)> {
        let mut out = Vec::new();
        if k == Key::Interrupt {
            self.quit = true;
            out.extend(controls.release(wall));
            return out;
        }
        match std::mem::take(&mut self.prompt) {
            Prompt::Instruction(mut text) => {
                match k {
                    Key::Enter => {
                        let t = text.trim().to_string();
                        if t.is_empty() {
                            m.message = "empty instruction: not sent".into();
                        } else {
                            m.message = format!("instruction sent: {t}");
                            out.push((OperatorCommand::Instruction(t), wall));
                        }
                    }
                    Key::Esc => m.message = "instruction cancelled".into(),
                    Key::Backspace => {
                        text.pop();
                        self.prompt = Prompt::Instruction(text);
                    }
                    Key::Char(c) => {
                        if text.len() < 512 {
                            text.push(c);
                        }
                        self.prompt = Prompt::Instruction(text);
                    }
                    _ => self.prompt = Prompt::Instruction(text),
                }
                return out;
            }
            Prompt::ConfirmReset => {
                if k == Key::Char('y') || k == Key::Char('Y') {
                    m.message = "e-stop reset sent".into();
                    out.push((OperatorCommand::Reset, wall));
                } else {
                    m.message = "e-stop stays latched".into();
                }
                return out;
            }
            Prompt::None => {}
        }
        if let Some((f, t)) = drive_dir(k) {
            out.push(controls.drive(twist_of(f, t, m.speed, limits), now, wall));
            return out;
        }
        match k {
            Key::Char(' ') => {
                out.extend(controls.release(wall));
                out.push((OperatorCommand::Estop, wall));
                m.message = "E-STOP sent (r then y clears it)".into();
            }
            Key::Char('r') | Key::Char('R') => {
                self.prompt = Prompt::ConfirmReset;
                m.message = "clear the e-stop? y = yes, any other key = no".into();
            }
            Key::Char('i') | Key::Char('I') => {
                self.prompt = Prompt::Instruction(String::new());
                m.message = "type the instruction, Enter sends, Esc cancels".into();
            }
            Key::Char('z') | Key::Char('Z') => {
                out.push((OperatorCommand::Sleep, wall));
                m.message = "sleep asked".into();
            }
            Key::Char('m') | Key::Char('M') => {
                m.mode = m.mode.next();
                out.push((OperatorCommand::Mode(m.mode), wall));
                m.message = format!("mode {}", m.mode.name());
            }
            Key::Char('+') | Key::Char('=') => {
                m.speed = (m.speed + 0.1).min(1.0);
                m.message = format!("speed {:.0} %", m.speed * 100.0);
            }
            Key::Char('-') | Key::Char('_') => {
                m.speed = (m.speed - 0.1).max(0.1);
                m.message = format!("speed {:.0} %", m.speed * 100.0);
            }
            Key::Char('q') | Key::Char('Q') => {
                self.quit = true;
                out.extend(controls.release(wall));
            }
            _ => {
                m.bad_input += 1;
            }
        }
        out
    }
}

fn key_of(e: &event::KeyEvent) -> Option<Key> {
    if e.modifiers.contains(KeyModifiers::CONTROL) && e.code == KeyCode::Char('c') {
        return Some(Key::Interrupt);
    }
    Some(match e.code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Up => Key::Arrow(1, 0),
        KeyCode::Down => Key::Arrow(-1, 0),
        KeyCode::Left => Key::Arrow(0, 1),
        KeyCode::Right => Key::Arrow(0, -1),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        _ => return None,
    })
}

/// Run the terminal UI until the operator quits or `stop` is set.
pub fn run(mut client: Client, limits: &LimitsConfig, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    use ratatui::crossterm::event::{
        KeyboardEnhancementFlags, PopKeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
    };
    use ratatui::crossterm::execute;
    let model = client.model();
    let mut terminal = ratatui::try_init()?;
    // Where the terminal reports key releases (kitty's protocol), a release stops at once.
    let enhanced = ratatui::crossterm::terminal::supports_keyboard_enhancement().unwrap_or(false)
        && execute!(
            std::io::stdout(),
            PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::REPORT_EVENT_TYPES)
        )
        .is_ok();
    let mut ui = Ui::default();
    let mut controls = Controls::new(DEADMAN);
    let mut last_draw: Option<Instant> = None;
    // A gamepad where there is one: holding its enable button is a held key.
    let pad = match super::gamepad::spawn() {
        Ok(rx) => Some(rx),
        Err(e) => {
            lock(&model).message = format!("no gamepad support: {e}");
            None
        }
    };
    let mut pad_state = super::gamepad::PadState::default();
    let mut pad_driving: Option<Instant> = None;
    let result = (|| -> anyhow::Result<()> {
        while !ui.quit && !stop.load(Ordering::SeqCst) {
            if event::poll(Duration::from_millis(10))? {
                if let Event::Key(e) = event::read()? {
                    let (now, wall) = (Instant::now(), wall_ns());
                    if e.kind == KeyEventKind::Release {
                        if key_of(&e).and_then(drive_dir).is_some() {
                            if let Some((c, k)) = controls.release(wall) {
                                client.send(c, k);
                            }
                        }
                        continue;
                    }
                    if let Some(k) = key_of(&e) {
                        let cmds = {
                            let mut m = lock(&model);
                            ui.key(k, &mut m, &mut controls, limits, now, wall)
                        };
                        for (c, w) in cmds {
                            client.send(c, w);
                        }
                    }
                }
            }
            while let Some(ev) = pad.as_ref().and_then(|rx| rx.try_recv().ok()) {
                use super::gamepad::PadEvent;
                let wall = wall_ns();
                match ev {
                    PadEvent::State(s) => pad_state = s,
                    PadEvent::Estop => {
                        pad_driving = None;
                        if let Some((c, k)) = controls.release(wall) {
                            client.send(c, k);
                        }
                        client.send(OperatorCommand::Estop, wall);
                        lock(&model).message = "E-STOP from the gamepad".into();
                    }
                    PadEvent::Disconnected => pad_state = Default::default(),
                }
                if pad_driving.is_some() && !pad_state.enable {
                    pad_driving = None;
                    if let Some((c, k)) = controls.release(wall) {
                        client.send(c, k);
                    }
                }
            }
            if pad_state.enable && pad_driving.is_none_or(|t| t.elapsed() >= super::REPEAT) {
                let speed = lock(&model).speed;
                if let Some(t) = super::gamepad::twist_of(&pad_state, speed, limits) {
                    pad_driving = Some(Instant::now());
                    let (c, k) = controls.drive(t, Instant::now(), wall_ns());
                    client.send(c, k);
                }
            }
            if let Some((c, k)) = controls.poll(Instant::now(), wall_ns()) {
                client.send(c, k);
            }
            let now = Instant::now();
            if last_draw.is_none_or(|t| now.duration_since(t) >= REDRAW) {
                last_draw = Some(now);
                let mut m = lock(&model).clone();
                m.held = controls.held();
                terminal.draw(|f| draw(f, &m, &ui, now))?;
            }
        }
        Ok(())
    })();
    if let Some((c, k)) = controls.release(wall_ns()) {
        client.send(c, k);
    }
    if enhanced {
        let _ = execute!(std::io::stdout(), PopKeyboardEnhancementFlags);
    }
    ratatui::restore();
    result
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.prec$}"))
}

/// Draw the whole console into `f` (public for tests with ratatui's test backend).
pub fn draw(f: &mut Frame<'_>, m: &Model, ui: &Ui, now: Instant) {
    let [top, mid, regions, instr, bottom] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(9),
        Constraint::Min(4),
        Constraint::Length(4),
        Constraint::Length(3),
    ])
    .areas(f.area());
    draw_top(f, top, m, now);
    let [loop_area, body_area] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(mid);
    draw_loop(f, loop_area, m);
    draw_body(f, body_area, m);
    draw_regions(f, regions, m);
    draw_instruction(f, instr, m);
    draw_bottom(f, bottom, m, ui);
}

fn draw_top(f: &mut Frame<'_>, area: Rect, m: &Model, now: Instant) {
    let s = m.status.as_ref().map(|s| &s.0);
    let conn = if m.connected(now) {
        Span::styled(
            " CONNECTED ",
            Style::default().fg(Color::Black).bg(Color::Green),
        )
    } else {
        Span::styled(
            format!(" LOST (last report {} ms ago) ", opt(m.age_ms(now), 0)),
            Style::default().fg(Color::White).bg(Color::Red),
        )
    };
    let estop = match s {
        Some(s) if s.estop => Span::styled(
            format!(
                " E-STOP ({}) ",
                s.estop_reason.clone().unwrap_or_else(|| "?".into())
            ),
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ),
        Some(_) => Span::styled(" e-stop off ", Style::default().fg(Color::Green)),
        None => Span::raw(" e-stop ? "),
    };
    let driver = s.map_or("?".to_string(), |s| s.source.clone());
    let line = Line::from(vec![
        conn,
        Span::raw("  driving: "),
        Span::styled(driver, Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "  mode: {}  ",
            s.map_or(m.mode.name(), |s| s.operator_mode.name())
        )),
        estop,
        Span::raw(if m.authenticated {
            "  operator key: yes"
        } else {
            "  operator key: NO (watch + e-stop only)"
        }),
    ]);
    let title = format!(" brainloop console: {} @ {} ", m.robot, m.endpoint);
    f.render_widget(
        Paragraph::new(line).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

fn draw_loop(f: &mut Frame<'_>, area: Rect, m: &Model) {
    let block = Block::default().borders(Borders::ALL).title(" loop ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let h = m.health.as_ref().map(|h| &h.0);
    let s = m.status.as_ref().map(|s| &s.0);
    let [text, gauge, spark] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(inner);
    let lines = vec![
        Line::from(format!(
            "rate {} Hz  period {} us  ticks {}  missed {}",
            opt(h.map(|h| h.rate_hz), 1),
            opt(h.map(|h| h.period_us), 0),
            h.map_or("-".into(), |h| h.ticks.to_string()),
            h.map_or("-".into(), |h| h.missed.to_string()),
        )),
        Line::from(format!(
            "jitter p50 {} / p99 {} / max {} us",
            opt(h.map(|h| h.jitter_p50_us), 1),
            opt(h.map(|h| h.jitter_p99_us), 1),
            opt(h.map(|h| h.jitter_max_us), 1),
        )),
        Line::from(format!(
            "compute p99 {} us of {} us deadline ({} %)",
            opt(h.map(|h| h.compute_p99_us), 1),
            opt(h.map(|h| h.period_us), 0),
            opt(
                h.map(|h| 100.0 * h.compute_p99_us / h.period_us.max(1.0)),
                1
            ),
        )),
        Line::from(format!(
            "speed scale {}  shed {}  sleeps {}  sleep {}  memory {}/{}",
            opt(h.map(|h| h.speed_scale as f64), 2),
            h.map_or("-".into(), |h| h.shed_level.to_string()),
            h.map_or("-".into(), |h| h.sleeps.to_string()),
            match s.map(|s| s.sleep) {
                Some(sl) if sl.sleeping => "SLEEPING",
                Some(sl) if sl.requested => "requested",
                Some(_) => "not requested",
                None => "-",
            },
            s.map_or("-".into(), |s| s.sleep.context_len.to_string()),
            s.map_or("-".into(), |s| s.sleep.context_capacity.to_string()),
        )),
    ];
    f.render_widget(Paragraph::new(lines), text);
    let d = h.map_or(0.0, |h| h.drowsiness as f64).clamp(0.0, 1.0);
    let colour = if d > 0.6 {
        Color::Red
    } else if d > 0.3 {
        Color::Yellow
    } else {
        Color::Green
    };
    f.render_widget(
        Gauge::default()
            .gauge_style(Style::default().fg(colour))
            .ratio(d)
            .label(format!("drowsiness {d:.2}")),
        gauge,
    );
    let data: Vec<u64> = m
        .drowsiness
        .iter()
        .map(|d| (d.clamp(0.0, 1.0) * 100.0) as u64)
        .collect();
    f.render_widget(
        Sparkline::default()
            .data(&data)
            .max(100)
            .style(Style::default().fg(colour)),
        spark,
    );
}

fn draw_body(f: &mut Frame<'_>, area: Rect, m: &Model) {
    let s = m.status.as_ref().map(|s| &s.0);
    let mut lines = vec![
        Line::from(format!(
            "body {}{}",
            s.map_or("-".into(), |s| s.body.clone()),
            if s.is_some_and(|s| s.body_stale) {
                "  STALE"
            } else {
                ""
            }
        )),
        Line::from(format!(
            "cmd v {} m/s  w {} rad/s",
            opt(s.map(|s| s.twist.linear), 2),
            opt(s.map(|s| s.twist.angular), 2)
        )),
        Line::from(format!(
            "wheels L {} R {} rad/s",
            opt(s.map(|s| s.wheels[0]), 2),
            opt(s.map(|s| s.wheels[1]), 2)
        )),
        Line::from(format!(
            "odom x {} y {} m  theta {} rad",
            opt(s.map(|s| s.odom.x), 2),
            opt(s.map(|s| s.odom.y), 2),
            opt(s.map(|s| s.odom.theta), 2)
        )),
        Line::from(format!(
            "battery {} V",
            opt(s.map(|s| s.battery_v).filter(|v| *v > 0.0), 2)
        )),
    ];
    match s.and_then(|s| s.link) {
        Some(l) => lines.push(Line::from(format!(
            "link {} rx {} tx {} crc {} reconnects {}",
            if l.connected { "up" } else { "DOWN" },
            l.frames_rx,
            l.frames_tx,
            l.crc_errors,
            l.reconnects
        ))),
        None => lines.push(Line::from("link: none (no serial body)")),
    }
    lines.push(Line::from(format!(
        "teleop: key->wheel p99 {} ms  refused {}",
        opt(s.map(|s| s.key_to_wheel_ms.p99), 1),
        s.map_or("-".into(), |s| s.commands_refused.to_string())
    )));
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" body ")),
        area,
    );
}

fn draw_regions(f: &mut Frame<'_>, area: Rect, m: &Model) {
    let rows: Vec<Row> = m
        .health
        .as_ref()
        .map(|h| {
            h.0.regions
                .iter()
                .map(|r| {
                    let fresh = if r.fresh {
                        Cell::from("fresh").style(Style::default().fg(Color::Green))
                    } else {
                        Cell::from("STALE")
                            .style(Style::default().fg(Color::Red).add_modifier(Modifier::BOLD))
                    };
                    Row::new(vec![
                        Cell::from(r.region.clone()),
                        Cell::from(format!("{:.0}", r.rate_hz)),
                        fresh,
                        Cell::from(format!("{:.1}", r.latency_ms)),
                        Cell::from(format!("{:.0}", r.age_ms)),
                        Cell::from((r.rejected + r.gaps).to_string()),
                        Cell::from(r.restarts.to_string()),
                    ])
                })
                .collect()
        })
        .unwrap_or_default();
    let table = Table::new(
        rows,
        [
            Constraint::Length(16),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(9),
        ],
    )
    .header(
        Row::new(vec![
            "region",
            "rate Hz",
            "state",
            "latency ms",
            "age ms",
            "failures",
            "restarts",
        ])
        .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::default().borders(Borders::ALL).title(" regions "));
    f.render_widget(table, area);
}

fn draw_instruction(f: &mut Frame<'_>, area: Rect, m: &Model) {
    let s = m.status.as_ref().map(|s| &s.0);
    let lines = match s.and_then(|s| s.instruction.as_ref()) {
        Some(i) => vec![
            Line::from(format!("\"{}\"", i.text)),
            Line::from(if i.about_object {
                format!(
                    "understood: {} (p {:.2}), seen {:.2}; {}",
                    i.target.clone().unwrap_or_else(|| "?".into()),
                    i.probability,
                    i.seen,
                    i.reason
                )
            } else {
                format!("understood: not about an object; {}", i.reason)
            }),
        ],
        None => vec![Line::from("no instruction (i types one)")],
    };
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" instruction "),
        ),
        area,
    );
}

fn draw_bottom(f: &mut Frame<'_>, area: Rect, m: &Model, ui: &Ui) {
    let line = match &ui.prompt {
        Prompt::Instruction(t) => Line::from(vec![
            Span::styled("instruction> ", Style::default().fg(Color::Cyan)),
            Span::raw(t.clone()),
            Span::raw("_"),
        ]),
        Prompt::ConfirmReset => Line::from(Span::styled(
            "clear the e-stop? y = yes, any other key = no",
            Style::default().fg(Color::Yellow),
        )),
        Prompt::None => {
            let held = m.held.map_or("released".to_string(), |t| {
                format!("HELD v {:.2} w {:.2}", t.linear, t.angular)
            });
            Line::from(format!(
                "WASD/arrows drive ({held}, speed {:.0} %)  +/- speed  space E-STOP  r reset  i instruction  z sleep  m mode  q quit  | {}",
                m.speed * 100.0,
                m.message
            ))
        }
    };
    f.render_widget(
        Paragraph::new(line).block(Block::default().borders(Borders::ALL)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_drive_stop_and_ask_before_clearing() {
        let mut m = Model::new("robot", "tcp/127.0.0.1:1");
        let mut c = Controls::default();
        let mut ui = Ui::default();
        let l = LimitsConfig::default();
        let now = Instant::now();
        let out = ui.key(Key::Char('w'), &mut m, &mut c, &l, now, 5);
        assert!(matches!(out[..], [(OperatorCommand::Drive(t), 5)] if t.linear > 0.0));
        let out = ui.key(Key::Char(' '), &mut m, &mut c, &l, now, 6);
        assert_eq!(
            out,
            vec![(OperatorCommand::Release, 6), (OperatorCommand::Estop, 6)]
        );
        // Reset needs the confirmation.
        assert!(ui
            .key(Key::Char('r'), &mut m, &mut c, &l, now, 7)
            .is_empty());
        assert!(ui
            .key(Key::Char('n'), &mut m, &mut c, &l, now, 8)
            .is_empty());
        ui.key(Key::Char('r'), &mut m, &mut c, &l, now, 9);
        assert_eq!(
            ui.key(Key::Char('y'), &mut m, &mut c, &l, now, 10),
            vec![(OperatorCommand::Reset, 10)]
        );
        // Typing an instruction: drive keys are letters then.
        ui.key(Key::Char('i'), &mut m, &mut c, &l, now, 11);
        for ch in "go to the red ball".chars() {
            assert!(ui
                .key(Key::Char(ch), &mut m, &mut c, &l, now, 12)
                .is_empty());
        }
        assert_eq!(
            ui.key(Key::Enter, &mut m, &mut c, &l, now, 13),
            vec![(
                OperatorCommand::Instruction("go to the red ball".into()),
                13
            )]
        );
        let out = ui.key(Key::Char('m'), &mut m, &mut c, &l, now, 14);
        assert_eq!(
            out,
            vec![(OperatorCommand::Mode(crate::msg::OperatorMode::Assist), 14)]
        );
        ui.key(Key::Char('q'), &mut m, &mut c, &l, now, 15);
        assert!(ui.quit);
    }

    #[test]
    fn the_view_shows_the_numbers() {
        use ratatui::backend::TestBackend;
        let mut m = Model::new("robot", "tcp/127.0.0.1:1");
        let h = crate::bus::wire::LoopHealthMsg {
            schema_version: crate::bus::wire::SCHEMA_VERSION,
            rate_hz: 49.9,
            period_us: 20000.0,
            jitter_p99_us: 12.5,
            missed: 3,
            regions: vec![crate::bus::wire::RegionFreshnessMsg {
                region: "vision".into(),
                fresh: false,
                ..Default::default()
            }],
            ..Default::default()
        };
        let now = Instant::now();
        m.on_health(&h.to_cdr(), now);
        let mut t = ratatui::Terminal::new(TestBackend::new(120, 32)).unwrap();
        t.draw(|f| draw(f, &m, &Ui::default(), now)).unwrap();
        let text: String = t
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(text.contains("rate 49.9 Hz"), "{text}");
        assert!(text.contains("missed 3"));
        assert!(text.contains("p99 12.5"));
        assert!(text.contains("STALE"));
        assert!(text.contains("CONNECTED"));
    }
}
