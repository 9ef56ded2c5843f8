# brainloop: two set-up commands.
#   make run   - the robot brain driving the embedded simulated robot (bootstraps first)
#   make test  - the whole test suite (bootstraps first)
SHELL := /bin/bash
CARGO ?= cargo
BIN := $(or $(CARGO_TARGET_DIR),target)/release/brainloop
RUN_ARGS ?=

.PHONY: run test bootstrap build fmt-check clippy cargo-test check-ros2 check-features clean
PY := .cache/venv/bin/python

bootstrap:
	@bash scripts/bootstrap.sh

build: bootstrap
	$(CARGO) build --release

run: build
	$(BIN) sim $(RUN_ARGS)

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: bootstrap
	$(CARGO) clippy --release --all-targets -- -D warnings

cargo-test: bootstrap
	$(CARGO) test --release

# ROS 2 without ROS 2: launch files name real things; CDR bytes still match rosbags' encoder, and
# so do brainloop_msgs' bytes, type hashes and rmw_zenoh attachments (tests/wire.rs).
check-ros2: bootstrap
	$(PY) scripts/ros2/check_launch.py
	$(PY) scripts/ros2/gen_cdr_fixtures.py /tmp/brainloop-cdr-$$$$.json && \
	  diff -q /tmp/brainloop-cdr-$$$$.json tests/fixtures/cdr/cases.json && rm -f /tmp/brainloop-cdr-$$$$.json
	$(PY) scripts/ros2/gen_msg_fixtures.py /tmp/brainloop-wire-$$$$.json && \
	  diff -q /tmp/brainloop-wire-$$$$.json tests/fixtures/wire/cases.json && rm -f /tmp/brainloop-wire-$$$$.json
	$(PY) scripts/ros2/gen_jazzy_fixtures.py /tmp/brainloop-jazzy-$$$$.json && \
	  diff -q /tmp/brainloop-jazzy-$$$$.json tests/fixtures/cdr/jazzy.json && rm -f /tmp/brainloop-jazzy-$$$$.json

# Gazebo without Gazebo: the official SDFormat parser (Debian libsdformat 12, SDF 1.9) loads the
# xacro-expanded URDF and every scenario exported by `brainloop scenario export` (all of
# scenarios/, three seeds each); the robot's drive, joint-state and sensor systems, the worlds'
# systems and models, and config/ros_gz_bridge.yaml must agree (scripts/ros2/check_gazebo.py).
SDF_CHECK := .cache/bin/sdf_check
$(SDF_CHECK): scripts/ros2/sdf_check.cc | bootstrap
	@mkdir -p $(dir $@)
	g++ -std=c++17 -O1 -Wall -Wextra $< $$(pkg-config --cflags --libs sdformat12) -o $@
.PHONY: check-gazebo
check-gazebo: build $(SDF_CHECK)
	$(PY) scripts/ros2/check_gazebo.py --bin $(BIN) --sdf-check $(SDF_CHECK)

test: check-gazebo

# Optional features, built together in one extra graph: `dds` (ROS 2 over DDS without a ROS 2
# installation) and `camera` (OpenCV VideoCapture). Lints both, unit-tests the bridge and the
# camera (a video file OpenCV writes plays back as RGB), then checks the bridge against Cyclone
# DDS both ways; the interop test re-runs itself in a private network namespace (`unshare -n`,
# root) so discovery multicast stays on this machine.
FEATURES := dds,camera
check-features: bootstrap
	$(CARGO) clippy --release --features $(FEATURES) --all-targets -- -D warnings
	$(CARGO) test --release --features $(FEATURES) --lib -- bus::dds regions::camera
	$(CARGO) test --release --features $(FEATURES) --test dds_interop

# Firmware: AVR build and size, C unit tests of the core on the shared vectors, a bounded libFuzzer
# run on the frame parser (FUZZ_SECONDS, default 10; `make -C firmware fuzz-long` for 10 min), then
# the hardware-in-the-loop tests: the real Rust link against the real .elf on the emulated board,
# and `sim --hil` episodes with that firmware driving the simulated wheels.
.PHONY: firmware-test
FUZZ_SECONDS ?= 10
firmware-test: bootstrap
	$(MAKE) -C firmware all test sim
	$(MAKE) -C firmware fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)
	$(CARGO) test --release --test link_vectors --test hil --test hil_pty --test sim_hil

test: firmware-test

# Regions: every model file matches models/manifest.toml, and Python onnxruntime still gives the
# committed fixtures' expected outputs (tests/regions.rs holds Rust to them within 1e-4).
.PHONY: check-models bench-regions
check-models: build
	$(BIN) models verify
	$(PY) scripts/models/make_fixtures.py check
bench-regions: build
	$(BIN) bench regions

# Integrator: the real loop at 100 Hz, unloaded and beside 2 CPU burners, and tick cost vs context.
.PHONY: bench-loop
bench-loop: build
	$(BIN) bench loop --seconds 20 --rate 100
	$(BIN) bench loop --seconds 20 --rate 100 --stress 2 --context 4096
	$(CARGO) bench --bench loop_context

test: check-models

# Slow suites (ignored by plain `cargo test`): whole simulated episodes with the real models —
# a meaningless instruction leaves the robot where it started; the held-out paraphrase set's
# success rate is printed (GROUNDING_EVAL_SEEDS seeds per phrasing).
.PHONY: check-slow
GROUNDING_EVAL_SEEDS ?= 1
check-slow: build
	GROUNDING_EVAL_SEEDS=$(GROUNDING_EVAL_SEEDS) $(CARGO) test --release --test grounding_eval -- --ignored --nocapture

test: check-slow

# Reliability: a fault-injection soak in real time on the kinematic body behind the simulated
# board (seeded faults: CPU burners on both cores, the proprioception region crashing / hanging /
# returning NaN, e-stop storms, teleop flapping, clock steps, serial garbage and bit flips, the
# language model file vanishing). Fails on any wrong command at the motors or any recording
# lost; prints per fault class injected, detected, time to a safe state, recovered. The bounded
# fuzzing of the loaders, decoders and the console runs in cargo-test (tests/fuzz_inputs.rs,
# FUZZ_CASES per property, default 1000).
.PHONY: check-soak
SOAK_MINUTES ?= 2
SOAK_SEED ?= 1
check-soak: build
	$(BIN) soak --minutes $(SOAK_MINUTES) --body kinematic --seed $(SOAK_SEED) --report reports/soak-check --overwrite

test: check-soak

test: bootstrap fmt-check clippy cargo-test check-ros2 check-features
	@echo "make test: all suites passed"

clean:
	$(CARGO) clean
