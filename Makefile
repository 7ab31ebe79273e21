# Every target does its own set-up on a fresh machine (Rust + Python 3 + pip): scripts/torch-env runs
# scripts/setup-libtorch, which installs torch 2.11 into .venv/ once (or uses MEDXFER_PYTHON's).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
TORCH := source scripts/torch-env &&
BIN := target/release/medxfer
# `make run` works in its own demo home unless MEDXFER_HOME names one.
DEMO_HOME := $(CURDIR)/target/demo-home

.PHONY: build run test lint bench chaos setup clean

setup:
	scripts/setup-libtorch >/dev/null

build:
	$(TORCH) cargo build --release --locked

run: build
	@export MEDXFER_HOME="$${MEDXFER_HOME:-$(DEMO_HOME)}"; \
	test -e "$$MEDXFER_HOME/datasets/demo-cls/.complete" || $(BIN) data demo "$$MEDXFER_HOME/datasets"; \
	exec $(BIN) tui

test:
	$(TORCH) cargo test --locked --all-targets

lint:
	cargo fmt --check
	$(TORCH) cargo clippy --locked --all-targets -- -D warnings

bench: build
	$(TORCH) scripts/bench

# The short form of tests/chaos runs in `make test`; MEDXFER_CHAOS_LONG=1 selects the long form
# (12 runs, a longer fault window). MEDXFER_CHAOS_SEED=N replays a printed fault schedule.
chaos: build
	$(TORCH) MEDXFER_CHAOS_LONG=1 cargo test --locked --test chaos -- --nocapture

clean:
	cargo clean
