# trainwreck: `make bench` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
ARGS   ?=
# pinned so pip takes the CPU build; an open range can resolve to a multi-GB CUDA build
TORCH  ?= torch==2.13.0

.PHONY: help setup setup-torch robust env bench bench-jax bench-torch test test-fast validate schema perf ablations clean distclean setup-gpu

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,ray,jax]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install trainwreck with its test extras

bench: $(STAMP)  ## run the corpus, score every detector, write results/ (resumes from the cache)
	$(BIN)/trainwreck bench --progress --jobs $(JOBS) $(ARGS)

# The corpus on another Keras backend: its own tables in results/<backend>/, the TensorFlow runs
# (cached by `make bench`), then the cross-backend tables in results/. An oracle that fails on
# that backend does not stop the target: `trainwreck backends` decides, exiting 1 only for a
# cross-backend difference that no case file explains.
define bench_on
	-$(BIN)/trainwreck bench --backend $(1) --progress --jobs $(JOBS) --no-plots --out results/$(1) $(ARGS)
	$(BIN)/trainwreck run --progress --jobs $(JOBS) -q $(ARGS)
	$(BIN)/trainwreck backends $(ARGS)
endef

bench-jax: $(STAMP)  ## the corpus on Keras's JAX backend (results/jax/), then the cross-backend tables
	$(call bench_on,jax)

bench-torch: setup-torch  ## the corpus on Keras's torch backend (results/torch/), then the cross-backend tables
	$(call bench_on,torch)

# pytest-xdist, one test process per core: the corpus and the tests that read it run in one of them
# (conftest.py groups them), every other test file keeps to one process, so module fixtures run once.
PYTEST := $(BIN)/python -m pytest -q -n $(JOBS) --dist loadgroup

test: $(STAMP)  ## the whole suite, corpus oracles included (what CI runs)
	$(PYTEST) $(ARGS)

test-fast: $(STAMP)  ## the quick loop: everything not marked slow
	$(PYTEST) -m "not slow" $(ARGS)

robust: $(STAMP)  ## the robustness check: every case on seeds 0-4 and under every perturbation; writes results/robustness.*
	$(BIN)/trainwreck robust --progress --jobs $(JOBS) $(ARGS)

env: $(STAMP)  ## print the library versions and platform facts every run records
	$(BIN)/trainwreck env

validate: $(STAMP)  ## validate every case file
	$(BIN)/trainwreck validate

schema: $(STAMP)  ## regenerate cases/schema.json and docs from the definitions
	$(BIN)/trainwreck schema
	$(BIN)/python -m trainwreck.docs

perf: $(STAMP)  ## print harness overhead, parallel speed-up, rescoring time, worker memory
	$(BIN)/python benchmarks/perf.py

ablations: $(STAMP)  ## score the published-tool detectors with each fidelity fix undone (from the run cache)
	$(BIN)/python benchmarks/ablations.py

setup-torch: $(STAMP)  ## add PyTorch for --backend torch (TORCH=torch==2.13.0, a CPU build)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[torch]"

setup-gpu: $(STAMP)  ## swap the CPU build of TensorFlow for the CUDA one (needs an NVIDIA GPU)
	$(BIN)/python -m pip uninstall -y tensorflow-cpu
	$(BIN)/python -m pip install "tensorflow[and-cuda]>=2.16,<2.22"

clean:  ## remove the run cache and test caches (the committed reference tables stay)
	rm -rf results/runs .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean  ## also remove the virtual environment
	rm -rf $(VENV) *.egg-info
