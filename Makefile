# kiray-imaging: `make demo` to see it work, `make test` to check everything. `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The layer wheel is manylinux x86_64: on such a host the tests run the very binary that ships.
HOST := $(shell uname -sm)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup layer package rehearse rehearse-tools deploy-local demo test lint rust-test py-test clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt
	@command -v cargo >/dev/null || { echo "setup: a Rust toolchain is needed (https://rustup.rs)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# cargo-about writes the layer's licence notices. Its version is pinned once, in layer/build.py; built from crates.io
# with its own Cargo.lock (--locked), once per machine (a few minutes), skipped when that version is installed.
CARGO_ABOUT_VERSION := $(shell sed -n 's/^CARGO_ABOUT_VERSION = "\(.*\)"/\1/p' layer/build.py)
.PHONY: cargo-about
cargo-about:
	@[ "$$(cargo-about --version 2>/dev/null)" = "cargo-about $(CARGO_ABOUT_VERSION)" ] \
	  || cargo install --locked --features cli cargo-about@$(CARGO_ABOUT_VERSION)

# System packages (nasm for the build, Ghostscript's CMYK profile for one test, bubblewrap for the rehearsal's
# sandbox): installed where the machine lets us (apt-get as root or via sudo, Homebrew), else the one command to run
# is printed.
.PHONY: system-deps-build system-deps-test
system-deps-build:
	@scripts/system-deps.sh nasm
system-deps-test:
	@scripts/system-deps.sh cmyk-profile

# cargo-cyclonedx writes the Rust part of the layer's SBOM (layer/sbom.py pins it, as build.py pins cargo-about).
CARGO_CYCLONEDX_VERSION := $(shell sed -n 's/^CARGO_CYCLONEDX_VERSION = "\(.*\)"/\1/p' layer/sbom.py)
.PHONY: cargo-cyclonedx
cargo-cyclonedx:
	@[ "$$(cargo-cyclonedx cyclonedx --version 2>/dev/null | awk '{print $$NF}')" = "$(CARGO_CYCLONEDX_VERSION)" ] \
	  || cargo install --locked cargo-cyclonedx@$(CARGO_CYCLONEDX_VERSION)

layer: $(VENV)/.installed cargo-about cargo-cyclonedx system-deps-build ## build the manylinux2014 abi3 wheel with zig, verify it, zip the layer
	$(PY) layer/build.py

setup: $(VENV)/.installed node_modules/.installed layer ## install everything: .venv, node_modules, the core (for invoke local)
ifeq ($(HOST),Linux x86_64)
	@wheel=$$(ls layer/build/wheels/*.whl); sum=$$(sha256sum $$wheel | cut -d' ' -f1); \
	if [ "$$(cat $(VENV)/.core 2>/dev/null)" != "$$sum" ]; then \
	  $(PY) -m pip install -q --force-reinstall --no-deps $$wheel && echo $$sum > $(VENV)/.core && echo "setup: installed $$wheel"; \
	fi
else
	# Not Linux x86_64: build the core for this machine, for local use only (the layer keeps the zig build).
	cd $(CURDIR) && maturin develop --release
endif

package: setup ## sls package against a local moto (template + zips in .serverless/)
	$(PY) scripts/local_aws.py -- npx --no-install sls package

# The rehearsal's own tools, pinned in scripts/rehearse/tools.py: the Runtime Interface Emulator (go install, once per
# pin) and python3.12's awslambdaric and boto3 (pip, by hash), under target/rehearse/tools/. Each missing piece of the
# machine (Go, bubblewrap, CPython 3.12, root) is named in one line with what to install.
rehearse-tools: $(VENV)/.installed
	@scripts/system-deps.sh bwrap
	$(PY) -m scripts.rehearse --install-tools

# REHEARSE_LAYER=<zip>: rehearse that layer (one downloaded from an account, say) instead of the one just built.
rehearse: setup rehearse-tools ## sls package, then each function in Lambda's runtime (emulator, sandbox) on production events
	$(PY) -m scripts.rehearse $(if $(REHEARSE_LAYER),--layer "$(REHEARSE_LAYER)") $(REHEARSE_ARGS)

deploy-local: setup ## rehearse sls deploy + remove against a local moto, checking what was created
	$(PY) scripts/deploy_local.py

demo: setup ## a real photo in, thumbnail and medium out, through the real handlers on a local S3
	$(PY) scripts/demo.py

.PHONY: dev
dev: setup ## local S3 + functions in the foreground: uploads make renditions (docs/local-dev.md; DEV_ARGS=--help)
	$(PY) scripts/dev.py $(DEV_ARGS)

lint: setup ## ruff, mypy --strict, stub check, rustfmt, clippy -D warnings
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m mypy.stubtest kiray_imaging._core --allowlist stubtest-allowlist.txt
	cargo fmt --all --check
	cargo clippy --all-targets --no-default-features -- -D warnings
	cargo clippy --all-targets -- -D warnings

rust-test: system-deps-build ## Rust unit and integration tests (no Python needed), and each per-stage bench run once
	cargo test --no-default-features
	cargo test --no-default-features --bench stages

# The event contract's generator and tsc (contract/package.json): its tests regenerate the types and compile consumers.
contract/node_modules/.installed: contract/package.json contract/package-lock.json
	npm ci --prefix contract --no-audit --no-fund --loglevel=error
	touch $@

# bench-deps: the quality tool's own tests run its sharp peer for real, not skipped.
# rehearse-tools: tests/rehearse/ runs the packaged functions in Lambda's runtime interface emulator.
py-test: setup bench-deps system-deps-test rehearse-tools contract/node_modules/.installed
	$(PY) -m pytest

test: setup lint rust-test py-test ## every test and static check (what CI runs)

clean: ## remove build outputs (keeps .venv and node_modules)
	rm -rf target layer/build layer/dist .serverless out dist

# --- Benchmarks (bench/) ---------------------------------------------------------------------------------------
# Their own pins (bench/requirements.txt, bench/package.json): production's pip and npm installs stay small.
.PHONY: quality bench-deps

$(VENV)/.bench-installed: bench/requirements.txt $(VENV)/.installed
	$(PY) -m pip install -q -r bench/requirements.txt
	touch $@

bench/node_modules/.installed: bench/package.json bench/package-lock.json
	npm ci --prefix bench --no-audit --no-fund --loglevel=error
	touch $@

# The reports measure the core installed in .venv; one is built only when there is none (make setup refreshes it).
bench-deps: $(VENV)/.bench-installed bench/node_modules/.installed
	@$(PY) -c "import kiray_imaging" 2>/dev/null || $(MAKE) setup

quality: bench-deps ## image fidelity vs sharp on ../shared/corpus → bench/results/quality.md, cmyk.md (QUALITY_ARGS=--strict)
	$(PY) -m bench.quality $(QUALITY_ARGS)
	$(PY) -m bench.cmyk

# djpeg (libjpeg-turbo's own scaled decode) is the floor the baseline-JPEG thumbnail is held to. Best effort: where it
# cannot be installed the report says "not measured" rather than the benchmark failing.
.PHONY: bench bench-tools
bench-tools:
	@command -v djpeg >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  { $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libjpeg-turbo-progs >/dev/null; } \
	  || echo "bench: could not install djpeg (Debian: libjpeg-turbo-progs); its floor will be reported as not measured"; }

bench: bench-deps bench-tools ## speed, peak RSS, bytes, SSIM: ours vs sharp, Pillow, pyvips → bench/results/bench.md (BENCH_ARGS=--quick)
	$(PY) -m bench.speed $(BENCH_ARGS)
	$(PY) -m bench.threads

.PHONY: fingerprint bench-functions
fingerprint: bench-deps ## fingerprint distances of near-duplicates and of different photos, the threshold → bench/results/fingerprint.md
	$(PY) -m bench.fingerprint

bench-functions: bench-deps ## CPU per function against another core, BEFORE=<wheel> (e.g. main's) → bench/results/functions.md
	@[ -n "$(BEFORE)" ] || { echo "bench-functions: set BEFORE=<a kiray_imaging wheel> to compare against"; exit 2; }
	$(PY) -m bench.functions --before $(BEFORE)

.PHONY: bench-stages fuzz
bench-stages: ## criterion benches of each Rust stage (decode, colour, resize, orient, encode) on the corpus
	cargo bench -p kiray_imaging_core --no-default-features --bench stages

FUZZ_SECONDS ?= 600
fuzz: setup ## coverage-guided fuzzing of render (atheris + instrumented core) for FUZZ_SECONDS (default 600)
	$(PY) fuzz/run.py --seconds $(FUZZ_SECONDS)
