//! The brain graph as the configuration describes it: which nodes exist, what each node reads,
//! the edges with their gains and what each one feeds, the one tick period, and where each node
//! runs. Everything that builds or shows the brain (`brain::build`, the integrator, `brainloop
//! graph`) reads this one resolved graph, so what runs is what the config says.
//!
//! The node kinds are one table, [`NODE_KINDS`]: an edge is valid only into a node that reads
//! its source, a configured region that no edge reads is an error, and so is a node that is read
//! but fed by nothing.

use super::{BodyKind, Config, ConfigError, OnFailure};
use std::fmt::Write;

/// What kind of node of the brain graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeClass {
    /// A sensory region (its own thread, its own rate).
    Region,
    /// The fixed-rate integrator (fusion, decision, motor stage).
    Integrator,
    /// State kept inside the integrator's tick (working memory, emotion).
    Internal,
    /// The body the motor stage drives.
    Body,
}

/// One kind of node: its name in the config, what it reads, and what it is.
#[derive(Debug, Clone, Copy)]
pub struct NodeKind {
    /// Name in the config (`[regions.<name>]`, edge ends).
    pub name: &'static str,
    /// Kind of node.
    pub class: NodeClass,
    /// The nodes whose output it reads: the only valid sources of an edge into it.
    pub reads: &'static [&'static str],
    /// What it is, in a few words.
    pub about: &'static str,
}

/// Every node kind brainloop can build. The regions come first, in the integrator's slot order
/// (`msg::RegionId`).
pub const NODE_KINDS: [NodeKind; 7] = [
    NodeKind {
        name: "vision",
        class: NodeClass::Region,
        reads: &[],
        about: "camera -> EfficientNet-Lite0 embedding + 7x7 spatial tokens",
    },
    NodeKind {
        name: "language",
        class: NodeClass::Region,
        reads: &[],
        about: "instruction -> all-MiniLM-L6-v2 sentence embedding",
    },
    NodeKind {
        name: "audition",
        class: NodeClass::Region,
        reads: &[],
        about: "microphone -> silero VAD + log-mel energies",
    },
    NodeKind {
        name: "proprioception",
        class: NodeClass::Region,
        reads: &[],
        about: "wheel encoders, IMU, range, battery -> body-state embedding",
    },
    NodeKind {
        name: "integrator",
        class: NodeClass::Integrator,
        reads: &[
            "vision",
            "language",
            "audition",
            "proprioception",
            "memory",
            "emotion",
        ],
        about: "fixed-rate fusion, decision and motor stage",
    },
    NodeKind {
        name: "memory",
        class: NodeClass::Internal,
        reads: &["integrator"],
        about: "working memory of the run, consolidated into long-term memory in sleep",
    },
    NodeKind {
        name: "emotion",
        class: NodeClass::Internal,
        reads: &["integrator"],
        about: "valence/arousal from the forward model's surprise",
    },
];

/// The sensory region kinds, in slot order.
pub fn region_kinds() -> impl Iterator<Item = &'static NodeKind> {
    NODE_KINDS.iter().filter(|k| k.class == NodeClass::Region)
}

/// The node kind named `name`.
pub fn node_kind(name: &str) -> Option<&'static NodeKind> {
    NODE_KINDS.iter().find(|k| k.name == name)
}

/// What an edge `from -> to` feeds, for people reading the graph.
pub fn edge_feeds(from: &str, to: &str) -> &'static str {
    match (from, to) {
        ("vision", "integrator") => "fusion token; the grounded policy's view (spatial tokens)",
        ("language", "integrator") => "fusion token; the instruction the policy grounds",
        ("audition", "integrator") => "fusion token",
        ("proprioception", "integrator") => "fusion token (the body token is always fused)",
        ("memory", "integrator") => {
            "feedback: recall token from working memory (memory <-> integration)"
        }
        ("integrator", "memory") => "feedback: write strength of each tick's fused state",
        ("emotion", "integrator") => "feedback: emotion token (emotion <-> integration)",
        ("integrator", "emotion") => "feedback: how fast surprise moves emotion",
        _ => "",
    }
}

