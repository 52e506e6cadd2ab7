# swa-bench: install, test, demo. Every target uses the virtualenv in $(VENV).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_OUT ?= runs/demo
DEMO_SEEDS ?= 0 1 2

.PHONY: install test test-slow demo table bench clean reproduce reproduce-cifar10 reproduce-cifar100 \
        reproduce-imagenet figures reproduce-mini

install: $(BIN)/swa-bench

$(BIN)/swa-bench: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

test: install
	$(BIN)/python -m pytest -q

# Checks of minutes: real data on the extracted CIFAR-10 copy (see README), the GPU check's CPU rehearsal,
# compilation with inductor. Run before lending scripts/gpu_check.sh a GPU.
test-slow: install
	SWA_BENCH_SLOW=1 $(BIN)/python -m pytest -q -m slow

# SGD vs FGE vs SWA (and an EMA of the SGD weights, beyond the paper) on scikit-learn's 8x8 digits, 3 seeds, CPU, then the table.
demo: install
	for seed in $(DEMO_SEEDS); do \
	  for method in sgd swa ema fge; do \
	    $(BIN)/swa-bench train --config configs/demo/digits.yaml --method $$method \
	      --seed $$seed --out $(DEMO_OUT) --device cpu || exit 1; \
	  done; \
	done
	$(BIN)/swa-bench table $(DEMO_OUT)

# Throughput against a reference-style loop, every CIFAR model, sized for a 2-core CPU by default;
# on a GPU: make bench BENCH_FLAGS="--device cuda --steps 50 --compile reduce-overhead". The time
# outside the steps is also projected to the per-epoch targets for an H200 (docs/PERFORMANCE.md).
BENCH_FLAGS ?= --device cpu --workers 2
bench: install
	$(BIN)/swa-bench bench --model vgg16 --steps 3 --warmup 1 --rounds 3 --epoch-seconds 0.4 $(BENCH_FLAGS)
	$(BIN)/swa-bench bench --model preresnet164 --steps 3 --warmup 1 --rounds 3 --epoch-seconds 1.5 $(BENCH_FLAGS)
	$(BIN)/swa-bench bench --model wrn28x10 --steps 1 --warmup 1 --rounds 2 --epoch-seconds 5.5 $(BENCH_FLAGS)

# The paper's tables: every row x SGD/SWA x $(SEEDS) seeds through `swa-bench grid`. Idempotent:
# finished runs are skipped, stopped ones resume. GRID_FLAGS reaches every grid, e.g.
#   make reproduce-cifar10 GRID_FLAGS="--jobs-per-gpu 2"
#   make reproduce-imagenet GRID_FLAGS="--gpus-per-run 8"
#   make reproduce GRID_FLAGS="--launcher slurm --partition gpu"
OUT ?= runs
SEEDS ?= 3
CIFAR_DATA ?= data/cifar
IMAGENET_DATA ?= data/imagenet
GRID_FLAGS ?=
GRID = $(BIN)/swa-bench grid --seeds $(SEEDS) --out $(OUT) $(GRID_FLAGS)

reproduce-cifar10: install
	$(GRID) --table cifar10 --data-path $(CIFAR_DATA)

reproduce-cifar100: install
	$(GRID) --table cifar100 --data-path $(CIFAR_DATA)

reproduce-imagenet: install
	$(GRID) --table imagenet --data-path $(IMAGENET_DATA)

reproduce: reproduce-cifar10 reproduce-cifar100 reproduce-imagenet table

table: install
	$(BIN)/swa-bench table $(OUT)

# The miniature of Table 1 on real CIFAR-10 images (configs/mini): PreResNet-20 on 1,000 images of the
# JPEG copy, SGD, SWA at swa_lr = 0.1 and 0.5 x lr_init, and an EMA of the SGD weights (beyond the
# paper), 3 seeds, about 2 hours on 2 CPU cores.
# Idempotent and resumable like every grid. MINI_DATA is extracted from MINI_TARBALL when missing.
# Writes the detailed table (markdown and CSV) and the convergence curves into MINI_OUT.
MINI_DATA ?= data/cifar10-jpg
MINI_TARBALL ?= ../shared/data/cifar10-jpg.tar.gz
MINI_OUT ?= runs/mini
MINI_JOBS ?= 2
reproduce-mini: install $(MINI_DATA)/test
	$(BIN)/swa-bench grid --table mini --seeds 3 --out $(MINI_OUT) --data-path $(MINI_DATA) --jobs $(MINI_JOBS) $(GRID_FLAGS)
	$(BIN)/swa-bench table $(MINI_OUT) --detail > $(MINI_OUT)/table.md
	$(BIN)/swa-bench table $(MINI_OUT) --format csv > $(MINI_OUT)/table.csv
	$(BIN)/swa-bench plot curves $(MINI_OUT)/cifar10/preresnet20/*/seed* --out $(MINI_OUT)/figures
	cat $(MINI_OUT)/table.md

$(MINI_DATA)/test:
	@test -f $(MINI_TARBALL) || { echo "error: $(MINI_DATA) not found and no $(MINI_TARBALL) to extract it from; extract cifar10-jpg.tar.gz so that $(MINI_DATA)/train and $(MINI_DATA)/test exist, or set MINI_DATA" >&2; exit 2; }
	mkdir -p $(dir $(MINI_DATA))
	tar xzf $(MINI_TARBALL) -C $(dir $(MINI_DATA))
	@test -d $@ || { echo "error: $(MINI_TARBALL) did not give $@ (it holds cifar10-jpg/; set MINI_DATA to <folder>/cifar10-jpg)" >&2; exit 2; }

# The paper's figures (docs/PROTOCOL.md §6) from the runs of one row and seed in OUT (default: PreResNet-164 on
# CIFAR-100, seed 0, as in the paper), into FIG_OUT. The landscapes recompute BN at every point:
# on a GPU, tens of minutes each at the paper's point counts.
FIG_ROW ?= cifar100/preresnet164
FIG_SEED ?= 0
FIG_OUT ?= figures
FIG_RUNS = $(OUT)/$(FIG_ROW)
figures: install
	$(BIN)/swa-bench plot curves $(FIG_RUNS)/sgd/seed* $(FIG_RUNS)/swa/seed* --out $(FIG_OUT)
	$(BIN)/swa-bench landscape line --swa $(FIG_RUNS)/swa/seed$(FIG_SEED) --sgd $(FIG_RUNS)/sgd/seed$(FIG_SEED) --out $(FIG_OUT)
	$(BIN)/swa-bench landscape rays --swa $(FIG_RUNS)/swa/seed$(FIG_SEED) --sgd $(FIG_RUNS)/sgd/seed$(FIG_SEED) --out $(FIG_OUT)
	$(BIN)/swa-bench landscape plane $(FIG_RUNS)/sgd/seed$(FIG_SEED)/checkpoints/sgd.pt \
	    $(FIG_RUNS)/swa/seed$(FIG_SEED)/checkpoints/swa_1.pt $(FIG_RUNS)/swa/seed$(FIG_SEED)/checkpoints/swa_1.5.pt --out $(FIG_OUT)

clean:
	rm -rf build dist *.egg-info .pytest_cache
