//! The source tree shows the brain: no top-level module imports from one that imports it back
//! (the feedback loops of the brain are runtime edges, not import cycles), and every folder's
//! `mod.rs` opens with a doc that says what it is for and what it may depend on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Top-level module -> the top-level modules it names through `crate::...`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "main" || top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for line in text.lines() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != top {
                    deps.entry(top.clone()).or_default().insert(name);
                }
            }
        }
    }
    deps
}

#[test]
fn no_folder_imports_one_that_imports_it_back() {
    let deps = imports();
    // Strongly connected components by reachability: a cycle of any length is reported.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(n) = stack.pop() {
            for d in deps.get(&n).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
        seen
    };
    let mut cycles = Vec::new();
    for a in deps.keys() {
        for b in reach(a) {
            if a < &b && reach(&b).contains(a) {
                cycles.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "module cycles: {cycles:?}\nimports: {deps:#?}"
    );
}

#[test]
fn leaves_depend_on_nothing_and_the_brain_never_on_experiments() {
    let deps = imports();
    for leaf in ["util", "world", "msg"] {
        let d = deps.get(leaf).cloned().unwrap_or_default();
        assert!(d.is_empty(), "{leaf} imports {d:?}");
    }
    for (m, d) in &deps {
        if m != "experiment" && m != "robot" && m != "ros2" {
            assert!(!d.contains("experiment"), "{m} imports experiment");
        }
    }
    for m in [
        "integrator",
        "regions",
        "grounding",
        "bus",
        "config",
        "brain",
    ] {
        let d = deps.get(m).cloned().unwrap_or_default();
        assert!(!d.contains("sim"), "{m} imports the simulator: {d:?}");
    }
}

#[test]
fn every_folder_says_what_it_is_for_and_may_depend_on() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if !p.is_dir() {
            continue;
        }
        let m = p.join("mod.rs");
        let text = std::fs::read_to_string(&m).unwrap();
        let head: Vec<&str> = text.lines().take_while(|l| l.starts_with("//!")).collect();
        assert!(!head.is_empty(), "{} has no module doc", m.display());
        let first = head.iter().take(4).copied().collect::<Vec<_>>().join(" ");
        assert!(
            first.to_lowercase().contains("depend"),
            "{}: the opening lines should say what it may depend on: {first}",
            m.display()
        );
    }
}
