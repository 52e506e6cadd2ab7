# swa-bench: install, test, demo. Every target uses the virtualenv in $(VENV).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_OUT ?= runs/demo
DEMO_SEEDS ?= 0 1 2

.PHONY: install test test-slow demo table bench clean

install: $(BIN)/swa-bench

$(BIN)/swa-bench: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

test: install
	$(BIN)/python -m pytest -q

# Real-data checks on the extracted CIFAR-10 copy (see README); minutes, not seconds.
test-slow: install
	SWA_BENCH_SLOW=1 $(BIN)/python -m pytest -q -m slow

# SGD vs SWA on scikit-learn's 8x8 digits, 3 seeds, CPU, then the table.
demo: install
	for seed in $(DEMO_SEEDS); do \
	  for method in sgd swa; do \
	    $(BIN)/swa-bench train --config configs/demo/digits.yaml --method $$method \
	      --seed $$seed --out $(DEMO_OUT) --device cpu || exit 1; \
	  done; \
	done
	$(BIN)/swa-bench table $(DEMO_OUT)

# Throughput against a reference-style loop, every CIFAR model, sized for a 2-core CPU by default;
# on a GPU: make bench BENCH_FLAGS="--device cuda --steps 50 --compile reduce-overhead"
BENCH_FLAGS ?= --device cpu --workers 2
bench: install
	$(BIN)/swa-bench bench --model vgg16 --steps 3 --warmup 1 --rounds 3 $(BENCH_FLAGS)
	$(BIN)/swa-bench bench --model preresnet164 --steps 3 --warmup 1 --rounds 3 $(BENCH_FLAGS)
	$(BIN)/swa-bench bench --model wrn28x10 --steps 1 --warmup 1 --rounds 2 $(BENCH_FLAGS)

table: install
	$(BIN)/swa-bench table runs

clean:
	rm -rf build dist *.egg-info .pytest_cache
