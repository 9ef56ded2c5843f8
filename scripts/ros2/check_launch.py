#!/usr/bin/env python3
"""Static check of launch/*.launch.py without ROS 2 (which cannot be installed here).

Each launch file must parse, define generate_launch_description(), declare every
LaunchConfiguration it uses, name only packages/executables that exist (brainloop's own from
Cargo.toml / package.xml; other ROS packages from a list of known package -> executables), pass
brainloop only subcommands and flags that src/main.rs defines, and reference only files from the
package share directory that exist in the repository and are installed to share
(Cargo.toml [package.metadata.ros] install_to_share). A `scenario` argument's default must name a
scenario in scenarios/, and a `brainloop scenario export` command line may use only flags
src/main.rs defines.
Exit 1 with one line per problem.
"""
import ast
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
KNOWN = {  # ROS 2 packages we launch, and their executables (Jazzy)
    "robot_state_publisher": {"robot_state_publisher"},
    "ros_gz_sim": {"create"},
    "ros_gz_bridge": {"parameter_bridge"},
}
KNOWN_SHARE = {"ros_gz_sim": {"launch/gz_sim.launch.py"}}

cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
pkg_xml = (ROOT / "package.xml").read_text()
pkg_name = re.search(r"<name>(.*?)</name>", pkg_xml).group(1)
bins = {b["name"] for b in cargo.get("bin", [])} or {cargo["package"]["name"]}
share_dirs = set(cargo["package"].get("metadata", {}).get("ros", {}).get("install_to_share", []))
main_rs = (ROOT / "src" / "main.rs").read_text()
problems = []


def const(node):
    return node.value if isinstance(node, ast.Constant) else None


def kw(call, name):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def resolve(node, consts):
    """A constant, or a module-level NAME = "constant"."""
    if isinstance(node, ast.Name):
        return consts.get(node.id)
    return const(node)


def scenario_exists(value):
    if value.endswith(".toml"):
        return (ROOT / value).is_file()
    return (ROOT / "scenarios" / f"{value}.toml").is_file()


def subcommand_exists(name):
    variant = "".join(p.capitalize() for p in re.split(r"[-_]", name))
    return re.search(rf"^\s*{variant}\b", main_rs, re.M) is not None


def flag_exists(flag):
    field = flag.lstrip("-").replace("-", "_")
    return re.search(rf"\b{field}\s*:", main_rs) is not None


files = sorted((ROOT / "launch").glob("*.launch.py"))
if not files:
    problems.append("launch/: no *.launch.py files")
for f in files:
    rel = f.relative_to(ROOT)
    try:
        tree = ast.parse(f.read_text(), filename=str(f))
    except SyntaxError as e:
        problems.append(f"{rel}: does not parse: {e}")
        continue
    funcs = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    if "generate_launch_description" not in funcs:
        problems.append(f"{rel}: no generate_launch_description()")
    # share directories: variable = get_package_share_directory("pkg")
    share_vars = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call):
            fn = n.value.func
            if getattr(fn, "id", None) == "get_package_share_directory" and n.value.args:
                for t in n.targets:
                    if isinstance(t, ast.Name):
                        share_vars[t.id] = const(n.value.args[0])
    consts = {t.id: const(n.value) for n in tree.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name) and const(n.value) is not None}
    declared, used = set(), set()
    for n in ast.walk(tree):
        # A `brainloop scenario export ...` command line (run before gz starts).
        if isinstance(n, ast.List):
            vals = [const(e) for e in n.elts]
            for i in range(len(vals) - 1):
                if vals[i] == "scenario" and vals[i + 1] == "export":
                    if not subcommand_exists("scenario"):
                        problems.append(f"{rel}: brainloop has no subcommand 'scenario'")
                    for v in vals[i + 2:]:
                        if isinstance(v, str) and v.startswith("--") and not flag_exists(v):
                            problems.append(f"{rel}: brainloop scenario export has no flag {v}")
        if not isinstance(n, ast.Call):
            continue
        name = getattr(n.func, "id", None) or getattr(n.func, "attr", None)
        if name == "DeclareLaunchArgument" and n.args:
            arg = const(n.args[0])
            declared.add(arg)
            if arg == "scenario":
                default = resolve(kw(n, "default_value"), consts)
                if not isinstance(default, str) or not scenario_exists(default):
                    problems.append(f"{rel}: scenario default {default!r} is not a file in scenarios/")
        elif name == "ExecutableInPackage":
            pkg, exe = const(kw(n, "package")), const(kw(n, "executable"))
            if pkg == pkg_name and exe not in bins:
                problems.append(f"{rel}: executable {exe!r} is not a binary of {pkg_name}")
            elif pkg != pkg_name and exe not in KNOWN.get(pkg, set()):
                problems.append(f"{rel}: unknown executable {exe!r} in package {pkg!r}")
        elif name == "LaunchConfiguration" and n.args:
            used.add(const(n.args[0]))
        elif name == "join" and n.args and isinstance(n.args[0], ast.Name) and n.args[0].id in share_vars:
            pkg = share_vars[n.args[0].id]
            parts = [const(a) for a in n.args[1:]]
            if None in parts:
                continue
            path = "/".join(parts)
            if pkg == pkg_name:
                if not (ROOT / path).exists():
                    problems.append(f"{rel}: references {path}, which does not exist")
                if parts[0] not in share_dirs:
                    problems.append(f"{rel}: {parts[0]}/ is not installed to share (Cargo.toml install_to_share)")
            elif path not in KNOWN_SHARE.get(pkg, set()):
                problems.append(f"{rel}: unknown file {path} in package {pkg}")
        elif name == "Node":
            pkg, exe = const(kw(n, "package")), const(kw(n, "executable"))
            if pkg == pkg_name:
                if exe not in bins:
                    problems.append(f"{rel}: executable {exe!r} is not a binary of {pkg_name}")
                args = kw(n, "arguments")
                if isinstance(args, ast.List) and args.elts:
                    sub = const(args.elts[0])
                    if sub is None or not subcommand_exists(sub):
                        problems.append(f"{rel}: brainloop has no subcommand {sub!r}")
                    for a in args.elts[1:]:
                        v = const(a)
                        if isinstance(v, str) and v.startswith("--") and not flag_exists(v):
                            problems.append(f"{rel}: brainloop {sub} has no flag {v}")
            elif pkg in KNOWN:
                if exe not in KNOWN[pkg]:
                    problems.append(f"{rel}: package {pkg} has no executable {exe!r}")
            else:
                problems.append(f"{rel}: unknown package {pkg!r}")
    for u in sorted(used - declared):
        problems.append(f"{rel}: LaunchConfiguration {u!r} is not declared")

for p in problems:
    print(p)
print(f"launch check: {len(files)} files, {len(problems)} problems")
sys.exit(1 if problems else 0)
