"""The config's schema: typed, frozen sections with the reference protocol's defaults (docs/PROTOCOL.md
§2; the YAML files in configs/ spell out every per-row value). The methods' own sections (swa, ema,
fge, and any method registered later) are defined with their methods (swa_bench/methods).

A key marked `metadata=RUNTIME` changes where or how fast a run goes, never its numbers: it may differ
on resume, is left out of a run's identity, and does not make a run a deviation from the paper's
protocol. A key marked `metadata=LATER` was added after run identities were first recorded: it is left
out of a run's identity while unset, so runs recorded before it keep theirs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from swa_bench.methods.ema import EMAConfig
from swa_bench.methods.fge import FGEConfig
from swa_bench.methods.swa import SWAConfig

RUNTIME = {"runtime": True}
LATER = {"later": True}


@dataclass(frozen=True)
class DataConfig:
    dataset: Literal["cifar10", "cifar100", "digits", "imagenet"]
    # Normalisation and augmentation are per model family in the reference (docs/PROTOCOL.md §2), so each row's
    # config names them. `augment` is applied in the listed order: crop (zero padding crop_padding,
    # CIFAR), resized_crop (RandomResizedCrop to image_size, ImageNet), flip.
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: tuple[Literal["crop", "flip", "resized_crop"], ...] = ("crop", "flip")
    crop_padding: int = 4
    # Network input size; None: the images' own size (CIFAR). With test_resize, test images are
    # resized (shorter side) to it and centre-cropped to image_size (ImageNet: 256 -> 224).
    image_size: int | None = None
    test_resize: int | None = None
    path: str = field(default="data", metadata=RUNTIME)
    # auto: an ImageFolder tree if PATH/train and PATH/<test_split> exist, else torchvision's files.
    # ImageNet is always an ImageFolder tree, read image by image (the others are decoded into memory).
    format: Literal["auto", "torchvision", "imagefolder"] = "auto"
    test_split: str = field(
        default="test", metadata=RUNTIME
    )  # the ImageFolder folder of the test images (ImageNet: val)
    # None: the dataset's class count; set it for a tree holding fewer classes (e.g. a small subset).
    num_classes: int | None = None
    # An unreadable image stops the run with its path; true: skip such images, counted in the metrics.
    skip_bad_images: bool = False
    download: bool = field(default=False, metadata=RUNTIME)
    verify_checksums: bool = field(default=True, metadata=RUNTIME)
    # Train on a random subset of N training images (None = all); the subset depends only on
    # subset_seed, so every seed of a comparison sees the same images.
    train_subset: int | None = None
    subset_seed: int = 0
    workers: int = field(default=4, metadata=RUNTIME)
    # torch: DataLoader with per-image PIL transforms (the reference's path); device: the image set
    # on the device, augmented per batch there (same distribution); auto: device on CUDA.
    loader: Literal["auto", "torch", "device"] = field(default="auto", metadata=RUNTIME)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    options: dict = field(default_factory=dict)  # keyword options of the registered builder
    # Pretrained weights by torchvision's name (e.g. IMAGENET1K_V1) for the torchvision models; read
    # from weights_path when given (machines without internet), else from torch's hub cache or the web.
    weights: str | None = None
    weights_path: str | None = field(default=None, metadata=RUNTIME)
    download: bool = field(
        default=False, metadata=RUNTIME
    )  # fetch missing weights from torchvision's URL (never by default)
    verify_weights: bool = field(
        default=True, metadata=RUNTIME
    )  # check a file's sha256 against torchvision's; false for weights made elsewhere


@dataclass(frozen=True)
class OptimConfig:
    lr_init: float
    weight_decay: float
    momentum: float = 0.9
    nesterov: bool = False
    batch_size: int = 128


@dataclass(frozen=True)
class ScheduleConfig:
    budget: int  # B: epochs conventional SGD needs; an SGD run trains for B epochs
    # The SGD baseline's learning rate (an SWA run continued from it has followed it for B epochs):
    #   linear: the SWA reference's flat / linear / flat schedule, per epoch, down to sgd_final_ratio
    #   step:   x gamma at each epoch in `milestones`, per epoch
    #   cosine: per iteration, half a cosine from lr_init down to final_lr over the B epochs
    type: Literal["linear", "step", "cosine"] = "linear"
    sgd_final_ratio: float = 0.01  # r of the linear schedule
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    final_lr: float = 0.0
    eval_every: int = 5  # the reference's evaluation cadence (plus the first and last epoch)


@dataclass(frozen=True)
class LogConfig:
    # Dashboards fed every metrics row besides metrics.jsonl (swa_bench/dashboards.py):
    # tensorboard writes <run>/tensorboard/; wandb logs through the `wandb` package. The wandb keys
    # left unset fall back to wandb's own settings (WANDB_PROJECT, WANDB_ENTITY, WANDB_MODE).
    to: tuple[Literal["tensorboard", "wandb"], ...] = field(default=(), metadata=RUNTIME)
    wandb_project: str | None = field(default=None, metadata=RUNTIME)
    wandb_entity: str | None = field(default=None, metadata=RUNTIME)
    wandb_mode: Literal["online", "offline", "disabled"] | None = field(default=None, metadata=RUNTIME)


@dataclass(frozen=True)
class RunConfig:
    method: str = "sgd"  # a registered method (swa_bench/methods), checked at load
    seed: int = 0
    budget_scale: float = 1.0  # multiplies every epoch count of the protocol, for quick runs
    device: Literal["auto", "cpu", "cuda"] = field(default="auto", metadata=RUNTIME)
    # Rolling checkpoints: after every `checkpoint_every` epochs (None: no epoch cadence) and once
    # `checkpoint_minutes` of wall time have passed since the last one (None: no time cadence).
    # Budget points, the end and stop signals always write. Why 10 minutes: docs/PERFORMANCE.md.
    checkpoint_every: int | None = field(default=None, metadata=RUNTIME)
    checkpoint_minutes: float | None = field(default=10.0, metadata=RUNTIME)
    # Speed (docs/PERFORMANCE.md). Master weights and the optimizer stay fp32 whatever the precision:
    # tf32 lets CUDA matmuls/convs use TF32; bf16 runs forward/backward under bf16 autocast.
    precision: Literal["fp32", "tf32", "bf16"] = "fp32"
    channels_last: bool = field(default=False, metadata=RUNTIME)
    compile: Literal["none", "default", "reduce-overhead", "max-autotune"] = field(default="none", metadata=RUNTIME)


@dataclass(frozen=True)
class Config:
    data: DataConfig
    model: ModelConfig
    optim: OptimConfig
    schedule: ScheduleConfig
    swa: SWAConfig
    run: RunConfig = field(default_factory=RunConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    fge: FGEConfig = field(default_factory=FGEConfig)
    log: LogConfig = field(default_factory=LogConfig)

    # The sections of methods registered beyond the built-in ones (section name -> its dataclass),
    # written after the others in the resolved config.
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        plain = {
            f.name: dataclasses.asdict(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "extra"
        }
        plain.update({name: dataclasses.asdict(section) for name, section in self.extra.items()})
        return _plain(plain)

    def section(self, name: str):
        """A method's config section by name."""
        return getattr(self, name) if name in BUILTIN_SECTIONS else self.extra[name]