/// The tick period for a rate, ns: the one rounding every part of the brain uses.
pub fn period_ns(rate_hz: f64) -> u64 {
    (1e9 / rate_hz).round().max(1.0) as u64
}

/// Where a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Its own thread in the brain's process, at its own rate (stepped in simulation time in
    /// a lockstep `sim`).
    Thread,
    /// The integrator's real-time thread (absolute deadlines, SCHED_FIFO when permitted).
    RealtimeThread,
    /// Inside the integrator's tick.
    InTick,
    /// Behind the body seam (serial link, simulator, kinematic model).
    Body,
    /// Its own process (`brainloop node NAME`), on the bus.
    Process,
}

impl Placement {
    /// Short label.
    pub fn label(self) -> &'static str {
        match self {
            Placement::Thread => "thread",
            Placement::RealtimeThread => "real-time thread",
            Placement::InTick => "in the tick",
            Placement::Body => "body",
            Placement::Process => "own process",
        }
    }
}

/// A node as built.
#[derive(Debug, Clone)]
pub struct Node {
    /// Name.
    pub name: &'static str,
    /// Kind of node.
    pub class: NodeClass,
    /// Rate, Hz (regions and the integrator).
    pub rate_hz: Option<f64>,
    /// Whether it runs (a region with `enabled = false` is listed but does not run).
    pub enabled: bool,
    /// Where it runs.
    pub placement: Placement,
    /// One line of details (model, staleness, failure policy...).
    pub detail: String,
}

/// An edge as built.
#[derive(Debug, Clone)]
pub struct Edge {
    /// Source node.
    pub from: &'static str,
    /// Destination node.
    pub to: &'static str,
    /// Gain.
    pub gain: f64,
    /// Whether both ends run (an edge from a disabled region is cut).
    pub active: bool,
    /// What it feeds.
    pub feeds: &'static str,
}

/// The brain graph resolved from a valid configuration.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Integrator rate, Hz.
    pub rate_hz: f64,
    /// The one tick period, ns.
    pub period_ns: u64,
    /// Nodes in build order (regions in slot order, integrator, internal nodes, body).
    pub nodes: Vec<Node>,
    /// Edges in config order.
    pub edges: Vec<Edge>,
    /// Drowsiness fed back into the loop.
    pub drowsiness_feedback: bool,
    /// The override mux, highest priority first: `(input, priority, timeout_ms)`; the e-stop
    /// is first and has no timeout.
    pub mux: Vec<(String, u16, Option<u64>)>,
}

