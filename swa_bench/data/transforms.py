"""Train and test transforms of SPEC §2, built from the config.

The order of `augment` matters and differs by family in the reference: VGG flips then crops,
PreResNet and WRN crop then flip. Test images are only normalised.
"""

from __future__ import annotations

from torchvision import transforms as T

from swa_bench.config import DataConfig

_AUGMENTATIONS = {
    "crop": lambda size, cfg: T.RandomCrop(size, padding=cfg.crop_padding),  # zero padding
    "flip": lambda size, cfg: T.RandomHorizontalFlip(),
}


def build_transforms(cfg: DataConfig, image_size: int) -> tuple[T.Compose, T.Compose]:
    to_normalised = [T.ToTensor(), T.Normalize(cfg.mean, cfg.std)]
    train = [_AUGMENTATIONS[name](image_size, cfg) for name in cfg.augment] + to_normalised
    return T.Compose(train), T.Compose(to_normalised)
