# velocity — the two commands a fresh machine needs: `make demo` and `make ci`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export VIRTUAL_ENV := $(abspath $(VENV))
export PYO3_PYTHON := $(abspath $(BIN))/python
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo ci install chromium fashion-mnist rust-toolchain rust-check lint stubtest test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

## The extension and what the demo needs (numpy, pydantic, mcp, matplotlib): built
## again only when the Rust sources or pyproject.toml change (a stamp file).
CORE := $(VENV)/.velocity-core
$(CORE): $(BIN)/python pyproject.toml Cargo.toml $(shell find crates -name '*.rs' -o -name Cargo.toml)
	$(BIN)/pip install -q -e '.[plots]'
	touch $@

## install: the extension plus the dev tools and every optional backend the tests cover:
## torch (the CNN and your-own-model paths), Ray, the Hugging Face loader (tested offline).
## The extras' requirements are installed from pyproject.toml without rebuilding the
## extension.
EXTRAS := $(VENV)/.velocity-extras
$(EXTRAS): pyproject.toml | $(CORE)
	$(BIN)/pip install -q $$($(BIN)/python tools/extras.py dev hf ray plots torch)
	touch $@

install: $(CORE) $(EXTRAS)

## chromium: the headless browser the report.html test opens (Debian's package); never
## fails: without it (no apt, not root) that one test skips and says why
chromium:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || echo "chromium unavailable: the browser test will skip"

## fashion-mnist: Fashion-MNIST's IDX files from Debian's dataset-fashion-mnist package
## (/usr/share/datasets/fashion-mnist); never fails: without it the demo uses the
## embedded digits and the real-data tests skip, saying why
FASHION_MNIST := /usr/share/datasets/fashion-mnist
fashion-mnist:
	@test -d $(FASHION_MNIST) || { command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      dataset-fashion-mnist; }; }; } \
	  || echo "dataset-fashion-mnist unavailable: the Fashion-MNIST tests will skip"

## the MCP Inspector, a real third-party MCP client used by the tests (Node 20: 0.15.0)
INSPECTOR := node_modules/.bin/mcp-inspector
$(INSPECTOR):
	npm install --no-save --no-package-lock --no-audit --no-fund @modelcontextprotocol/inspector@0.15.0

## demo: the strategy x attack sweep on Fashion-MNIST (examples/fashion-mnist.toml,
## about a minute on 2 cores) when its Debian package is or can be installed, else the
## first-look sweep on the embedded digits (examples/experiment.toml); installs only the
## extension and matplotlib
demo: $(CORE) fashion-mnist
	@if test -d $(FASHION_MNIST); then demo=examples/fashion-mnist.toml; else \
	  demo=examples/experiment.toml; echo "Fashion-MNIST not installed: the digits demo"; fi; \
	  echo "velocity sweep $$demo"; $(BIN)/velocity sweep $$demo

rust-toolchain:
	@command -v rustup >/dev/null 2>&1 && rustup component add rustfmt clippy >/dev/null 2>&1 || true

rust-check: rust-toolchain $(BIN)/python
	cargo fmt --all -- --check
	cargo clippy --all-targets --all-features -- -D warnings
	cargo test --quiet

## lint: ruff, the type checker (with the pydantic plugin) and the layer contracts
## (import-linter: CLI > engine > simulation | reports > sweep directory > vocabulary;
## the MCP server never imports the engine, the simulation or the CLI)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy velocity velocity_mcp
	$(BIN)/lint-imports

stubtest: install
	$(BIN)/python -m mypy.stubtest velocity._core \
		--allowlist .mypy-stubtest-allowlist

test: install $(INSPECTOR) chromium fashion-mnist
	$(BIN)/pytest -q

## ci: everything CI checks, in one command
ci: rust-check lint stubtest test

## bench: every benchmark (bench/README.md): kernels, end to end vs Flower, growth,
## sweep scaling, Ray overhead, the literature table; one at a time with the targets below
bench: bench-kernels bench-byzfl bench-e2e bench-e2e-cnn bench-growth bench-sweep bench-ray bench-literature bench-vectorized

.PHONY: bench-sweep bench-ray
bench-sweep: install
	$(BIN)/python bench/sweep_scaling.py --reps 3 $(BENCH_ARGS)

