#!/usr/bin/env bash
# The one prepared run for a lent GPU (an H200 through the device tool, or any CUDA box).
# Prints every figure docs/PERFORMANCE.md asks for, then a full-budget VGG-16 CIFAR-10 SGD + SWA pair
# on the JPEG copy of CIFAR-10 with the fast path.
#   usage: scripts/gpu_check.sh [OUT_DIR]          (about 10 minutes on an H200)
# Needs data/cifar10-jpg/ or data/cifar10-jpg.tar.gz (copy ../shared/data/cifar10-jpg.tar.gz into
# the git-ignored data/ folder and carry it). Runs from the source tree without installing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-runs/gpu}}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$out" data
[ -d data/cifar10-jpg/train ] || tar xzf data/cifar10-jpg.tar.gz -C data
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
nproc

fast="--precision bf16 --compile reduce-overhead --channels-last"
for model in vgg16 preresnet164 wrn28x10; do
  python3 -m swa_bench bench --model "$model" --device cuda --steps 50 --workers 8 \
    --json "$out/bench-$model-fp32.json"
  python3 -m swa_bench bench --model "$model" --device cuda --steps 50 --workers 8 $fast \
    --json "$out/bench-$model-fast.json"
done

# Full budget (200 / 300 epochs), real images, one seed; seconds per epoch are in metrics.jsonl.
for method in sgd swa; do
  python3 -m swa_bench train --config configs/cifar10/vgg16.yaml --method "$method" --device cuda \
    --data-path data/cifar10-jpg --out "$out/runs" --quiet \
    --set run.precision=bf16 --set run.compile=reduce-overhead --set run.channels_last=true
done
python3 -m swa_bench table "$out/runs"
python3 - "$out/runs" <<'PY'
import json, pathlib, sys
for m in sorted(pathlib.Path(sys.argv[1]).rglob("metrics.jsonl")):
    rows = [json.loads(l) for l in m.read_text().splitlines()]
    secs = sorted(r["seconds"] for r in rows)
    print(m.parent, "epochs", len(rows), "median s/epoch", round(secs[len(secs) // 2], 3), "total s", round(sum(secs), 1))
PY
