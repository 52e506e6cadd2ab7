"""The image set resident on the device, augmented a batch at a time.

The uint8 images go to the device once (CIFAR's 50k training images are 154 MB). Each batch is
gathered by index, randomly cropped and flipped in one shot, and normalised, with the same
arithmetic as torchvision's PIL path (uint8 crop/flip, then /255, then (x - mean) / std), so for the
same crop offsets and flips the tensors are identical. Shuffling and the augmentation draws use one
generator on the device, re-seeded by the trainer every epoch; nothing here syncs the device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from swa_bench.data.transforms import ImageTransform


def crop_batch(images: torch.Tensor, offsets: torch.Tensor, padding: int) -> torch.Tensor:
    """(B, H, W, C) images, zero-padded by `padding`, cropped back to H x W at per-image (top, left)."""
    b, h, w, c = images.shape
    padded = F.pad(images, (0, 0, padding, padding, padding, padding))
    # A view of every (top, left) window of every image, then one gather of the chosen ones: about
    # 4x faster than indexing rows and columns per pixel.
    sb, sh, sw, sc = padded.stride()
    windows = padded.as_strided((b, 2 * padding + 1, 2 * padding + 1, h, w, c), (sb, sh, sw, sh, sw, sc))
    return windows[torch.arange(b, device=images.device), offsets[:, 0], offsets[:, 1]]


def flip_batch(images: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Mirror the (B, H, W, C) images where `flips` is true."""
    return torch.where(flips[:, None, None, None], images.flip(2), images)


def augment_batch(images: torch.Tensor, spec: ImageTransform, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    for name in spec.augment:
        images = crop_batch(images, offsets, spec.padding) if name == "crop" else flip_batch(images, flips)
    return images


def normalise_batch(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C, H, W), as ToTensor then Normalize compute it."""
    x = images.permute(0, 3, 1, 2).contiguous().float().div_(255)
    return x.sub_(mean).div_(std)


class DeviceImageLoader:
    """Iterates (inputs, targets) batches already on `device`, like a DataLoader over the same data."""

    def __init__(self, images, targets, spec: ImageTransform, batch_size: int, *, shuffle: bool,
                 device: torch.device, generator: torch.Generator | None = None, rank: int = 0, world: int = 1,
                 pad: bool = False):
        self.images = torch.as_tensor(images).to(device)
        self.targets = torch.as_tensor(targets, dtype=torch.long).to(device)
        self.spec = spec
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = device
        self.generator = generator
        # This process's share under DDP: every world-th position of the pass's order (see loaders.py).
        self.rank, self.world = rank, world
        n = len(self.targets)
        self.total = -(-n // world) * world if pad else n
        self.skip = 0  # batches to draw but not yield in the next pass only (mid-epoch resume)
        channels = self.images.shape[-1]
        self.mean = torch.tensor(spec.mean, device=device).view(1, channels, 1, 1)
        self.std = torch.tensor(spec.std, device=device).view(1, channels, 1, 1)

    def skip_batches(self, n: int) -> None:
        self.skip = n

    def __len__(self) -> int:
        return -(-len(range(self.rank, self.total, self.world)) // self.batch_size)

    def __iter__(self):
        n = len(self.targets)
        gen = self.generator
        if self.shuffle:
            order = torch.randperm(n, generator=gen, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        if self.world > 1 or self.total != n:
            order = order[torch.arange(self.rank, self.total, self.world, device=self.device) % n]
        skip, self.skip = self.skip, 0
        for batch, start in enumerate(range(0, len(order), self.batch_size)):
            index = order[start:start + self.batch_size]
            if self.spec.augment:
                b = index.numel()
                offsets = torch.randint(0, 2 * self.spec.padding + 1, (b, 2), generator=gen, device=self.device)
                flips = torch.rand(b, generator=gen, device=self.device) < 0.5
            if batch < skip:
                continue  # the draws are made all the same, so the batches after it match
            images = self.images[index]
            if self.spec.augment:
                images = augment_batch(images, self.spec, offsets, flips)
            yield normalise_batch(images, self.mean, self.std), self.targets[index]
