# tinyattn: `make test` and `make demo` work on a fresh clone with only Python.
# They create .venv when it is missing (re-installing when pyproject.toml or
# constraints.txt change) and install the package editable with its extras.

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
EXTRAS  := dev,viz

export MPLBACKEND = Agg
export TQDM_DISABLE = 1

.PHONY: venv test demo bench lint torch clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]" -c constraints.txt
	touch $@

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	@echo "The dates demo (train an attention model, print accuracy, draw heatmaps)"
	@echo "arrives with the data/CLI work. Until then: every layer's gradient check."
	$(BIN)/python -m tinyattn.gradcheck

# Optional: PyTorch CPU for the parity tests and benchmarks (a local wheel here).
torch: $(STAMP)
	$(BIN)/python -m pip install --quiet torch==2.13.0

bench: torch
	$(BIN)/python benchmarks/bench_rnn.py

lint: $(STAMP)
	$(BIN)/ruff check tinyattn tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build dist runs