impl Graph {
    /// Resolve the graph of `cfg` (which must be valid: see [`Config::validate`]).
    pub fn from_config(cfg: &Config) -> Self {
        let ic = &cfg.integrator;
        let mut nodes = Vec::new();
        for kind in region_kinds() {
            let Some(rc) = cfg.regions.get(kind.name) else {
                continue;
            };
            let model = if rc.model.is_empty() {
                "no model".to_string()
            } else {
                format!("model {}", rc.model)
            };
            let fail = match rc.on_failure {
                OnFailure::Continue => "continue",
                OnFailure::Stop => "stop",
            };
            nodes.push(Node {
                name: kind.name,
                class: NodeClass::Region,
                rate_hz: Some(rc.rate_hz),
                enabled: rc.enabled,
                placement: if rc.placement.own_process(false) {
                    Placement::Process
                } else {
                    Placement::Thread
                },
                detail: format!(
                    "{model}, {} thread(s), stale after {} ms, on failure {fail}{}{}",
                    rc.threads,
                    rc.stale_after_ms,
                    if rc.placement == super::RegionPlacement::Auto {
                        " (own process under `up`)"
                    } else {
                        ""
                    },
                    if rc.enabled { "" } else { " (enabled = false)" }
                ),
            });
        }
        let wait = match ic.wait {
            super::WaitStrategy::Sleep => "sleep".to_string(),
            super::WaitStrategy::SleepSpin => format!("sleep+spin {} us", ic.spin_margin_us),
            super::WaitStrategy::Spin => "spin".to_string(),
        };
        nodes.push(Node {
            name: "integrator",
            class: NodeClass::Integrator,
            rate_hz: Some(ic.rate_hz),
            enabled: true,
            placement: Placement::RealtimeThread,
            detail: format!(
                "period {:.3} ms, width {}, wait {wait}, SCHED_FIFO {}",
                period_ns(ic.rate_hz) as f64 * 1e-6,
                ic.width,
                if ic.realtime_priority == 0 {
                    "off".to_string()
                } else {
                    ic.realtime_priority.to_string()
                }
            ),
        });
        for (name, detail) in [
            (
                "memory",
                format!(
                    "working memory {} ticks, consolidated in sleep",
                    ic.context_capacity
                ),
            ),
            ("emotion", "valence/arousal/surprise".to_string()),
        ] {
            if cfg.edges.iter().any(|e| e.from == name || e.to == name) {
                nodes.push(Node {
                    name,
                    class: NodeClass::Internal,
                    rate_hz: None,
                    enabled: true,
                    placement: Placement::InTick,
                    detail,
                });
            }
        }
        let body = match cfg.body.kind {
            BodyKind::Sim => "sim (MuJoCo)".to_string(),
            BodyKind::Kinematic => "kinematic model".to_string(),
            BodyKind::Serial => format!("serial {} at {} baud", cfg.body.port, cfg.body.baud),
        };
        let l = &cfg.limits;
        nodes.push(Node {
            name: "body",
            class: NodeClass::Body,
            rate_hz: None,
            enabled: true,
            placement: Placement::Body,
            detail: format!(
                "{body}; stale after {} ms; limits {} m/s, {} rad/s",
                cfg.body.stale_after_ms, l.max_linear_mps, l.max_angular_rps
            ),
        });
        let runs = |name: &str| nodes.iter().any(|n| n.name == name && n.enabled);
        let edges = cfg
            .edges
            .iter()
            .filter_map(|e| {
                let from = node_kind(&e.from)?.name;
                let to = node_kind(&e.to)?.name;
                Some(Edge {
                    from,
                    to,
                    gain: e.gain,
                    active: runs(from) && runs(to),
                    feeds: edge_feeds(from, to),
                })
            })
            .collect();
        let mut mux = vec![("estop".to_string(), 256u16, None)];
        for (name, s) in cfg.teleop.resolved_sources() {
            mux.push((name, u16::from(s.priority), Some(s.timeout_ms)));
        }
        mux.push((
            "autonomy".to_string(),
            u16::from(cfg.teleop.autonomy_priority),
            None,
        ));
        mux.sort_by_key(|m| std::cmp::Reverse(m.1));
        Self {
            rate_hz: ic.rate_hz,
            period_ns: period_ns(ic.rate_hz),
            nodes,
            edges,
            drowsiness_feedback: cfg.drowsiness.feedback,
            mux,
        }
    }

    /// Gain of the active edge `from -> to`, 0 when it is absent or cut.
    pub fn gain(&self, from: &str, to: &str) -> f64 {
        self.edges
            .iter()
            .filter(|e| e.active && e.from == from && e.to == to)
            .map(|e| e.gain)
            .sum()
    }

    /// The node named `name`, if it is in the graph.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Whether the node `name` is in the graph and runs.
    pub fn runs(&self, name: &str) -> bool {
        self.node(name).is_some_and(|n| n.enabled)
    }

