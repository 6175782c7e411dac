# framesift: set-up and everyday commands. Every target creates/uses the local virtualenv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision spec; CI pins the CPU-usable build that is available offline.
TORCH_SPEC ?= torch torchvision
CORES ?= all
TESTS ?= tests

.PHONY: setup run test demo lint format bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[test,slurm]'
	@# ffmpeg: the one on PATH, else imageio-ffmpeg's static binary inside the venv (no system
	@# package is installed unless asked: FRAMESIFT_APT=1 make setup, as root, uses apt-get)
	@command -v ffmpeg >/dev/null 2>&1 \
	  || { [ "$${FRAMESIFT_APT:-0}" = 1 ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg; }; } \
	  || $(PY) -m pip install --quiet imageio-ffmpeg
	touch $@

run: setup  ## run the workflow on config/config.yaml + config/urls.txt
	$(VENV)/bin/snakemake --cores $(CORES) --resources gpu=1 --keep-going

test: setup  ## the full test suite (what CI runs)
	$(VENV)/bin/pytest -q --durations=10 $(TESTS)

demo: setup  ## offline demo: synthetic videos served on 127.0.0.1 -> a dataset in demo-run/
	$(VENV)/bin/framesift demo --dir demo-run

lint: setup
	$(VENV)/bin/ruff check src tests scripts bench tools
	$(VENV)/bin/ruff format --check src tests scripts bench tools
	$(VENV)/bin/snakefmt --check Snakefile rules
	$(VENV)/bin/snakemake --lint --cores 1

format: setup
	$(VENV)/bin/ruff format src tests scripts bench tools
	$(VENV)/bin/snakefmt Snakefile rules

bench: setup
	$(PY) bench/bench_dedup.py

clean:
	rm -rf results logs benchmarks .snakemake demo-run
