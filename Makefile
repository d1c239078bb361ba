# make reproduce   set up .venv, fetch the offline data, run the whole workflow -> paper/main.pdf
# make test        run the whole test suite (what CI runs)
# make test-fast   the fast tier: pytest -m "not slow"
# make lint        ruff
# make paper       rebuild only the tables, figures and PDF from existing results
# make verify-determinism   run the offline pipeline twice from fresh clones, compare every result file
# Every path in a recipe is quoted: a checkout whose path has a space works.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
CORES ?= all

.PHONY: reproduce test test-fast lint paper venv system-deps system-deps-test dvc-yaml benchmark verify-determinism clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv "$(VENV)"
	"$(BIN)/pip" install --quiet --upgrade pip
	"$(BIN)/pip" install --quiet -e '.[dev]'
	touch "$@"

system-deps:
	bash scripts/system-deps.sh

# What the tests need besides: a single-node SLURM cluster (Debian's slurmctld, slurmd, slurm-client, munge).
system-deps-test:
	bash scripts/system-deps.sh --test

reproduce: system-deps venv
	"$(BIN)/advrepro" validate
	@# A fresh clone has the committed metrics but no checkpoints (DVC-tracked): retrain every experiment
	@# then, so that the committed results are checked, not reused; afterwards the runs are incremental.
	@# (profiles/default/config.yaml adds --rerun-incomplete.)
	@if [ -z "$$(ls results/checkpoints 2>/dev/null)" ]; then \
	  echo "no checkpoints yet: training every experiment (the committed results are the reference)"; \
	  force="--forcerun train"; fi; \
	"$(BIN)/snakemake" --cores $(CORES) --resources gpu=1 --printshellcmds $$force
	@echo "done: paper/main.pdf"

# The suite runs on TEST_WORKERS processes (pytest-xdist), each test file on one of them: its module fixtures
# (a tiny pipeline run, a corpus) are built once. TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2

test: system-deps-test venv
	"$(BIN)/python" -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# ruff (pyproject.toml: line length 120; rules E, W, F, I, B, UP); CI runs it before the tests.
lint: venv
	"$(BIN)/ruff" check .

# The fast tier for day-to-day work (a few minutes): everything but the end-to-end runs marked slow.
test-fast: venv
	"$(BIN)/python" -m pytest -m "not slow" $(PYTEST_ARGS)

paper: venv
	"$(BIN)/advrepro" report
	"$(BIN)/advrepro" paper

dvc-yaml: venv
	"$(BIN)/advrepro" dvc-yaml

verify-determinism: system-deps venv
	"$(BIN)/python" scripts/verify_determinism.py $(VERIFY_ARGS)

# throughput.py: samples/s of every model's steps and attacks; peer.py: JAX against PyTorch eager (the same models
# and Algorithm 1 step) at the offline and the thesis MNIST sizes (PEER_ARGS="--sizes offline" for the quick half).
benchmark: venv
	"$(BIN)/python" benchmarks/throughput.py
	"$(BIN)/python" benchmarks/peer.py $(PEER_ARGS)

clean:
	rm -rf results data/processed paper/tables paper/figures paper/generated paper/.build paper/main.pdf .snakemake
