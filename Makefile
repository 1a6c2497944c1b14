# Two commands for a new machine: `make run` and `make test`. Everything else builds on them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: run test lint bench screenshots train-builtin clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# A plain `torch` requirement pulls a multi-GB CUDA build; with no GPU take the CPU build first.
	@if ! $(PY) -c "import torch" 2>/dev/null; then \
		if command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install "torch>=2.6"; \
		else $(PY) -m pip install torch==2.13.0; fi; \
	fi
	@# Keep the torch chosen above: a dependency's newer release (spandrel -> torchvision) must
	@# not swap it for another build.
	$(PY) -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)/constraints.txt
	$(PY) -m pip install --quiet -e ".[test]" -c $(VENV)/constraints.txt
	@# spandrel lists torchvision; where the torchvision build does not match torch (a CUDA-linked
	@# wheel beside the CPU torch) `import torchvision` fails, and transformers imports it when it
	@# is installed. The upscalers do not need it: remove a torchvision that cannot be imported.
	@$(PY) -c "import torchvision" 2>/dev/null || $(PY) -m pip uninstall -y -q torchvision 2>/dev/null || true
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m sdstudio

lint: $(STAMP)
	$(VENV)/bin/ruff check sdstudio tests tools bench
	$(VENV)/bin/lint-imports

# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
test: $(STAMP) lint
	@QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 $(PY) -m pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose"; exit 1; fi; exit $$rc

bench: $(STAMP)
	@set -e; for b in bench/bench_*.py; do \
		echo "== $$b"; QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 $(PY) $$b; done

# Real windows under Xvfb; the PNGs land in docs/screenshots/ for the README.
screenshots: $(STAMP)
	@command -v xvfb-run >/dev/null || (apt-get update -qq && apt-get install -y -qq xvfb xauth libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 >/dev/null)
	@set -e; for s in tools/screenshots/shot_*.py; do \
		echo "== $$s"; HF_HUB_OFFLINE=1 xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) $$s docs/screenshots; done

train-builtin: $(STAMP)
	$(PY) -m tools.builtin_model.train

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
