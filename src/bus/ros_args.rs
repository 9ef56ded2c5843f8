//! The ROS 2 launch contract: `--ros-args ... [--]` as `launch_ros` appends it to every `Node`
//! (`--ros-args -r __node:=brainloop -r __ns:=/robot1 --params-file /tmp/launch_params_x -p
//! use_sim_time:=true`), parsed the way `rcl` does so that a brainloop executable behaves like
//! any other ROS 2 node under `ros2 launch` and `ros2 run`:
//!
//! * [`split`] takes the ROS arguments out of the command line (every `--ros-args` block, up
//!   to `--` or the end), leaving the rest for the program's own parser;
//! * `-r __node:=NAME` / `__name`, `-r __ns:=/NS` rename the node and put it in a namespace;
//!   `-r from:=to` (or `node:from:=to`) remaps a topic; [`RosArgs::resolve`] expands a name the
//!   way `rcl` does (`~/x` -> `/ns/node/x`, `x` -> `/ns/x`, `/x` stays) and applies the remaps;
//! * `--params-file FILE` (YAML, `node: {ros__parameters: {...}}` with the `/**`, `/ns/node`
//!   and `*` wildcard keys) and `-p name:=value` set parameters; [`RosArgs::parameters`] gives
//!   the ones for this node, nested keys joined with `.`, the command line's `-p` last (it wins);
//! * the logging and enclave options (`--log-level`, `--enclave`, ...) are accepted and ignored.
//!
//! Nothing here knows about DDS or r2r: the DDS bridge, the r2r node and `main` all use it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// A parameter value, as YAML types it.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Double(f64),
    /// Text.
    Str(String),
    /// A list (of any of these).
    List(Vec<ParamValue>),
}

impl ParamValue {
    fn from_yaml(v: &serde_yaml::Value) -> Option<Self> {
        use serde_yaml::Value as Y;
        Some(match v {
            Y::Bool(b) => ParamValue::Bool(*b),
            Y::Number(n) => match n.as_i64() {
                Some(i) => ParamValue::Int(i),
                None => ParamValue::Double(n.as_f64()?),
            },
            Y::String(s) => ParamValue::Str(s.clone()),
            Y::Sequence(s) => {
                ParamValue::List(s.iter().map(Self::from_yaml).collect::<Option<_>>()?)
            }
            Y::Tagged(t) => return Self::from_yaml(&t.value),
            Y::Null | Y::Mapping(_) => return None,
        })
    }

    /// The value as a bool, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            ParamValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as a number (an integer is a number too).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// The value as text (a string; numbers and bools are not converted).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ParamValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Double(d) => write!(f, "{d}"),
            ParamValue::Str(s) => write!(f, "{s:?}"),
            ParamValue::List(l) => {
                write!(f, "[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{v}")?;
                }
                write!(f, "]")
            }
        }
    }
}

/// A bad `--ros-args` block.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RosArgsError {
    /// An option without its value (`-r` at the end).
    #[error("--ros-args: {0} needs a value")]
    MissingValue(String),
    /// A remap or parameter without `:=`.
    #[error("--ros-args: {option} {value:?}: expected NAME:=VALUE")]
    NoAssign {
        /// The option.
        option: String,
        /// What followed it.
        value: String,
    },
    /// An option `rcl` does not know.
    #[error("--ros-args: unknown option {0:?} (known: -r/--remap, -p/--param, --params-file, --log-level, -e/--enclave, --[enable|disable]-*-logs)")]
    Unknown(String),
    /// A node name or namespace that ROS 2 would refuse.
    #[error("--ros-args: invalid {what} {value:?}: {why}")]
    Invalid {
        /// `node name` or `namespace`.
        what: &'static str,
        /// The value.
        value: String,
        /// Why.
        why: &'static str,
    },
    /// A params file that cannot be read or is not ROS 2 parameter YAML.
    #[error("--params-file {path}: {why}")]
    ParamsFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// One `-r` rule, optionally for one node only (`node:from:=to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remap {
    /// The node it is for, or every node.
    pub node: Option<String>,
    /// Name to replace.
    pub from: String,
    /// Its replacement.
    pub to: String,
}

