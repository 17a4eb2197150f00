# The two commands: `make demo` and `make test`. Both create .venv with Python 3.11 when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := .demo/collection
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# llama-cpp-python compiles from source (~5 min) for a portable x86-64-v3 baseline, never for
# this machine's CPU, and never from pip's wheel cache: scripts/install-llama.sh.
LLAMA_VERSION := 0.3.36

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The demo needs no torch: the default encoder is the int8 ONNX MiniLM.
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[all]'
	touch $@

# torch is pinned to the CPU wheel first so that sentence-transformers never pulls a CUDA build.
$(VENV)/.test-installed: pyproject.toml scripts/install-llama.sh | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	scripts/install-llama.sh $(BIN)/python $(LLAMA_VERSION)
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	rm -rf $(DEMO)
	$(BIN)/ragfleet ingest data/demo/corpus.jsonl --collection $(DEMO) --shards 2
	$(BIN)/ragfleet demo $(DEMO) --questions data/demo/questions.txt

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

# pytest's exit code 5 means "no tests collected": not a failure of the suite.
unit: $(VENV)/.test-installed
	scripts/install-llama.sh $(BIN)/python $(LLAMA_VERSION)
	scripts/test-services.sh install
	$(BIN)/pytest -q -p no:cacheprovider --durations=15 || [ $$? -eq 5 ]

test: lint typecheck unit

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
