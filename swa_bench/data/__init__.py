"""Datasets (CIFAR-10/100 from torchvision files or an ImageFolder tree; the 8x8 digits demo),
the per-family transforms of docs/PROTOCOL.md §2, and loaders."""

from swa_bench.data.datasets import DataError, DatasetBundle, build_datasets  # noqa: F401
from swa_bench.data.loaders import make_loader, resolve_loader_kind  # noqa: F401
