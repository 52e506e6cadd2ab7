"""The device-resident batched input path against torchvision's per-image path."""

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Subset

from swa_bench.data.datasets import ImageArrayDataset
from swa_bench.data.device_loader import DeviceImageLoader, augment_batch, normalise_batch
from swa_bench.data.loaders import make_loader, resolve_loader_kind
from swa_bench.data.transforms import ImageTransform

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def per_image_reference(image: np.ndarray, spec: ImageTransform, top: int, left: int, flip: bool) -> torch.Tensor:
    """torchvision's functional ops on a PIL image, in the spec's order, with fixed draws."""
    pil = Image.fromarray(image)
    for name in spec.augment:
        if name == "crop":
            pil = TF.crop(TF.pad(pil, spec.padding, fill=0), top, left, image.shape[0], image.shape[1])
        elif flip:
            pil = TF.hflip(pil)
    return TF.normalize(TF.to_tensor(pil), spec.mean, spec.std)


@pytest.mark.parametrize("augment", [("flip", "crop"), ("crop", "flip"), ("crop",), ()])
def test_batched_transform_equals_torchvision_for_fixed_draws(augment):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    spec = ImageTransform(augment, 4, MEAN, STD)
    offsets = torch.from_numpy(rng.integers(0, 9, (16, 2)))
    flips = torch.from_numpy(rng.random(16) < 0.5)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    batched = normalise_batch(augment_batch(torch.from_numpy(images), spec, offsets, flips), mean, std)
    for i in range(16):
        expected = per_image_reference(images[i], spec, int(offsets[i, 0]), int(offsets[i, 1]), bool(flips[i]))
        assert torch.equal(batched[i], expected), i


def test_device_loader_draws_cover_the_distribution_and_every_image():
    n = 300
    images = np.zeros((n, 8, 8, 1), dtype=np.uint8)
    images[:, 0, 0, 0] = 255  # a marker pixel shows where each crop/flip put the corner
    targets = np.arange(n) % 10
    spec = ImageTransform(("crop", "flip"), 2, (0.0,), (1.0,))
    gen = torch.Generator().manual_seed(0)
    loader = DeviceImageLoader(images, targets, spec, 64, shuffle=True, device=torch.device("cpu"), generator=gen)
    assert len(loader) == 5
    seen, positions = [], set()
    for inputs, labels in loader:
        assert inputs.shape[1:] == (1, 8, 8) and inputs.dtype == torch.float32
        seen.append(labels)
        for img in inputs[:, 0]:
            hits = (img == 1.0).nonzero().tolist()
            positions.update(map(tuple, hits))
    assert sorted(torch.cat(seen).tolist()) == sorted(targets.tolist())
    # Offsets 0..4 around a padding of 2, flipped or not: the marker lands on many distinct cells.
    assert len(positions) >= 12


def test_device_loader_is_deterministic_per_seed_and_unshuffled_in_order():
    images = np.random.default_rng(1).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    targets = np.arange(50) % 10
    spec = ImageTransform(("flip", "crop"), 4, MEAN, STD)

    def first_batch(seed):
        gen = torch.Generator().manual_seed(seed)
        loader = DeviceImageLoader(images, targets, spec, 16, shuffle=True, device=torch.device("cpu"), generator=gen)
        return next(iter(loader))

    assert torch.equal(first_batch(3)[0], first_batch(3)[0])
    assert not torch.equal(first_batch(3)[0], first_batch(4)[0])
    plain = DeviceImageLoader(
        images, targets, ImageTransform((), 4, MEAN, STD), 16, shuffle=False, device=torch.device("cpu")
    )
    assert torch.cat([t for _, t in plain]).tolist() == targets.tolist()


def test_make_loader_builds_a_device_loader_over_a_subset():
    images = np.random.default_rng(2).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    targets = np.arange(40) % 10
    dataset = Subset(ImageArrayDataset(images, targets, ImageTransform((), 4, MEAN, STD)), [3, 5, 7])
    loader = make_loader(dataset, 2, shuffle=False, workers=0, device=torch.device("cpu"), kind="device")
    inputs, labels = next(iter(loader))
    assert labels.tolist() == [3, 5]
    torch.testing.assert_close(inputs[0], dataset[0][0])  # the same tensor the PIL path gives
    assert resolve_loader_kind("auto", torch.device("cpu")) == "torch"
    assert resolve_loader_kind("auto", torch.device("cuda")) == "device"
