# velocity — the two commands a fresh machine needs: `make demo` and `make ci`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export VIRTUAL_ENV := $(abspath $(VENV))
export PYO3_PYTHON := $(abspath $(BIN))/python
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo ci install rust-toolchain rust-check lint stubtest test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

## install: dev dependencies (+ the optional HF loader, tested offline) and the
## extension, built in release mode (editable install)
install: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,hf]'

## the MCP Inspector, a real third-party MCP client used by the tests (Node 20: 0.15.0)
INSPECTOR := node_modules/.bin/mcp-inspector
$(INSPECTOR):
	npm install --no-save --no-package-lock --no-audit --no-fund @modelcontextprotocol/inspector@0.15.0

## demo: run the example strategy x attack sweep on the embedded digits data
demo: install
	$(BIN)/velocity sweep examples/experiment.toml

rust-toolchain:
	@command -v rustup >/dev/null 2>&1 && rustup component add rustfmt clippy >/dev/null 2>&1 || true

rust-check: rust-toolchain $(BIN)/python
	cargo fmt --all -- --check
	cargo clippy --all-targets --all-features -- -D warnings
	cargo test --quiet

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

stubtest: install
	$(BIN)/python -m mypy.stubtest velocity._core --ignore-missing-stub \
		--allowlist .mypy-stubtest-allowlist

test: install $(INSPECTOR)
	$(BIN)/pytest -q

## ci: everything CI checks, in one command
ci: rust-check lint stubtest test

bench: install
	$(BIN)/python bench/kernels.py

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
