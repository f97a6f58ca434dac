# astrodet: the two commands a user needs. Both install what is missing first (scripts/install.sh, idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test test-docs demo lint bench

install:
	bash scripts/install.sh

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest

# only the README's and docs' code blocks (tests/docs): each runs in a scratch checkout with ASTRODET_MAX_ITER=2
test-docs: install
	$(PY) -m pytest tests/docs

lint: install
	$(PY) -m ruff check .

# DEMO_ARGS passes options: --resume (continue or re-evaluate the last demo run), --overwrite (train again over it)
demo: install
	$(PY) tools/train_net.py --config-file configs/frcnn_zoobot.yaml $(DEMO_ARGS)

# every benchmark, one table; BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--quick --json output/bench.json"
bench: install
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)