BUILTIN_SECTIONS = ("data", "model", "optim", "schedule", "swa", "run", "ema", "fge", "log")


def _keys(cls, marker: str, prefix: str = "") -> frozenset:
    """The dotted keys of the fields marked `marker` under a section dataclass."""
    keys = set()
    for f in dataclasses.fields(cls):
        if f.metadata.get(marker):
            keys.add(prefix + f.name)
        if isinstance(f.type, str) and f.type in _SECTION_TYPES:
            keys |= _keys(_SECTION_TYPES[f.type], marker, f"{prefix}{f.name}.")
    return frozenset(keys)


@dataclass(frozen=True)
class DatasetFacts:
    """What is known of a dataset before any of it is read (as distributed)."""

    classes: int
    train_images: int
    test_images: int
    channels: int
    title: str  # how tables name it


DATASETS = {
    "cifar10": DatasetFacts(10, 50_000, 10_000, 3, "CIFAR-10"),
    "cifar100": DatasetFacts(100, 50_000, 10_000, 3, "CIFAR-100"),
    "digits": DatasetFacts(10, 1437, 360, 1, "Digits 8x8 (demo)"),
    "imagenet": DatasetFacts(1000, 1_281_167, 50_000, 3, "ImageNet"),
}


def num_classes(data: DataConfig) -> int:
    return data.num_classes or DATASETS[data.dataset].classes


def _plain(obj):
    """Tuples to lists, so the resolved config is plain YAML/JSON."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


_SECTION_TYPES = {
    t.__name__: t
    for t in (
        DataConfig,
        ModelConfig,
        OptimConfig,
        ScheduleConfig,
        SWAConfig,
        RunConfig,
        EMAConfig,
        FGEConfig,
        LogConfig,
    )
}
RUNTIME_KEYS = _keys(Config, "runtime")
LATER_KEYS = _keys(Config, "later")