bench-ray: install
	$(BIN)/python bench/ray_overhead.py --reps 3 $(BENCH_ARGS)

## bench-literature: the robustness literature's qualitative table on Fashion-MNIST
## (Blanchard, Xie, Baruch, Karimireddy), 3 seeds, ~10 min (BENCH_ARGS=--quick / --markdown)
.PHONY: bench-literature
bench-literature: install fashion-mnist
	$(BIN)/python bench/literature.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) target out

## bench-kernels: every kernel vs numpy and vs Flower (BENCH_ARGS=--quick / --markdown).
## Flower lives only in .bench-venv; numpy's BLAS runs without the OPENBLAS_* overrides.
.PHONY: bench-kernels
bench-kernels: install .bench-venv
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .bench-venv/bin/python bench/kernels.py $(BENCH_ARGS)

.bench-venv:
	{ $(PYTHON) -m venv $@ && \
	  $(PYTHON) bench/_flower_env.py requirements > $@/requirements.txt && \
	  $@/bin/pip install -q --upgrade pip && $@/bin/pip install -q -r $@/requirements.txt; } \
	  || { rm -rf $@; exit 1; }

## bench-byzfl: pre-aggregators and adaptive attacks vs ByzFL 0.0.11 (n=50, d=10^6), and
## each adaptive attack's per-round cost vs one aggregation. ByzFL goes into .bench-venv
## without its training-framework dependencies; torch is .venv's, linked.
.PHONY: bench-byzfl
bench-byzfl: install .bench-venv
	.bench-venv/bin/python -c "import torch" 2>/dev/null || $(PYTHON) bench/_flower_env.py link-torch
	.bench-venv/bin/python -c "import importlib.metadata as m; m.version('byzfl')" 2>/dev/null || \
	  { .bench-venv/bin/pip install -q --no-deps $$($(PYTHON) bench/_flower_env.py byzfl-requirements) && \
	    .bench-venv/bin/pip install -q $$($(PYTHON) bench/_flower_env.py byzfl-kernel-deps); }
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .bench-venv/bin/python bench/byzfl_kernels.py $(BENCH_ARGS)

## bench-vectorized: one round of 20 torch clients trained with vmap vs one at a time
.PHONY: bench-vectorized
bench-vectorized: install
	$(BIN)/python bench/vectorized.py $(BENCH_ARGS)

## bench-e2e: one 5-round run in velocity vs Flower's simulation engine vs plain numpy,
## plus a 6-run sweep (wall, peak PSS of the process tree, final accuracy). A .bench-venv
## made before flwr[simulation] was required gets Ray added first.
.PHONY: bench-e2e bench-growth
bench-e2e: install .bench-venv
	.bench-venv/bin/python -c "import ray" 2>/dev/null || \
	  .bench-venv/bin/pip install -q -r .bench-venv/requirements.txt "$$($(PYTHON) bench/_flower_env.py requirements | head -1)"
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/e2e_flower.py $(BENCH_ARGS)

## bench-e2e-cnn: Fashion-MNIST CNN, velocity vs Flower 1.42 (100 clients × 600 images, 20 per
## round, 20 rounds, FedAvg and FedMedian), the training-FLOP/s ceiling and the 6 × 4 sweep
## (BENCH_ARGS="--rounds 3 --sweep-rounds 1" to measure fewer rounds and scale to 20). Torch
## in .bench-venv is .venv's, linked (bench/_flower_env.py link-torch), not downloaded again.
.PHONY: bench-e2e-cnn
bench-e2e-cnn: install .bench-venv fashion-mnist
	.bench-venv/bin/python -c "import ray" 2>/dev/null || \
	  .bench-venv/bin/pip install -q -r .bench-venv/requirements.txt "$$($(PYTHON) bench/_flower_env.py requirements | head -1)"
	.bench-venv/bin/python -c "import torch" 2>/dev/null || $(PYTHON) bench/_flower_env.py link-torch
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/e2e_flower_cnn.py $(BENCH_ARGS)

## bench-growth: a run's time vs clients, model size and rounds, split train / aggregate /
## evaluate / setup + I/O (BENCH_ARGS=--quick skips the largest sizes).
bench-growth: install
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/growth.py $(BENCH_ARGS)