/// The ROS 2 arguments of one command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RosArgs {
    /// Whether the command line had a `--ros-args` block at all.
    pub present: bool,
    /// `-r __node:=` (or `__name`).
    pub node_name: Option<String>,
    /// `-r __ns:=`.
    pub namespace: Option<String>,
    /// The other `-r` rules, in order.
    pub remaps: Vec<Remap>,
    /// `--params-file` files, in order.
    pub params_files: Vec<PathBuf>,
    /// `-p` parameters: (node or all, name, value), in order.
    pub params: Vec<(Option<String>, String, ParamValue)>,
}

/// Split `args` (the program name first) into the program's own arguments and the ROS ones.
pub fn split(
    args: impl IntoIterator<Item = OsString>,
) -> Result<(Vec<OsString>, RosArgs), RosArgsError> {
    let mut rest = Vec::new();
    let mut ros = RosArgs::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a != "--ros-args" {
            rest.push(a);
            continue;
        }
        ros.present = true;
        while let Some(a) = it.next() {
            let a = a.to_string_lossy().into_owned();
            let mut value = |opt: &str| {
                it.next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .ok_or_else(|| RosArgsError::MissingValue(opt.to_string()))
            };
            match a.as_str() {
                "--" => break,
                "--ros-args" => {}
                "-r" | "--remap" => {
                    let v = value(&a)?;
                    ros.remap(&a, &v)?;
                }
                "-p" | "--param" => {
                    let v = value(&a)?;
                    let (node, name, val) = assign(&a, &v)?;
                    let parsed = serde_yaml::from_str::<serde_yaml::Value>(val)
                        .ok()
                        .and_then(|y| ParamValue::from_yaml(&y))
                        .unwrap_or_else(|| ParamValue::Str(val.to_string()));
                    ros.params.push((node, name.to_string(), parsed));
                }
                "--params-file" => ros.params_files.push(value(&a)?.into()),
                "--log-level" | "--log-config-file" | "-e" | "--enclave" | "--log-file-name" => {
                    value(&a)?;
                }
                s if s.starts_with("--enable-") || s.starts_with("--disable-") => {}
                _ => return Err(RosArgsError::Unknown(a)),
            }
        }
    }
    Ok((rest, ros))
}

/// `[node:]name:=value` -> its parts.
fn assign<'a>(opt: &str, v: &'a str) -> Result<(Option<String>, &'a str, &'a str), RosArgsError> {
    let (lhs, rhs) = v.split_once(":=").ok_or_else(|| RosArgsError::NoAssign {
        option: opt.to_string(),
        value: v.to_string(),
    })?;
    // `node:name` (a node prefix never starts with `/` or `~`; `:` is not legal in names).
    Ok(match lhs.split_once(':') {
        Some((node, name)) => (Some(node.to_string()), name, rhs),
        None => (None, lhs, rhs),
    })
}

fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl RosArgs {
    fn remap(&mut self, opt: &str, v: &str) -> Result<(), RosArgsError> {
        let (node, from, to) = assign(opt, v)?;
        match from {
            "__node" | "__name" => {
                if !valid_token(to) {
                    return Err(RosArgsError::Invalid {
                        what: "node name",
                        value: to.into(),
                        why: "letters, digits and _, not starting with a digit",
                    });
                }
                self.node_name = Some(to.to_string());
            }
            "__ns" => {
                let ns = if to.starts_with('/') {
                    to.to_string()
                } else {
                    format!("/{to}")
                };
                let ns = if ns.len() > 1 {
                    ns.trim_end_matches('/').to_string()
                } else {
                    ns
                };
                if ns != "/" && !ns[1..].split('/').all(valid_token) {
                    return Err(RosArgsError::Invalid {
                        what: "namespace",
                        value: to.into(),
                        why: "/-separated tokens of letters, digits and _",
                    });
                }
                self.namespace = Some(ns);
            }
            _ => self.remaps.push(Remap {
                node,
                from: from.to_string(),
                to: to.to_string(),
            }),
        }
        Ok(())
    }

    /// The node's name: `-r __node:=` or `default`.
    pub fn node(&self, default: &str) -> String {
        self.node_name
            .clone()
            .unwrap_or_else(|| default.to_string())
    }

    /// The node's namespace: `-r __ns:=` or `/`.
    pub fn ns(&self) -> String {
        self.namespace.clone().unwrap_or_else(|| "/".into())
    }

    /// The fully qualified name of topic `name` for this node (default name `default_node`):
    /// expanded as `rcl` does, then remapped (first matching rule wins).
    pub fn resolve(&self, name: &str, default_node: &str) -> String {
        let node = self.node(default_node);
        let ns = self.ns();
        let full = expand(name, &ns, &node);
        for r in &self.remaps {
            if r.node.as_deref().is_some_and(|n| n != node) {
                continue;
            }
            if expand(&r.from, &ns, &node) == full {
                return expand(&r.to, &ns, &node);
            }
        }
        full
    }

    /// This node's parameters: from every params file (in order, the entries whose key matches
    /// the node), then `-p` (for all nodes or this one). Nested keys are joined with `.`.
    pub fn parameters(
        &self,
        default_node: &str,
    ) -> Result<BTreeMap<String, ParamValue>, RosArgsError> {
        let node = self.node(default_node);
        let fq = expand("~", &self.ns(), &node);
        let mut out = BTreeMap::new();
        for path in &self.params_files {
            let bad = |why: String| RosArgsError::ParamsFile {
                path: path.clone(),
                why,
            };
            let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
            let doc: serde_yaml::Value =
                serde_yaml::from_str(&text).map_err(|e| bad(e.to_string()))?;
            let map = match doc {
                serde_yaml::Value::Mapping(m) => m,
                serde_yaml::Value::Null => continue,
                _ => return Err(bad("not a mapping of node names".into())),
            };
            for (k, v) in map {
                let key = k
                    .as_str()
                    .ok_or_else(|| bad("a node key is not text".into()))?;
                if !node_key_matches(key, &fq) {
                    continue;
                }
                let params = v
                    .get("ros__parameters")
                    .ok_or_else(|| bad(format!("{key}: no ros__parameters")))?;
                flatten("", params, &mut out).map_err(|w| bad(format!("{key}: {w}")))?;
            }
        }
        for (n, name, v) in &self.params {
            if n.as_deref().is_none_or(|n| n == node) {
                out.insert(name.clone(), v.clone());
            }
        }
        Ok(out)
    }
}

