#!/usr/bin/env bash
# The real-data check reported in the README: VGG-16 on the JPEG copy of CIFAR-10, a random
# 5000-image training subset, budget scale 0.02 (SGD 4 epochs; SWA 6 epochs from epoch 3), CPU.
#   usage: scripts/real_data_quick.sh [DATA_DIR] [OUT_DIR]
set -euo pipefail
data=${1:-data/cifar10-jpg}
out=${2:-runs/real}
if [ ! -d "$data/train" ]; then
  mkdir -p "$(dirname "$data")"
  tar xzf ../shared/data/cifar10-jpg.tar.gz -C "$(dirname "$data")"
fi
for method in swa sgd; do
  swa-bench train --config configs/cifar10/vgg16.yaml --method "$method" --data-path "$data" \
    --budget-scale 0.02 --set data.train_subset=5000 --set data.workers=1 --out "$out"
done
swa-bench table "$out"