    /// The graph as text, for `brainloop graph`.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let running = self.nodes.iter().filter(|n| n.enabled).count();
        let _ = writeln!(
            s,
            "brain graph: {running} nodes run, {} edges; integrator at {} Hz (period {:.3} ms)",
            self.edges.iter().filter(|e| e.active).count(),
            self.rate_hz,
            self.period_ns as f64 * 1e-6
        );
        let _ = writeln!(s, "\nnodes:");
        for n in &self.nodes {
            let rate = n.rate_hz.map(|r| format!("{r} Hz")).unwrap_or_default();
            let _ = writeln!(
                s,
                "  {:<15} {:<10} {:>9}  {:<16}  {}",
                n.name,
                match n.class {
                    NodeClass::Region => "region",
                    NodeClass::Integrator => "integrator",
                    NodeClass::Internal => "internal",
                    NodeClass::Body => "body",
                },
                rate,
                if n.enabled {
                    n.placement.label()
                } else {
                    "off"
                },
                n.detail
            );
        }
        let _ = writeln!(s, "\nedges (gain, what it feeds):");
        for e in &self.edges {
            let _ = writeln!(
                s,
                "  {:<15} -> {:<11} {:>5.2}  {}{}",
                e.from,
                e.to,
                e.gain,
                e.feeds,
                if e.active {
                    ""
                } else {
                    "  [cut: a node is off]"
                }
            );
        }
        let _ = writeln!(
            s,
            "  drowsiness feedback (missed deadlines, stale inputs): {}",
            if self.drowsiness_feedback {
                "fusion token, speed scale, shed level, sleep request, the policy's caution"
            } else {
                "off (computed and recorded, fed back nowhere)"
            }
        );
        let _ = writeln!(s, "\noverride mux (highest first):");
        for (name, prio, timeout) in &self.mux {
            let _ = match timeout {
                Some(t) => writeln!(s, "  {name:<15} priority {prio:>3}  timeout {t} ms"),
                None if name == "estop" => writeln!(s, "  {name:<15} always wins (latched)"),
                None => writeln!(s, "  {name:<15} priority {prio:>3}  every tick"),
            };
        }
        s
    }

    /// The graph in Graphviz dot.
    pub fn dot(&self) -> String {
        let mut s =
            String::from("digraph brain {\n  rankdir=LR;\n  node [fontname=\"sans-serif\"];\n");
        for n in &self.nodes {
            let shape = match n.class {
                NodeClass::Region => "box",
                NodeClass::Integrator => "doubleoctagon",
                NodeClass::Internal => "ellipse",
                NodeClass::Body => "box3d",
            };
            let rate = n.rate_hz.map(|r| format!("\\n{r} Hz")).unwrap_or_default();
            let style = if n.enabled { "" } else { ", style=dashed" };
            let _ = writeln!(
                s,
                "  {} [shape={shape}, label=\"{}{rate}\\n{}\"{style}];",
                n.name,
                n.name,
                n.placement.label()
            );
        }
        for e in &self.edges {
            let style = if e.active { "" } else { ", style=dashed" };
            let _ = writeln!(
                s,
                "  {} -> {} [label=\"{:.2}\"{style}];",
                e.from, e.to, e.gain
            );
        }
        let _ = writeln!(s, "  integrator -> body [label=\"motor stage\"];");
        if self.drowsiness_feedback {
            let _ = writeln!(
                s,
                "  integrator -> integrator [label=\"drowsiness\", style=dotted];"
            );
        }
        s.push_str("}\n");
        s
    }
}

