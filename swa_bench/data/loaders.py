"""DataLoader construction shared by training, BN recomputation and evaluation."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    workers: int,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """A loader whose order and augmentation draws come from `generator` (re-seeded by the caller
    each epoch), so an epoch's data is a function of (seed, epoch) alone and resumes are exact."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        generator=generator,
        drop_last=False,
    )
