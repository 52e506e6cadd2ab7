#!/usr/bin/env bash
# The paper's three tables on a SLURM cluster, from a login node with swa-bench installed
# (pip install -e '.[slurm]'). Each run is an array task; a preempted or timed-out task is requeued
# and resumes its run from the checkpoint. Re-running this script skips finished runs.
set -euo pipefail
OUT=${OUT:-runs}
PARTITION=${PARTITION:-gpu}

swa-bench grid --table cifar10  --launcher slurm --partition "$PARTITION" --data-path /data/cifar \
    --out "$OUT" --time-min 720 --cpus-per-run 8
swa-bench grid --table cifar100 --launcher slurm --partition "$PARTITION" --data-path /data/cifar \
    --out "$OUT" --time-min 720 --cpus-per-run 8
swa-bench grid --table imagenet --launcher slurm --partition "$PARTITION" --data-path /data/imagenet \
    --out "$OUT" --time-min 1440 --gpus-per-run 8 --cpus-per-run 64 --mem-gb 400 \
    --set data.workers=7

# Later: swa-bench status "$OUT"; swa-bench table "$OUT"
