# tinyattn: `make test` and `make demo` work on a fresh clone with only Python.
# They create .venv when it is missing (re-installing when pyproject.toml or
# constraints.txt change) and install the package editable with its extras.

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
EXTRAS  := dev,cli,metrics,notebooks

export MPLBACKEND = Agg

.PHONY: venv test demo translate gradcheck lessons schematics bench lint torch clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]" -c constraints.txt
	touch $@

venv: $(STAMP)

# The unit tests and the docstring examples of tinyattn/ (--doctest-modules, set in
# pyproject.toml), then every lesson notebook (learner and instructor versions)
# executed top to bottom by nbmake. Both runs spread over the cores (pytest-xdist,
# one worker per core) with one BLAS thread per worker, so two cores run two
# processes and never four threads (oversubscribed, OpenBLAS can be ten times
# slower; the notebooks' small products gain nothing from a second thread anyway).
# Measured on a two-core machine (2026-12-06, fresh-clone CI): the unit tests took
# 357 s in one process and 250 s in two; the notebooks 803 s in one process (without
# lesson 11's learner version) and 549 s in two (all 34). (Float32 results may move
# in their last digit with the thread count; no assert depends on it.)
# Lesson 11 trains on the real cmn-eng corpus: it runs when the corpus is here (in
# $TINYATTN_DATA or the cache: `tinyattn data fetch cmn-eng`) and is skipped, saying so,
# when it is not, as the unit tests that need the corpora are (lesson 16's section 7
# skips itself).
test: $(STAMP)
	TQDM_DISABLE=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -n auto
	@if $(BIN)/python -c "import sys; from tinyattn.data import locate; \
	        sys.exit(0 if locate('cmn-eng') else 1)" 2>/dev/null; then \
	    notebooks="$$(ls lessons/*.ipynb lessons/solutions/*.ipynb)"; \
	else \
	    echo "lesson 11 skipped: the cmn-eng corpus is not here (tinyattn data fetch cmn-eng)"; \
	    notebooks="$$(ls lessons/*.ipynb lessons/solutions/*.ipynb | grep -v 11_translation)"; \
	fi; \
	TQDM_DISABLE=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -n auto --nbmake $$notebooks

# Train a Bahdanau model on the dates task (defaults: bi-GRU, E=32, H=64,
# 2 epochs of 20,000 examples), print held-out scores, draw heatmaps.
demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/tinyattn train dates --out runs/demo
	@echo "Heatmaps and the loss curve: runs/demo/*.png. Try:"
	@echo "  $(BIN)/tinyattn translate runs/demo 'the 3rd of march 1999' 'Tue, 5 Mar 2013'"

# English -> Chinese on the real Tatoeba corpus (README, "Recipes"): fetch cmn-eng (or find
# it in $$TINYATTN_DATA or the cache), train the recipe (about 2 minutes on two cores),
# print held-out BLEU, translate the source document's example, draw heatmaps.
# --overwrite replaces an earlier `make translate` run; it removes only files train writes.
translate: $(STAMP)
	$(BIN)/tinyattn data fetch cmn-eng > /dev/null
	$(BIN)/tinyattn train cmn-eng --out runs/cmn-eng --overwrite --max-len 10 \
	    --emb-size 128 --hidden-size 128 --lr 0.003 --epochs 4 --plots 3
	$(BIN)/tinyattn translate runs/cmn-eng "Are you very big?" "He is ten years old." \
	    --plot runs/cmn-eng/translations --overwrite
	@echo "Heatmaps: runs/cmn-eng/alignment_*.png (held-out sentences) and runs/cmn-eng/translations/"

# Every layer's gradient check, printed.
gradcheck: $(STAMP)
	$(BIN)/python -m tinyattn.gradcheck

# Optional: PyTorch CPU for the parity tests and benchmarks (a local wheel here).
torch: $(STAMP)
	$(BIN)/python -m pip install --quiet torch==2.13.0

bench: torch
	$(BIN)/python benchmarks/bench_rnn.py

# ruff: pycodestyle, pyflakes, imports, bugbear, pyupgrade, NumPy rules, and docstrings
# (numpy convention) on the public API; pyproject.toml says which rules and why.
lint: $(STAMP)
	$(BIN)/ruff check tinyattn tests benchmarks docs lessons/build.py conftest.py

# Rebuild the lesson notebooks from lessons/src (and execute them).
lessons: $(STAMP)
	$(BIN)/python lessons/build.py

# Redraw the lessons' schematics (docs/images/*.png) from docs/schematics.py.
schematics: $(STAMP)
	$(BIN)/python docs/schematics.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build dist runs
