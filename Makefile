# astrodet: the two commands a user needs. Both install what is missing first (scripts/install.sh, idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test demo lint bench

install:
	bash scripts/install.sh

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .

demo: install
	$(PY) tools/train_net.py --config-file configs/frcnn_zoobot.yaml

# every benchmark, one table; BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--quick --json bench.json"
bench: install
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)
