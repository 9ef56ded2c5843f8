# brainloop: two set-up commands.
#   make run   - the robot brain driving the embedded simulated robot (bootstraps first)
#   make test  - the whole test suite (bootstraps first)
SHELL := /bin/bash
CARGO ?= cargo
BIN := $(or $(CARGO_TARGET_DIR),target)/release/brainloop
RUN_ARGS ?=

.PHONY: run test bootstrap build fmt-check clippy cargo-test firmware-test checks-urdf clean

bootstrap:
	@bash scripts/bootstrap.sh

build: bootstrap
	$(CARGO) build --release

run: build
	$(BIN) sim $(RUN_ARGS)

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: bootstrap
	$(CARGO) clippy --all-targets -- -D warnings

cargo-test: bootstrap
	$(CARGO) test --release

test: bootstrap fmt-check clippy cargo-test
	@echo "make test: all suites passed"

clean:
	$(CARGO) clean
