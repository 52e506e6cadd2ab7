#!/usr/bin/env bash
# The paper's Table 1 rows covered so far (VGG-16, PreResNet-164, WRN-28-10 on CIFAR-10/100):
# SGD and SWA, 3 seeds each, then the table. Runs that finished are skipped, partial ones resume.
#   usage: scripts/reproduce_cifar.sh DATA_DIR [OUT_DIR] [extra train flags...]
# DATA_DIR holds cifar-10-batches-py/ and cifar-100-python/ (add --download to fetch them).
set -euo pipefail
data=${1:?usage: $0 DATA_DIR [OUT_DIR] [train flags...]}
out=${2:-runs}
shift $(( $# >= 2 ? 2 : 1 ))
for dataset in cifar10 cifar100; do
  for model in vgg16 preresnet164 wrn28x10; do
    for seed in 0 1 2; do
      for method in sgd swa; do
        swa-bench train --config "configs/$dataset/$model.yaml" --method "$method" --seed "$seed" \
          --data-path "$data" --out "$out" "$@"
      done
    done
  done
done
swa-bench table "$out"
