# swa-bench: install, test, demo. Every target uses the virtualenv in $(VENV).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_OUT ?= runs/demo
DEMO_SEEDS ?= 0 1 2

.PHONY: install test test-slow demo table bench clean reproduce reproduce-cifar10 reproduce-cifar100 \
        reproduce-imagenet figures reproduce-mini $(addprefix reproduce-mini-,table figures schedules finetune picture)

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

# The paper in miniature on real CIFAR-10 images, on a CPU (swa_bench/miniature.py; results/cifar10-jpg-mini):
# PreResNet-20 on 1,000 images of the JPEG copy. Parts that run alone and resume (finished runs and
# landscape points are kept and skipped):
#   reproduce-mini-table      Table 1: SGD, FGE, SWA at two rate rules, EMA; 3 seeds, 5 for SGD and SWA 0.5x
#   reproduce-mini-figures    seed 0: curves, optima width along rays, the SGD-SWA line, the FGE plane
#   reproduce-mini-schedules  constant and cyclical SWA rates from the SGD run (sec. 4.3), a fixed rate from scratch (4.4)
#   reproduce-mini-finetune   Table 2's shape: SWA from each finished SGD run, 7 and 13 more epochs
#   reproduce-mini-picture    the table as a picture (paired differences to SGD)
# Each prints its progress and wall time (also in $(MINI_RESULTS)/wall_times.csv). From torchvision's
# CIFAR-10 files instead of the JPEG copy: make reproduce-mini MINI_DATA=data/cifar MINI_DOWNLOAD=1
# (runs and results of the two copies go to folders of their own: a run is tied to the files it read).
MINI_DATA ?= data/cifar10-jpg
MINI_TARBALL ?= ../shared/data/cifar10-jpg.tar.gz
MINI_COPY = $(if $(MINI_DOWNLOAD),-torchvision,)
MINI_OUT ?= runs/mini$(MINI_COPY)
MINI_RESULTS ?= $(if $(MINI_DOWNLOAD),results/cifar10-mini,results/cifar10-jpg-mini)
MINI_JOBS ?= 2
MINI_DOWNLOAD ?=
MINI_PARTS = table figures schedules finetune picture
MINI = $(BIN)/python -m swa_bench.miniature --data $(MINI_DATA) --out $(MINI_OUT) \
       --results $(MINI_RESULTS) --jobs $(MINI_JOBS) $(if $(MINI_DOWNLOAD),--download)
MINI_INPUT = $(if $(MINI_DOWNLOAD),,$(MINI_DATA)/test)

reproduce-mini: install $(MINI_INPUT)
	$(MINI) $(foreach p,$(MINI_PARTS),--part $(p))

$(addprefix reproduce-mini-,$(MINI_PARTS)): reproduce-mini-%: install $(MINI_INPUT)
	$(MINI) --part $*

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
