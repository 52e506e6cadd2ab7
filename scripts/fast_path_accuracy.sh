#!/usr/bin/env bash
# Does the fast input path change accuracy? PreResNet-164 SGD on the JPEG copy of CIFAR-10
# (2000-image training subset, budget scale 0.02 = 3 epochs), the reference per-image DataLoader
# path vs the batched device path, same seeds; compare the two table rows.
#   usage: scripts/fast_path_accuracy.sh [DATA_DIR] [OUT_DIR] [SEEDS...]
set -euo pipefail
data=${1:-data/cifar10-jpg}
out=${2:-runs/fastpath}
shift $(( $# >= 2 ? 2 : $# ))
seeds=${*:-0 1}
for loader in torch device; do
  for seed in $seeds; do
    swa-bench train --config configs/cifar10/preresnet164.yaml --method sgd --seed "$seed" \
      --data-path "$data" --out "$out/$loader" --budget-scale 0.02 --quiet \
      --set data.train_subset=2000 --set data.loader="$loader" --set data.workers=1
  done
  echo "== $loader loader"
  swa-bench table "$out/$loader"
done