/// The graph rules: every edge goes into a node that reads its source, no edge twice, every
/// configured region is read by some edge, and every internal node that is read is fed.
pub(super) fn check(cfg: &Config, errs: &mut Vec<ConfigError>) {
    let present = |name: &str| match node_kind(name) {
        Some(k) if k.class == NodeClass::Region => cfg.regions.contains_key(name),
        Some(_) => true,
        None => false,
    };
    let allowed_nodes = || {
        let mut v: Vec<&str> = region_kinds()
            .filter(|k| cfg.regions.contains_key(k.name))
            .map(|k| k.name)
            .collect();
        v.extend(
            NODE_KINDS
                .iter()
                .filter(|k| k.class != NodeClass::Region)
                .map(|k| k.name),
        );
        v.join(", ")
    };
    for name in cfg.regions.keys() {
        if !region_kinds().any(|k| k.name == name) {
            errs.push(ConfigError {
                path: format!("regions.{name}"),
                message: format!(
                    "unknown region (allowed: {})",
                    region_kinds()
                        .map(|k| k.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    for (k, e) in cfg.edges.iter().enumerate() {
        let mut ends_ok = true;
        for (end, node) in [("from", &e.from), ("to", &e.to)] {
            if present(node) {
                continue;
            }
            ends_ok = false;
            let message = match node_kind(node) {
                Some(_) => format!(
                    "edge names region `{node}`, which is not configured (add [regions.{node}] or remove this edge; nodes here: {})",
                    allowed_nodes()
                ),
                None => format!(
                    "edge names missing node `{node}` (allowed: {})",
                    allowed_nodes()
                ),
            };
            errs.push(ConfigError {
                path: format!("edges[{k}].{end}"),
                message,
            });
        }
        if e.from == e.to {
            errs.push(ConfigError {
                path: format!("edges[{k}]"),
                message: format!("self-loop on `{}` is not allowed", e.from),
            });
            continue;
        }
        if !ends_ok {
            continue;
        }
        if let Some(to) = node_kind(&e.to) {
            if !to.reads.contains(&e.from.as_str()) {
                let into: Vec<String> = to
                    .reads
                    .iter()
                    .map(|r| format!("{r} -> {}", to.name))
                    .collect();
                errs.push(ConfigError {
                    path: format!("edges[{k}]"),
                    message: format!(
                        "no node reads this edge: `{}` does not read `{}` (edges into {} allowed: {})",
                        e.to,
                        e.from,
                        e.to,
                        if into.is_empty() { "none".to_string() } else { into.join(", ") }
                    ),
                });
            }
        }
        if let Some(first) = cfg.edges[..k]
            .iter()
            .position(|d| d.from == e.from && d.to == e.to)
        {
            errs.push(ConfigError {
                path: format!("edges[{k}]"),
                message: format!(
                    "duplicate edge {} -> {} (already edges[{first}]); one edge, one gain",
                    e.from, e.to
                ),
            });
        }
    }
    for kind in region_kinds() {
        if cfg.regions.contains_key(kind.name) && !cfg.edges.iter().any(|e| e.from == kind.name) {
            errs.push(ConfigError {
                path: format!("regions.{}", kind.name),
                message: format!(
                    "the region is configured but no edge reads it (add an edge {} -> integrator, or remove [regions.{}])",
                    kind.name, kind.name
                ),
            });
        }
    }
    for internal in NODE_KINDS.iter().filter(|k| k.class == NodeClass::Internal) {
        let read = cfg.edges.iter().any(|e| e.from == internal.name);
        let fed = cfg.edges.iter().any(|e| e.to == internal.name);
        if read && !fed {
            errs.push(ConfigError {
                path: "edges".into(),
                message: format!(
                    "`{}` is read (edge {} -> ...) but nothing feeds it: add an edge {} -> {}",
                    internal.name,
                    internal.name,
                    internal.reads.join("|"),
                    internal.name
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text).map_err(|e| e.to_string())
    }

    #[test]
    fn regions_match_the_slot_order() {
        let names: Vec<&str> = region_kinds().map(|k| k.name).collect();
        let slots: Vec<&str> = crate::msg::RegionId::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names, slots);
    }

    #[test]
    fn default_graph_has_every_node_and_edge() {
        let g = Graph::from_config(&Config::default());
        for n in [
            "vision",
            "language",
            "audition",
            "proprioception",
            "integrator",
            "memory",
            "emotion",
            "body",
        ] {
            assert!(g.runs(n), "{n} missing from\n{}", g.text());
        }
        assert_eq!(g.edges.len(), 8);
        assert_eq!(g.period_ns, 20_000_000);
        assert_eq!(g.gain("audition", "integrator"), 0.5);
        assert_eq!(g.gain("vision", "memory"), 0.0);
        assert!(g.dot().contains("vision -> integrator"));
    }

    #[test]
    fn an_edge_nothing_reads_is_an_error() {
        let text = "[[edges]]\nfrom = \"vision\"\nto = \"memory\"\n";
        let mut c = Config::default();
        c.edges.push(super::super::EdgeConfig {
            from: "vision".into(),
            to: "memory".into(),
            gain: 1.0,
        });
        let errs = c.validate();
        assert!(
            errs.iter()
                .any(|e| e.message.contains("does not read `vision`")),
            "{errs:?}"
        );
        // Alone in a file, the same edge is refused too (and the unread regions named).
        let err = parse(text).unwrap_err();
        assert!(err.contains("does not read `vision`"), "{err}");
    }

    #[test]
    fn vision_and_proprioception_only() {
        let text = "[regions.vision]\n[regions.proprioception]\n";
        let c = parse(text).unwrap();
        let g = Graph::from_config(&c);
        let regions: Vec<&str> = g
            .nodes
            .iter()
            .filter(|n| n.class == NodeClass::Region)
            .map(|n| n.name)
            .collect();
        assert_eq!(regions, ["vision", "proprioception"]);
        // Missing keys of a known region come from its defaults, not a generic region's.
        assert_eq!(c.regions["vision"].model, "vision");
        assert_eq!(c.regions["proprioception"].rate_hz, 50.0);
        // Without [[edges]], the default wiring of the nodes present.
        assert!(g.gain("vision", "integrator") > 0.0);
        assert_eq!(g.gain("language", "integrator"), 0.0);
        assert!(g.runs("memory"));
    }

    #[test]
    fn an_edge_from_an_unconfigured_region_names_it() {
        let text = "[regions.vision]\n[[edges]]\nfrom = \"vision\"\nto = \"integrator\"\n[[edges]]\nfrom = \"audition\"\nto = \"integrator\"\n";
        let err = parse(text).unwrap_err();
        assert!(err.contains("edges[1].from"), "{err}");
        assert!(
            err.contains("region `audition`, which is not configured"),
            "{err}"
        );
    }

    #[test]
    fn a_region_no_edge_reads_is_an_error() {
        let text = "[regions.vision]\n[regions.audition]\n[[edges]]\nfrom = \"vision\"\nto = \"integrator\"\n";
        let err = parse(text).unwrap_err();
        assert!(err.contains("regions.audition"), "{err}");
        assert!(err.contains("no edge reads it"), "{err}");
    }

    #[test]
    fn duplicate_edges_and_unfed_memory_are_errors() {
        let text = "[[edges]]\nfrom = \"vision\"\nto = \"integrator\"\n[[edges]]\nfrom = \"vision\"\nto = \"integrator\"\n[[edges]]\nfrom = \"memory\"\nto = \"integrator\"\n";
        let err = parse(&format!("[regions.vision]\n{text}")).unwrap_err();
        assert!(err.contains("duplicate edge vision -> integrator"), "{err}");
        assert!(err.contains("`memory` is read"), "{err}");
    }

    #[test]
    fn a_disabled_region_is_listed_off_and_its_edge_cut() {
        let mut c = Config::default();
        c.regions.get_mut("audition").unwrap().enabled = false;
        assert!(c.validate().is_empty());
        let g = Graph::from_config(&c);
        assert!(!g.runs("audition"));
        assert_eq!(g.gain("audition", "integrator"), 0.0);
        assert!(g.text().contains("[cut"));
    }

    #[test]
    fn one_period() {
        assert_eq!(period_ns(50.0), 20_000_000);
        assert_eq!(period_ns(1000.0), 1_000_000);
        assert_eq!(period_ns(30.0), 33_333_333);
    }
}
