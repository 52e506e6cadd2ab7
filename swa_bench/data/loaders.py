"""Loaders shared by training, BN recomputation and evaluation: torchvision's DataLoader with
per-image PIL transforms, or the device-resident batched loader (same data, same distribution).

Every image of a pass gets its own augmentation seed, drawn with the pass's order from one generator
that the trainer re-seeds per pass. An image's crop and flip therefore depend on (run seed, epoch,
position in the pass) only: not on the number of workers, whether they persist across epochs, or
how many processes share the pass (each rank takes every world-th position of the same order).
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset, default_collate, get_worker_info

from swa_bench.data.device_loader import DeviceImageLoader


def image_rows(dataset: Dataset) -> tuple[Dataset, list[int]]:
    """(the image dataset, the indices into it) of a dataset or a Subset of Subsets of one."""
    indices = list(range(len(dataset)))
    while isinstance(dataset, Subset):
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    return dataset, indices


def resolve_loader_kind(kind: str, device: torch.device, in_memory: bool = True) -> str:
    """`auto`: the device loader on CUDA for in-memory images (per-image PIL work would starve the
    GPU), else torch's. Images read from files (ImageNet) always go through torch's loader."""
    if kind == "auto":
        return "device" if device.type == "cuda" and in_memory else "torch"
    return kind


class PassSampler(Sampler):
    """(index, seed) pairs of one pass over n items: shuffled (or in order) by `generator`, each
    position with a seed from it too; this rank's share is every world-th position. `pad` repeats
    the first positions so every rank gets as many items (training: equal step counts under DDP)."""

    def __init__(self, n: int, shuffle: bool, generator: torch.Generator | None, rank: int = 0, world: int = 1,
                 pad: bool = False):
        self.n, self.shuffle, self.generator = n, shuffle, generator
        self.rank, self.world, self.pad = rank, world, pad
        self.total = -(-n // world) * world if pad else n
        self.skip = 0  # items of this rank's share to leave out of the next pass only (mid-epoch resume)

    def __len__(self) -> int:
        return len(range(self.rank, self.total, self.world))

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.n, generator=self.generator).tolist()
            seeds = torch.randint(0, 2**62, (self.n,), generator=self.generator).tolist()
        else:
            order, seeds = range(self.n), [None] * self.n
        skip, self.skip = self.skip, 0
        for p in range(self.rank + skip * self.world, self.total, self.world):
            yield order[p % self.n], seeds[p % self.n]


class _SeededItems(Dataset):
    """dataset[(index, seed)]: re-seeds torch's RNG (which torchvision's transforms draw from) first."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item):
        index, seed = item
        if seed is None:
            return self.dataset[index]
        # Only the CPU generator is seeded (torch.manual_seed would reseed every CUDA generator too, which
        # dropout and shake noise on the GPU draw from, and fork_rng below restores only the CPU one).
        if get_worker_info() is not None:  # a worker process: its RNG is the transforms' alone
            torch.default_generator.manual_seed(seed)
            return self.dataset[index]
        with torch.random.fork_rng(devices=[]):  # the main process: leave the training RNG (dropout) alone
            torch.default_generator.manual_seed(seed)
            return self.dataset[index]


def _collate_counting_skips(batch):
    """Items an ImageFileDataset skipped come as None: leave them out, count them."""
    kept = [item for item in batch if item is not None]
    inputs, targets = default_collate(kept) if kept else (None, None)
    return inputs, targets, len(batch) - len(kept)


class CountingLoader:
    """A DataLoader's (inputs, targets) batches; `skipped` counts unreadable images left out of the
    last pass (only with data.skip_bad_images)."""

    def __init__(self, loader: DataLoader):
        self.loader = loader
        self.sampler = loader.sampler
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.loader)

    def skip_batches(self, n: int) -> None:
        """Start the next pass after its first n batches (drawing the same order and seeds)."""
        self.sampler.skip = n * self.loader.batch_size

    def __iter__(self):
        self.skipped = 0
        for inputs, targets, skipped in self.loader:
            self.skipped += skipped
            if inputs is not None:
                yield inputs, targets


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    workers: int,
    device: torch.device,
    generator: torch.Generator | None = None,
    kind: str = "torch",
    rank: int = 0,
    world: int = 1,
    pad: bool = False,
):
    """Batches of `dataset` (an image dataset or a Subset of one) for this rank of `world`.

    Order and augmentation draws come from `generator`, which the trainer re-seeds each pass, so a
    pass's data is a function of (seed, epoch) alone. A device loader needs a generator on `device`.
    """
    if kind == "device":
        base, indices = image_rows(dataset)
        images, targets = base.images, base.targets
        if indices != list(range(len(base))):
            images, targets = images[indices], targets[indices]
        return DeviceImageLoader(images, targets, base.spec, batch_size, shuffle=shuffle, device=device,
                                 generator=generator, rank=rank, world=world, pad=pad)
    sampler = PassSampler(len(dataset), shuffle, generator, rank, world, pad)
    return CountingLoader(DataLoader(
        _SeededItems(dataset),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        # Workers stay up between passes; the per-image seeds keep every pass reproducible anyway.
        persistent_workers=workers > 0,
        collate_fn=_collate_counting_skips,
        drop_last=False,
    ))
