"""Where things are: the source tree the check runs from, its data and configs."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TREE = REPO / "data/cifar10-jpg"  # the JPEG copy of CIFAR-10, extracted
TARBALLS = [REPO / "data/cifar10-jpg.tar.gz", REPO.parent / "shared/data/cifar10-jpg.tar.gz"]
MINI = REPO / "configs/mini/preresnet20_ratio0.5.yaml"  # PreResNet-20 with BN: every averaging path
VGG16 = REPO / "configs/cifar10/vgg16.yaml"
GPU_HOURS = REPO / "scripts/gpu_hours.py"
STAND_INS = Path(__file__).resolve().parent / "stand_ins"  # modules put on the children's path where missing
