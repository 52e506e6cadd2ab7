"""Train and test transforms of docs/PROTOCOL.md §2 and §4, one description for both input paths.

The order of `augment` matters and differs by family in the reference: VGG flips then crops,
PreResNet and WRN crop then flip. Test images are only normalised (ImageNet: resized, centre-cropped).
An `ImageTransform` is applied either per image with torchvision (PIL, in a DataLoader) or, for the
CIFAR-style crop and flip, per batch on the device (device_loader.py); both draw crop offsets
uniformly in [0, 2 * padding] and flip with p = 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

from swa_bench.config import DataConfig


@dataclass(frozen=True)
class ImageTransform:
    augment: tuple[str, ...]  # "crop" (zero padding `padding`), "resized_crop" and "flip", in this order
    padding: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: int | None = None  # output size; None: the images' own
    resize: int | None = None  # resize the shorter side to this, then centre-crop `size` (test images)

    def torchvision(self, image_size: int | None = None):
        """The per-image pipeline (a torchvision Compose)."""
        from torchvision import transforms as T  # imported here: it costs ~1.5 s, and the digits demo needs none

        size = self.size or image_size
        ops = {
            "crop": lambda: T.RandomCrop(size, padding=self.padding),
            "resized_crop": lambda: T.RandomResizedCrop(size),
            "flip": lambda: T.RandomHorizontalFlip(),
        }
        steps = [ops[name]() for name in self.augment]
        if self.resize is not None:
            steps = [T.Resize(self.resize), T.CenterCrop(size)] + steps
        return T.Compose(steps + [T.ToTensor(), T.Normalize(self.mean, self.std)])


def transforms_for(cfg: DataConfig) -> tuple[ImageTransform, ImageTransform]:
    common = dict(padding=cfg.crop_padding, mean=tuple(cfg.mean), std=tuple(cfg.std), size=cfg.image_size)
    train = ImageTransform(tuple(cfg.augment), **common)
    test = ImageTransform((), resize=cfg.test_resize, **common)
    return train, test
