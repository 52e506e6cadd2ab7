"""Loaders shared by training, BN recomputation and evaluation: torchvision's DataLoader with
per-image PIL transforms, or the device-resident batched loader (same data, same distribution)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from swa_bench.data.device_loader import DeviceImageLoader


def resolve_loader_kind(kind: str, device: torch.device) -> str:
    """`auto`: the device loader on CUDA (per-image PIL work would starve the GPU), else torch's."""
    if kind == "auto":
        return "device" if device.type == "cuda" else "torch"
    return kind


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    workers: int,
    device: torch.device,
    generator: torch.Generator | None = None,
    kind: str = "torch",
):
    """Batches of `dataset` (an ImageArrayDataset or a Subset of one).

    Order and augmentation draws come from `generator`, which the trainer re-seeds each epoch, so an
    epoch's data is a function of (seed, epoch) alone. (With torch's loader and workers=0 the
    augmentation draws come from the global RNG, which the trainer re-seeds too.) A device loader
    needs a generator on `device`.
    """
    if kind == "device":
        base, indices = (dataset.dataset, dataset.indices) if isinstance(dataset, Subset) else (dataset, None)
        images, targets = base.images, base.targets
        if indices is not None:
            images, targets = images[indices], targets[indices]
        return DeviceImageLoader(images, targets, base.spec, batch_size, shuffle=shuffle, device=device,
                                 generator=generator)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        generator=generator,
        drop_last=False,
    )
