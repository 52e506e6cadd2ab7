#!/usr/bin/env python3
"""Write a tiny SYNTHETIC CIFAR-10 and CIFAR-100 (random pixels and labels) in torchvision's pickle
format, for exercising the full reproduction pipeline on a CPU (`make reproduce-cifar10` with a tiny
budget scale). Runs on it need --set data.verify_checksums=false, and tables label them
"unverified files": they measure nothing about SWA.

    python scripts/make_tiny_cifar.py data/tiny-cifar
"""

import sys
from pathlib import Path

from swa_bench.data.synthetic import write_cifar10, write_cifar100

if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "data/tiny-cifar")
    write_cifar10(root, n_per_batch=40, n_test=50)
    write_cifar100(root, n_train=200, n_test=50)
    print(f"{root}: synthetic cifar-10-batches-py/ (200 train / 50 test) and cifar-100-python/ (200 / 50)")