/// `rcl` name expansion: `~` is the node, relative names live in the namespace.
fn expand(name: &str, ns: &str, node: &str) -> String {
    let base = if ns == "/" {
        String::new()
    } else {
        ns.to_string()
    };
    if name == "~" {
        format!("{base}/{node}")
    } else if let Some(rest) = name.strip_prefix("~/") {
        format!("{base}/{node}/{rest}")
    } else if name.starts_with('/') {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// Whether params-file key `key` (`/**`, `/ns/node`, `node`, `/**/node`, `/ns/*`) is for the
/// node whose fully qualified name is `fq`.
fn node_key_matches(key: &str, fq: &str) -> bool {
    let key = key.trim();
    if !key.starts_with('/') {
        // A bare node name: that node in the root namespace, or any (`rcl` prepends `/`).
        return fq.rsplit('/').next() == Some(key) || fq == format!("/{key}");
    }
    let k: Vec<&str> = key[1..].split('/').collect();
    let f: Vec<&str> = fq[1..].split('/').collect();
    glob(&k, &f)
}

fn glob(k: &[&str], f: &[&str]) -> bool {
    match (k.first(), f.first()) {
        (None, None) => true,
        (Some(&"**"), _) => glob(&k[1..], f) || (!f.is_empty() && glob(k, &f[1..])),
        (Some(&"*"), Some(_)) => glob(&k[1..], &f[1..]),
        (Some(a), Some(b)) if a == b => glob(&k[1..], &f[1..]),
        _ => false,
    }
}

fn flatten(
    prefix: &str,
    v: &serde_yaml::Value,
    out: &mut BTreeMap<String, ParamValue>,
) -> Result<(), String> {
    let map = v
        .as_mapping()
        .ok_or_else(|| "ros__parameters is not a mapping".to_string())?;
    for (k, v) in map {
        let k = match k {
            serde_yaml::Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other)
                .map_err(|e| e.to_string())?
                .trim()
                .to_string(),
        };
        let name = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        if v.is_mapping() {
            flatten(&name, v, out)?;
        } else {
            let p = ParamValue::from_yaml(v).ok_or_else(|| format!("{name}: no value"))?;
            out.insert(name, p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn launch_ros_arguments_are_taken_out() {
        let (rest, r) = split(os(&[
            "brainloop",
            "run",
            "--dds",
            "--ros-args",
            "-r",
            "__node:=brain",
            "-r",
            "__ns:=/robot1",
            "-p",
            "use_sim_time:=true",
            "--log-level",
            "info",
            "--disable-rosout-logs",
            "--",
            "--seconds",
            "3",
        ]))
        .unwrap();
        assert_eq!(rest, os(&["brainloop", "run", "--dds", "--seconds", "3"]));
        assert!(r.present);
        assert_eq!(r.node("brainloop"), "brain");
        assert_eq!(r.ns(), "/robot1");
        assert_eq!(
            r.parameters("brainloop").unwrap()["use_sim_time"],
            ParamValue::Bool(true)
        );
        let (rest, r) = split(os(&["brainloop", "graph"])).unwrap();
        assert_eq!(rest, os(&["brainloop", "graph"]));
        assert!(!r.present);
        assert_eq!(r.node("brainloop"), "brainloop");
    }

    #[test]
    fn bad_ros_arguments_are_refused_clearly() {
        let e = |v: &[&str]| split(os(v)).unwrap_err().to_string();
        assert!(e(&["b", "--ros-args", "-r"]).contains("-r needs a value"));
        assert!(e(&["b", "--ros-args", "-p", "x"]).contains("NAME:=VALUE"));
        assert!(e(&["b", "--ros-args", "--bogus"]).contains("unknown option"));
        assert!(e(&["b", "--ros-args", "-r", "__node:=9x"]).contains("invalid node name"));
        assert!(e(&["b", "--ros-args", "-r", "__ns:=/a b"]).contains("invalid namespace"));
    }

    #[test]
    fn names_expand_and_remap_like_rcl() {
        let (_, r) = split(os(&[
            "b",
            "--ros-args",
            "-r",
            "__ns:=/r1",
            "-r",
            "cmd_vel:=diff_drive/cmd_vel",
            "-r",
            "other:~/instruction:=/x",
            "-r",
            "brainloop:~/estop:=/safety/estop",
        ]))
        .unwrap();
        assert_eq!(r.resolve("cmd_vel", "brainloop"), "/r1/diff_drive/cmd_vel");
        assert_eq!(r.resolve("odom", "brainloop"), "/r1/odom");
        assert_eq!(r.resolve("/tf", "brainloop"), "/tf");
        assert_eq!(
            r.resolve("~/instruction", "brainloop"),
            "/r1/brainloop/instruction"
        );
        assert_eq!(r.resolve("~/estop", "brainloop"), "/safety/estop");
        let (_, r) = split(os(&["b"])).unwrap();
        assert_eq!(r.resolve("~/estop", "brainloop"), "/brainloop/estop");
        assert_eq!(r.resolve("cmd_vel", "brainloop"), "/cmd_vel");
    }

    #[test]
    fn params_files_match_nodes_and_the_command_line_wins() {
        let dir = std::env::temp_dir().join(format!("ros_args_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p.yaml");
        std::fs::write(
            &f,
            "/**:\n  ros__parameters:\n    use_sim_time: true\n    odom_frame: odom\n\
             /r1/brainloop:\n  ros__parameters:\n    stamped: false\n    limits:\n      max_v: 0.3\n\
             other:\n  ros__parameters:\n    stamped: true\n\
             /**/brainloop:\n  ros__parameters:\n    wheels: [left, right]\n",
        )
        .unwrap();
        let (_, r) = split(os(&[
            "b",
            "--ros-args",
            "-r",
            "__ns:=/r1",
            "--params-file",
            f.to_str().unwrap(),
            "-p",
            "odom_frame:=odom2",
            "-p",
            "other:x:=1",
        ]))
        .unwrap();
        let p = r.parameters("brainloop").unwrap();
        assert_eq!(p["use_sim_time"], ParamValue::Bool(true));
        assert_eq!(p["stamped"], ParamValue::Bool(false));
        assert_eq!(p["limits.max_v"], ParamValue::Double(0.3));
        assert_eq!(p["odom_frame"], ParamValue::Str("odom2".into()));
        assert_eq!(
            p["wheels"],
            ParamValue::List(vec![
                ParamValue::Str("left".into()),
                ParamValue::Str("right".into())
            ])
        );
        assert!(!p.contains_key("x"));
        std::fs::write(&f, "brainloop: [1, 2]\n").unwrap();
        let e = r.parameters("brainloop").unwrap_err().to_string();
        assert!(e.contains("p.yaml") && e.contains("ros__parameters"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
