# swa-bench: install, test, demo. Every target uses the virtualenv in $(VENV).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_OUT ?= runs/demo
DEMO_SEEDS ?= 0 1 2

.PHONY: install test format test-slow demo table bench clean reproduce reproduce-cifar10 reproduce-cifar100 \
        reproduce-imagenet figures reproduce-mini $(addprefix reproduce-mini-,table figures schedules finetune picture) \
        reproduce-cpu $(addprefix reproduce-cpu-,table finetune schedules picture)

install: $(BIN)/swa-bench

$(BIN)/swa-bench: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The linter and the formatter's check (pyproject.toml [tool.ruff]), then the suite. make format applies both.
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

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

# Experiments on real CIFAR-10 images, on a CPU, each described by a file (swa_bench/experiments/<name>.yaml)
# and run in parts that run alone and resume (finished runs and landscape points are kept and skipped):
#   make reproduce-cpu     Table 1 at full size: PreResNet-20 on all 50,000 images, B = 10 (results/cifar10-jpg-full);
#                          3 to 14 hours on 2 cores by the CPU, over as many sittings as it takes: run it again to resume
#   make reproduce-mini    the paper in miniature: 1,000 images (results/cifar10-jpg-mini), 1 h 15 min to 2 h 30 min on 2 cores
# One part: make reproduce-cpu-table (or -finetune, -schedules, -picture), make reproduce-mini-figures (or
# -table, -schedules, -finetune, -picture). The parts:
#   table      Table 1: SGD, FGE, SWA at two rate rules (the miniature also EMA, and seeds 3 and 4)
#   figures    (miniature) seed 0: curves, optima width along rays, the SGD-SWA line, the FGE plane
#   schedules  constant and cyclical SWA rates from the seed-0 SGD run (sec. 4.3); the miniature also a fixed rate (4.4)
#   finetune   Table 2's shape: SWA from each finished SGD run
#   picture    the table as a picture (paired differences to SGD)
# Each prints its progress and wall time (also in <results>/wall_times.csv). The JPEG copy of CIFAR-10 is
# extracted from $(CIFAR_TARBALL) when there; without it, torchvision's CIFAR-10 files are used:
# make reproduce-cpu DOWNLOAD=1 fetches them into data/cifar (runs and results of the two copies go to
# folders of their own, as a run is tied to the files it read; their numbers differ from the committed ones).
CIFAR_TARBALL ?= ../shared/data/cifar10-jpg.tar.gz
DOWNLOAD ?= $(if $(wildcard $(CIFAR_TARBALL)),,1)
EXP_DATA ?= $(if $(DOWNLOAD),data/cifar,data/cifar10-jpg)
EXP_COPY = $(if $(DOWNLOAD),-torchvision,)
EXP_JOBS ?= 2
CPU_PARTS = table finetune schedules picture
MINI_PARTS = table figures schedules finetune picture
# experiment name, its results folder for each copy of the data
EXPERIMENT = $(BIN)/python -m swa_bench.experiment $(1) --data $(EXP_DATA) --out runs/$(1)$(EXP_COPY) \
             --results $(if $(DOWNLOAD),results/cifar10-$(2),results/cifar10-jpg-$(2)) --jobs $(EXP_JOBS) $(if $(DOWNLOAD),--download)
EXP_INPUT = $(if $(DOWNLOAD),,$(EXP_DATA)/test)

reproduce-cpu: install $(EXP_INPUT)
	$(call EXPERIMENT,cpu,full) $(foreach p,$(CPU_PARTS),--part $(p))

$(addprefix reproduce-cpu-,$(CPU_PARTS)): reproduce-cpu-%: install $(EXP_INPUT)
	$(call EXPERIMENT,cpu,full) --part $*

reproduce-mini: install $(EXP_INPUT)
	$(call EXPERIMENT,mini,mini) $(foreach p,$(MINI_PARTS),--part $(p))

$(addprefix reproduce-mini-,$(MINI_PARTS)): reproduce-mini-%: install $(EXP_INPUT)
	$(call EXPERIMENT,mini,mini) --part $*

data/cifar10-jpg/test:
	mkdir -p data
	tar xzf $(CIFAR_TARBALL) -C data
	@test -d $@ || { echo "error: $(CIFAR_TARBALL) did not give $@ (it should hold cifar10-jpg/train and cifar10-jpg/test)" >&2; exit 2; }

# The paper's figures (docs/PROTOCOL.md §6) from the runs of one row and seed in OUT (default: PreResNet-164 on
# CIFAR-100, seed 0, as in the paper), into FIG_OUT: the curves, the rays and the SGD-SWA line from the SGD and
# SWA runs, and the paper's Figure 1 plane from the FGE run: through its first, middle and last collected
# models, the average of all of them marked. The landscapes recompute BN at every point: on a GPU, tens of
# minutes each at the paper's point counts.
FIG_ROW ?= cifar100/preresnet164
FIG_SEED ?= 0
FIG_OUT ?= figures
FIG_RUNS = $(OUT)/$(FIG_ROW)
FIG_MEMBERS = $(FIG_RUNS)/fge/seed$(FIG_SEED)/checkpoints
figures: install
	$(BIN)/swa-bench plot curves $(FIG_RUNS)/sgd/seed* $(FIG_RUNS)/swa/seed* --out $(FIG_OUT)
	$(BIN)/swa-bench landscape line --swa $(FIG_RUNS)/swa/seed$(FIG_SEED) --sgd $(FIG_RUNS)/sgd/seed$(FIG_SEED) --out $(FIG_OUT)
	$(BIN)/swa-bench landscape rays --swa $(FIG_RUNS)/swa/seed$(FIG_SEED) --sgd $(FIG_RUNS)/sgd/seed$(FIG_SEED) --out $(FIG_OUT)
	@members=$$(ls $(FIG_MEMBERS)/fge_member*.pt 2>/dev/null | sort -V); set -- $$members; \
	  test $$# -ge 3 || { echo "error: $(FIG_MEMBERS): $$# FGE models kept; the plane needs three (train --method fge first)" >&2; exit 2; }; \
	  first=$$1; last=$$(eval echo \$${$$#}); middle=$$(eval echo \$${$$(( ($$# + 1) / 2 ))}); \
	  echo "plane through $$first $$middle $$last, the average of $$# marked"; \
	  $(BIN)/swa-bench landscape plane $$first $$middle $$last $$(for m in $$members; do printf -- '--mean-of %s ' $$m; done) --out $(FIG_OUT)

clean:
	rm -rf build dist *.egg-info .pytest_cache
