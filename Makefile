# ModelSec Workbench. `make run` and `make test` are all a learner needs; both
# set up .venv first (from requirements.lock) when it is missing or out of date.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch comes from the package index by default (on Linux a CUDA build, several
# GB). For a CPU-only torch (about 750 MB installed) use PyTorch's CPU wheel index:
#   make run TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH := torch==$(shell sed -n 's/^torch==\([^ ;]*\).*/\1/p' requirements.lock)
TORCH_FROM := $(if $(TORCH_INDEX),--no-deps --index-url $(TORCH_INDEX),)

# Pinned numerics (utils/course/numerics.py): the same float results on every x86-64
# processor. torch reads them when it loads; the course kernel carries them too.
export ATEN_CPU_CAPABILITY := default
export MKL_CBWR := COMPATIBLE
UV := uv==0.13.8
# torchattacks 3.5.1 declares requests~=2.25.1 (clashes with JupyterLab) and
# torchvision (unused): install it without its declared dependencies.
TORCHATTACKS := torchattacks==3.5.1
# The stamp's name carries a hash of what is installed (the dependency files and
# the versions and index named below): change one and the next make reinstalls;
# edit anything else in this Makefile and nothing is reinstalled.
DEPS_HASH := $(shell { cat pyproject.toml requirements.lock environment.yml; echo "$(TORCH) $(TORCH_INDEX) $(TORCHATTACKS) $(UV)"; } 2>/dev/null | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
PIP_QUIET := 2>&1 | { grep -v '^WARNING: Location' || true; }
PARAMS ?=
PYTEST_WORKERS ?= 2
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help venv lock run seeds test test-ui test-unit chromium lab labs clean clean-notebooks outputs bench grade

help:
	@echo "make run    execute every lesson and solution into build/, write build/report.md"
	@echo "make test   run every test (unit, notebooks, labs, hygiene, browser)"
	@echo "make test-ui  only the browser tests (JupyterLab in headless Chromium)"
	@echo "make lab    start JupyterLab on 127.0.0.1 with a token"
	@echo "make labs   regenerate labs/ from solutions/"
	@echo "make outputs  re-execute lessons and solutions in place (after editing them)"
	@echo "make seeds  run every lesson and solution for seeds 0-9, check every stated number (build/seeds.md)"
	@echo "make bench  time utils.attacks.evasion against torchattacks, and the model API (build/bench.json)"
	@echo "make grade SUBMISSIONS=folder  run each learner's lab in a sandbox, write build/grade/grades.html and .csv"
	@echo "make lock   re-resolve requirements.lock and environment.yml (after editing pyproject.toml)"
	@echo "make clean  remove build output and caches"

$(STAMP): pyproject.toml requirements.lock environment.yml
	@echo "Setting up $(VENV) from requirements.lock (a few minutes, once) ..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip $(PIP_QUIET)
	@$(BIN)/python -m pip install -q $(TORCH) $(TORCH_FROM) $(PIP_QUIET)
	@$(BIN)/python -m utils.tooling.lockfile without-torch $(VENV)/requirements-after-torch.txt
	@$(BIN)/python -m pip install -q --no-deps -r $(VENV)/requirements-after-torch.txt $(PIP_QUIET)
	@$(BIN)/python -m pip install -q --no-deps -e . $(PIP_QUIET)
	@$(BIN)/python -m pip install -q --no-deps $(TORCHATTACKS) $(PIP_QUIET)
	@$(BIN)/python -m utils.tooling.lockfile verify >/dev/null
	@$(BIN)/python -m utils.course.numerics install-kernel
	@rm -f $(VENV)/.installed-*
	@touch $@
	@echo "$(VENV) is ready."

venv: $(STAMP)

run: venv
	$(BIN)/python -m utils.tooling.runner $(PARAMS)

# Every lesson and solution for seeds 0-9, two kernels at a time: each number a
# notebook states (utils.course.report.expect) must hold for every seed. Slow (about 47 minutes on 2 cores).
SEEDS ?= 0-9
seeds: venv
	$(BIN)/python -m utils.tooling.runner --seeds $(SEEDS) --jobs 2 $(PARAMS)

# Re-resolve the lock after editing the dependencies in pyproject.toml (or to
# take newer releases on purpose), then `make outputs` and `make test`.
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q $(UV) $(PIP_QUIET)
	$(BIN)/python -m uv pip compile pyproject.toml --universal --quiet \
		--custom-compile-command "make lock" -o requirements.lock
	$(BIN)/python -m utils.tooling.lockfile environment
	$(BIN)/python -m utils.tooling.binder

test: venv
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope -m "not ui" \
		tests notebooks solutions --nbval --nbval-kernel-name modelsec \
		--nbval-sanitize-with tests/sanitize.cfg -p no:cacheprovider
	@$(MAKE) --no-print-directory test-ui

# Browser tests (tests/test_ui.py): JupyterLab driven through Debian's Chromium,
# never a downloaded browser; each worker runs its own server and browser.
# They run after nbval, when the model cache is warm. Screenshots: build/ui/.
test-ui: venv chromium
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal -m ui tests/test_ui.py -p no:cacheprovider

chromium:
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null; then \
		echo "Installing Chromium (Debian packages chromium, chromium-driver) for the browser tests ..."; \
		{ $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq chromium chromium-driver fonts-noto-color-emoji >/dev/null; } \
		|| echo "Could not install Chromium: the browser tests will be skipped (under CI they fail)."; \
	fi

test-unit: venv
	$(BIN)/python -m pytest -m "not notebooks and not ui" tests -p no:cacheprovider

bench: venv
	$(BIN)/python -m utils.tooling.benchmarks

# Grade a class's labs (docs/instructor-guide.md): every submitted notebook runs in
# its own sandbox (time, memory and output limits, no network, no solutions/), in
# parallel through the Dask engine; the table goes to build/grade/.
#   make grade SUBMISSIONS=submissions GRADE_OPTS="--timeout 300 --workers 4"
SUBMISSIONS ?= submissions
GRADE_OPTS ?=
grade: venv
	$(BIN)/python -m utils.tooling.grade $(SUBMISSIONS) --out build/grade $(GRADE_OPTS)

lab: venv
	$(BIN)/jupyter lab --ip=127.0.0.1 --no-browser --ServerApp.root_dir=$(CURDIR) \
		$(if $(filter 0,$(shell id -u)),--allow-root)

labs: venv
	$(BIN)/python -m utils.tooling.notebooks labs

clean-notebooks: venv
	$(BIN)/python -m utils.tooling.notebooks clean

outputs: venv
	$(BIN)/python -m utils.tooling.notebooks execute notebooks/*.ipynb solutions/*.ipynb
	$(BIN)/python -m utils.tooling.notebooks labs

clean:
	rm -rf build .cache .pytest_cache
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -print0 | xargs -0 rm -rf
