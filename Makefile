# enas: `make help` lists the targets. Everything runs inside the virtual environment .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR ?= runs/make-run
# torch that suits the machine: a CUDA build where a GPU driver answers, else the CPU wheel.
# On a machine without a local CPU wheel, pass TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu".
TORCH_CPU ?= torch==2.13.0
TORCH_PIP_ARGS ?=

.PHONY: help venv run test test-fast bench gpu-check tensorboard clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		$(BIN)/pip install -q torch $(TORCH_PIP_ARGS); \
	else \
		$(BIN)/pip install -q $(TORCH_CPU) $(TORCH_PIP_ARGS); \
	fi
	$(BIN)/pip install -q -e ".[dev,ray,slurm]"
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install enas with its test, Ray and SLURM (submitit) extras

run: $(STAMP)  ## search a PTB cell on the embedded PTB, derive it, train it briefly (CPU, < 10 min)
	rm -rf $(RUN_DIR)
	$(BIN)/enas-search experiment=demo_ptb hydra.run.dir=$(RUN_DIR)/search
	$(BIN)/enas-derive run_dir=$(RUN_DIR)/search
	$(BIN)/enas-train arch=$(RUN_DIR)/search/arch.json experiment=demo_ptb hydra.run.dir=$(RUN_DIR)/train
	@echo
	@echo "search run (checkpoint, TensorBoard events): $(RUN_DIR)/search"
	@echo "derived cell: $(RUN_DIR)/search/arch.json and $(RUN_DIR)/search/arch.png"
	@echo "final training: $(RUN_DIR)/train/result.json"
	@echo "watch it: $(BIN)/tensorboard --logdir $(RUN_DIR)"

# Tests run on every core (pytest-xdist), a test module per worker so module fixtures run once;
# one BLAS/OpenMP thread per process, so the worker processes and the commands the tests start
# do not oversubscribe the cores (tiny tensors gain nothing from threads).
PYTEST_WORKERS ?= auto
TEST_ENV = OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

test: $(STAMP)  ## the whole test suite (what CI runs; CUDA tests skip without a GPU)
	$(TEST_ENV) $(BIN)/pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadscope --durations=25

test-fast: $(STAMP)  ## the unit tests only (no end-to-end runs)
	$(TEST_ENV) $(BIN)/pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadscope -m "not slow"

bench: $(STAMP)  ## speed benchmarks -> experiments/bench/*.md (not tests; minutes)
	$(BIN)/python -m experiments.bench.bench_rnn_cell --out experiments/bench/rnn_cell.md
	$(BIN)/python -m experiments.bench.bench_cnn --out experiments/bench/cnn.md

gpu-check:  ## one CUDA GPU: cuda tests, benchmarks, 2-min PTB + CIFAR-10 searches -> gpu_check/gpu_check.md (< 8 min)
	bash experiments/gpu_check.sh gpu_check

tensorboard: $(STAMP)  ## TensorBoard over every run under runs/
	$(BIN)/tensorboard --logdir runs

clean:  ## remove runs, caches and the virtual environment
	rm -rf runs outputs multirun .pytest_cache $(VENV) *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
