#!/usr/bin/env bash
# The four figure commands on a tiny REAL-data pair of runs, on a CPU: PreResNet-110 on 1,000
# images of the JPEG copy of CIFAR-10 (extract ../shared/data/cifar10-jpg.tar.gz into data/ first),
# budget x0.02, then every figure with small point counts and evaluation subsets, each timed.
# Figures and their data go to docs/figures/. Quick, not the paper's settings: the defaults of the
# commands (10 rays x 21 points, 31 line points, a 21x21 plane, full data) are the paper's.
set -euo pipefail
DATA=${DATA:-data/cifar10-jpg}
OUT=${OUT:-runs/figures-quick}
FIGS=${FIGS:-docs/figures}
SB=${SB:-.venv/bin/swa-bench}
ROW=(--config configs/cifar10/preresnet110.yaml --data-path "$DATA" --out "$OUT" --budget-scale 0.02
     --set data.train_subset=1000 --set data.workers=2 --device cpu --quiet)
EVAL=(--train-images 500 --test-images 1000 --out "$FIGS" --quiet)
RUNS="$OUT/cifar10/preresnet110"

for method in sgd swa; do "$SB" train "${ROW[@]}" --method "$method"; done
timed() { local start=$SECONDS; "$@" > /dev/null; echo "$(( SECONDS - start )) s: ${*:2:2}"; }
timed "$SB" plot curves "$RUNS/sgd/seed0" "$RUNS/swa/seed0" --out "$FIGS"
timed "$SB" landscape line --swa "$RUNS/swa/seed0" --sgd "$RUNS/sgd/seed0" --points 7 "${EVAL[@]}"
timed "$SB" landscape rays --swa "$RUNS/swa/seed0" --sgd "$RUNS/sgd/seed0" --rays 2 --points 5 \
    --max-distance 20 "${EVAL[@]}"
timed "$SB" landscape plane "$RUNS/sgd/seed0/checkpoints/sgd.pt" "$RUNS/swa/seed0/checkpoints/swa_1.pt" \
    "$RUNS/swa/seed0/checkpoints/swa_1.5.pt" --grid 3 "${EVAL[@]}"
