#!/usr/bin/env bash
# The one prepared run for a lent GPU (an H200 through the device tool, or any CUDA box).
# Prints every figure docs/PERFORMANCE.md asks for, then a full-budget VGG-16 CIFAR-10 SGD + SWA pair
# on the JPEG copy of CIFAR-10 with the fast path.
#   usage: scripts/gpu_check.sh [OUT_DIR]
# Sized for one 10-minute command on an H200: two benches (~2 min) and the pair (~5 min, see
# docs/PERFORMANCE.md for the estimate).
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
# Two benches (about a minute each with compilation): throughput, the checkpoint hold and the share
# outside the steps projected to the per-epoch targets of docs/PERFORMANCE.md.
python3 -m swa_bench bench --model vgg16 --device cuda --steps 30 --workers 8 $fast --epoch-seconds 0.4 \
  --json "$out/bench-vgg16-fast.json"
python3 -m swa_bench bench --model preresnet164 --device cuda --steps 30 --workers 8 $fast --epoch-seconds 1.5 \
  --json "$out/bench-preresnet164-fast.json"

# Full budget (200 / 300 epochs), real images, one seed; seconds per epoch are in metrics.jsonl.
for method in sgd swa; do
  python3 -m swa_bench train --config configs/cifar10/vgg16.yaml --method "$method" --device cuda \
    --data-path data/cifar10-jpg --out "$out/runs" --quiet \
    --set run.precision=bf16 --set run.compile=reduce-overhead --set run.channels_last=true
done
python3 -m swa_bench table "$out/runs"
python3 - "$out/runs" <<'PY'
# Seconds per epoch, and the share outside the steps: epochs without an evaluation are (almost)
# only steps, so their median stands for the step time of every epoch.
import json, pathlib, statistics, sys
for m in sorted(pathlib.Path(sys.argv[1]).rglob("metrics.jsonl")):
    rows = [json.loads(l) for l in m.read_text().splitlines()][1:]  # the first epoch compiles
    plain = [r["seconds"] for r in rows if "test_acc" not in r]
    step = statistics.median(plain)
    total = sum(r["seconds"] for r in rows)
    print(m.parent, f"epochs {len(rows) + 1}, median s/epoch without evaluation {step:.3f}, total s {total:.1f}, "
          f"outside the steps {100 * (total - step * len(rows)) / total:.1f}%")
PY
