"""Train and test transforms of SPEC §2, one description for both input paths.

The order of `augment` matters and differs by family in the reference: VGG flips then crops,
PreResNet and WRN crop then flip. Test images are only normalised. An `ImageTransform` is applied
either per image with torchvision (PIL, in a DataLoader) or per batch on the device
(device_loader.py); both draw crop offsets uniformly in [0, 2 * padding] and flip with p = 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

from torchvision import transforms as T

from swa_bench.config import DataConfig


@dataclass(frozen=True)
class ImageTransform:
    augment: tuple[str, ...]  # "crop" (zero padding `padding`) and "flip", in this order
    padding: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def torchvision(self, image_size: int) -> T.Compose:
        ops = {
            "crop": lambda: T.RandomCrop(image_size, padding=self.padding),
            "flip": lambda: T.RandomHorizontalFlip(),
        }
        return T.Compose([ops[name]() for name in self.augment] + [T.ToTensor(), T.Normalize(self.mean, self.std)])


def transforms_for(cfg: DataConfig) -> tuple[ImageTransform, ImageTransform]:
    train = ImageTransform(tuple(cfg.augment), cfg.crop_padding, tuple(cfg.mean), tuple(cfg.std))
    test = ImageTransform((), cfg.crop_padding, tuple(cfg.mean), tuple(cfg.std))
    return train, test

