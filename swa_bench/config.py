"""Run configuration: YAML files (one per paper row) loaded once into typed, frozen dataclasses.

Every problem is reported as one `ConfigError` line naming the file (or `--set`) and the dotted key.
The CLI turns it into exit code 2. Validation happens here and nowhere else: the rest of the code
trusts a `Config`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from swa_bench.errors import UserError
from swa_bench.yaml_input import YAMLInputError, load_yaml, shown

# The model registry (and with it torch) is imported where a config is checked, not here: reading
# run records and tables needs only the names below, and must not pay for importing torch.


class ConfigError(UserError, ValueError):
    """A config problem, already phrased as one line for the user."""


# --------------------------------------------------------------------------------------------------
# The schema. Defaults are the reference protocol's (docs/PROTOCOL.md §2); the YAML files in configs/ spell
# out every per-row value.


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
    path: str = "data"
    # auto: an ImageFolder tree if PATH/train and PATH/<test_split> exist, else torchvision's files.
    # ImageNet is always an ImageFolder tree, read image by image (the others are decoded into memory).
    format: Literal["auto", "torchvision", "imagefolder"] = "auto"
    test_split: str = "test"  # the ImageFolder folder of the test images (ImageNet: val)
    # None: the dataset's class count; set it for a tree holding fewer classes (e.g. a small subset).
    num_classes: int | None = None
    # An unreadable image stops the run with its path; true: skip such images, counted in the metrics.
    skip_bad_images: bool = False
    download: bool = False
    verify_checksums: bool = True
    # Train on a random subset of N training images (None = all); the subset depends only on
    # subset_seed, so every seed of a comparison sees the same images.
    train_subset: int | None = None
    subset_seed: int = 0
    workers: int = 4
    # torch: DataLoader with per-image PIL transforms (the reference's path); device: the image set
    # on the device, augmented per batch there (same distribution); auto: device on CUDA.
    loader: Literal["auto", "torch", "device"] = "auto"


@dataclass(frozen=True)
class ModelConfig:
    name: str
    options: dict = field(default_factory=dict)  # keyword options of the registered builder
    # Pretrained weights by torchvision's name (e.g. IMAGENET1K_V1) for the torchvision models; read
    # from weights_path when given (machines without internet), else from torch's hub cache or the web.
    weights: str | None = None
    weights_path: str | None = None
    download: bool = False  # fetch missing weights from torchvision's URL (never by default)
    verify_weights: bool = True  # check a file's sha256 against torchvision's; false for weights made elsewhere


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
class SWAConfig:
    # scratch: the reference protocol, one run from initial weights whose schedule turns into the SWA
    # rate at `start`. sgd_run: continue from the final checkpoint of the finished SGD run with the same
    # seed (PyramidNet and Shake-Shake rows), collecting from the end of the first cycle on.
    # pretrained: start from model.weights (ImageNet rows); the "SGD" run only evaluates those weights.
    start_from: Literal["scratch", "sgd_run", "pretrained"] = "scratch"
    include_start: bool = False  # the start point is the average's first member (Algorithm 1)
    # constant: swa_lr (`lr`). cyclical: per iteration from alpha1 down to alpha2 within each cycle of
    # `c_epochs` epochs, a model collected at each cycle end (docs/PROTOCOL.md §2).
    lr_schedule: Literal["constant", "cyclical"] = "constant"
    lr: float | None = None  # swa_lr
    alpha1: float | None = None
    alpha2: float | None = None
    start: int | None = None  # swa_start (scratch): first collection after this many epochs
    c_epochs: int = 1  # collect every c epochs; with a cyclical rate, the cycle length
    budgets: tuple[float, ...] = (1.0, 1.25, 1.5)  # where the averaged model is reported, in units of B
    report_epochs: tuple[int, ...] = ()  # instead of budgets: report after these epochs (ImageNet: 5, 10)
    # sgd_run only: continue from the state the SGD run kept after this many epochs (its FGE start,
    # fge.start x B) instead of its end; budgets then count the SGD epochs before it, as FGE's do
    # (the learning-rate schedule comparison, docs/PROTOCOL.md §10). None: from the end, epoch B.
    from_epoch: int | None = None
    # Shown beside the row in tables, for settings that are not the paper's (see configs/*/pyramidnet272.yaml).
    note: str | None = None
    # sgd_run and pretrained only: the cycle (and the interval between collections) in optimizer steps
    # instead of c_epochs, counted from the start point, for budgets too short for whole-epoch cycles
    # (a cycle scaled to a few-epoch budget). None: c_epochs.
    cycle_steps: int | None = None
    # Names one of several SWA settings compared against the same SGD runs (e.g. two swa_lr rules):
    # its runs go to <model>/swa-<variant>/ and it is a table row of its own, while the SGD runs,
    # which no swa key affects, stay shared in <model>/sgd/. None: the row's only SWA setting.
    variant: str | None = None


@dataclass(frozen=True)
class EMAConfig:
    # `--method ema`, beyond the paper: the SGD run's schedule, with an exponential moving average of
    # the weights, w_ema <- decay * w_ema + (1 - decay) * w, after every `every`-th optimizer step
    # (the first update copies the weights), BN recomputed for it as for SWA, reported at the end of
    # the budget. 0.9998 per step is timm's default (a horizon of ~5,000 steps: ~13 CIFAR epochs at
    # batch 128); runs of few steps per epoch need a smaller decay (configs/demo, configs/mini).
    decay: float = 0.9998
    every: int = 1


@dataclass(frozen=True)
class FGEConfig:
    # `--method fge`: Fast Geometric Ensembling (Garipov et al. 2018), the paper's Table 1 column beside
    # SWA. It continues the row's SGD run from its state after `start` x B epochs (weights and momentum),
    # which the SGD run keeps when the row has this section, for the rest of the budget at a triangular
    # per-iteration rate: alpha1 at each cycle's start, alpha2 at mid-cycle, alpha1 again at its end
    # (a cycle of `cycle` epochs). A model is collected at each mid-cycle point and the ensemble's
    # prediction is the mean of their softmax outputs; each keeps the BN statistics it trained with.
    # The values per row and their sources: docs/PROTOCOL.md §8. alpha1 unset: the row has no FGE.
    alpha1: float | None = None
    alpha2: float | None = None
    cycle: int = 2
    start: float = 0.8
    keep_models: int | None = None  # collected models whose weights are kept on disk (None: all)
    # The cycle in optimizer steps instead of `cycle` epochs (even: a model is collected at mid-cycle),
    # counted from the start point, for budgets too short for whole-epoch cycles. None: `cycle`.
    cycle_steps: int | None = None


@dataclass(frozen=True)
class LogConfig:
    # Dashboards fed every metrics row besides metrics.jsonl (swa_bench/dashboards.py):
    # tensorboard writes <run>/tensorboard/; wandb logs through the `wandb` package. The wandb keys
    # left unset fall back to wandb's own settings (WANDB_PROJECT, WANDB_ENTITY, WANDB_MODE).
    to: tuple[Literal["tensorboard", "wandb"], ...] = ()
    wandb_project: str | None = None
    wandb_entity: str | None = None
    wandb_mode: Literal["online", "offline", "disabled"] | None = None


@dataclass(frozen=True)
class RunConfig:
    method: Literal["sgd", "swa", "ema", "fge"] = "sgd"
    seed: int = 0
    budget_scale: float = 1.0  # multiplies every epoch count of the protocol, for quick runs
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Rolling checkpoints: after every `checkpoint_every` epochs (None: no epoch cadence) and once
    # `checkpoint_minutes` of wall time have passed since the last one (None: no time cadence).
    # Budget points, the end and stop signals always write. Why 10 minutes: docs/PERFORMANCE.md.
    checkpoint_every: int | None = None
    checkpoint_minutes: float | None = 10.0
    # Speed (docs/PERFORMANCE.md). Master weights and the optimizer stay fp32 whatever the precision:
    # tf32 lets CUDA matmuls/convs use TF32; bf16 runs forward/backward under bf16 autocast.
    precision: Literal["fp32", "tf32", "bf16"] = "fp32"
    channels_last: bool = False
    compile: Literal["none", "default", "reduce-overhead", "max-autotune"] = "none"


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

    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))


# Keys that change where or how fast a run goes, never its numbers: they may differ on resume and
# do not make a run a deviation from the paper's protocol.
RUNTIME_KEYS = frozenset(
    {
        "data.path",
        "data.download",
        "data.verify_checksums",
        "data.workers",
        "data.loader",
        "data.test_split",
        "model.weights_path",
        "model.download",
        "model.verify_weights",
        "run.device",
        "run.checkpoint_every",
        "run.checkpoint_minutes",
        "run.channels_last",
        "run.compile",
        "log.to",
        "log.wandb_project",
        "log.wandb_entity",
        "log.wandb_mode",
    }
)

# Keys added after run identities were first recorded: left out of a run's identity digest while unset,
# so that the runs recorded before them keep theirs (records.run_identity).
LATER_KEYS = frozenset({"swa.cycle_steps", "fge.cycle_steps"})


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


# --------------------------------------------------------------------------------------------------
# Loading


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read a YAML config, apply dotted-key overrides (from CLI flags and --set), validate."""
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: cannot read config file ({e.__class__.__name__})") from None
    try:
        raw = load_yaml(text)
    except YAMLInputError as e:
        raise ConfigError(f"{where}: {e}") from None
    if raw is None:
        raise ConfigError(f"{where}: config file is empty")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: top level must be a mapping of sections, got {type(raw).__name__}")
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value, where)
    return config_from_dict(raw, where)


def config_from_dict(raw: dict, where: str) -> Config:
    cfg = _build(Config, raw, where, prefix="")
    cfg = dataclasses.replace(cfg, model=_typed_model_options(cfg.model, where))
    _check_weights(cfg.model, where)
    _check_semantics(cfg, where)
    return cfg


def _typed_model_options(model: ModelConfig, where: str) -> ModelConfig:
    """Check `model.options` against the registered builder's keyword arguments and their types."""
    from swa_bench.models import get_model_entry, model_names

    try:
        entry = get_model_entry(model.name)
    except KeyError:
        raise ConfigError(
            f"{where}: model.name: unknown model {shown(model.name)} (known: {', '.join(model_names())})"
        ) from None
    if not model.options:
        return model
    allowed = entry.options()  # kept in the catalog: the builder (and torch) need not be imported
    options = {}
    for opt, value in model.options.items():
        key = f"model.options.{opt}"
        if opt not in allowed:
            raise ConfigError(
                f"{where}: {key}: not an option of {model.name} (options: {', '.join(allowed) or 'none'})"
            )
        options[opt] = value if allowed[opt] is Any else _coerce(allowed[opt], value, where, key)
    return dataclasses.replace(model, options=options)


def _check_weights(model: ModelConfig, where: str) -> None:
    if model.weights is None:
        if model.weights_path is not None:
            raise ConfigError(f"{where}: model.weights_path: given without model.weights (which weights it holds)")
        return
    from swa_bench.models import get_model_entry

    names = get_model_entry(model.name).weight_names
    if not names:
        raise ConfigError(f"{where}: model.weights: {model.name} has no pretrained weights")
    if model.weights not in names:
        raise ConfigError(
            f"{where}: model.weights: {model.name} has no weights {shown(model.weights)} (known: {', '.join(names)})"
        )


def parse_set_option(item: str) -> tuple[str, Any]:
    """`a.b=value` -> ("a.b", value), the value parsed as a YAML scalar (so 0.1, 5, null, true)."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected dotted.key=value")
    key, _, text = item.partition("=")
    key = key.strip()
    try:
        value = load_yaml(text) if text.strip() else None
    except YAMLInputError as e:
        if "not valid YAML" not in str(e):  # too deep, too large: refused
            raise ConfigError(f"--set {shown(key)}: {e}") from None
        value = text  # not YAML: taken as the text it is
    return key, value


def _set_dotted(raw: dict, key: str, value: Any, where: str) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{where}: {key}: cannot set inside {shown(part)}, which is not a section")
        node = nxt
    node[parts[-1]] = value


# --------------------------------------------------------------------------------------------------
# Generic typed construction from the dataclass annotations.

_VARIANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INT_LIMIT = 2**31  # beyond any sensible epoch count, batch size or seed
_SCALARS = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: (f"an integer below {_INT_LIMIT}", lambda v: type(v) is int and abs(v) < _INT_LIMIT),
    float: ("a finite number", lambda v: isinstance(v, float) and math.isfinite(v)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def _build(cls, raw: Any, where: str, prefix: str):
    if not isinstance(raw, dict):
        label = prefix.rstrip(".") or "top level"
        raise ConfigError(f"{where}: {label}: expected a mapping, got {_type_name(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields), key=str)
    if unknown:
        key = f"{prefix}{unknown[0]}".encode("unicode_escape").decode()  # keep the error on one line
        raise ConfigError(f"{where}: {key}: unknown key (known here: {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        key = f"{prefix}{name}"
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: {key}: missing value")
            continue
        values[name] = _coerce(hints[name], raw[name], where, key)
    return cls(**values)


def _coerce(tp, value: Any, where: str, key: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, prefix=f"{key}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, where, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {key}: must be one of {', '.join(map(str, args))}, got {shown(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {key}: expected a list, got {_type_name(value)}")
        return tuple(_coerce(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key}: expected a mapping, got {_type_name(value)}")
        return dict(value)
    if tp is float:
        # PyYAML reads `5e-4` (no dot) as a string; accept number-like text rather than surprise users.
        if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
            value = float(value)
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
    if tp in _SCALARS:
        expected, valid = _SCALARS[tp]
        if not valid(value):
            raise ConfigError(f"{where}: {key}: expected {expected}, got {shown(value)}")
        if tp is str and _CONTROL.search(value):  # names and paths: a NUL or newline is never meant
            raise ConfigError(f"{where}: {key}: contains a control character, got {shown(value)}")
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")  # a schema bug, not user input


def _type_name(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _plain(obj):
    """Tuples to lists, so the resolved config is plain YAML/JSON."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# --------------------------------------------------------------------------------------------------
# Checks across fields: impossible values and combinations.


class _Checks:
    """The one-line failures of one config file's checks."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, msg: str):
        raise ConfigError(f"{self.where}: {key}: {msg}")

    def positive(self, key: str, value, allow_zero: bool = False) -> None:
        if value < 0 or (value == 0 and not allow_zero):
            self.fail(key, f"must be {'non-negative' if allow_zero else 'positive'}, got {value}")

    def at_most(self, key: str, value, limit) -> None:
        if value is not None and value > limit:
            self.fail(key, f"must be at most {limit}, got {value}")


def _check_semantics(cfg: Config, where: str) -> None:
    """What the types cannot say: ranges, and keys that must agree with each other."""
    checks = _Checks(where)
    for check in (_check_sizes, _check_data, _check_optim_and_schedule, _check_swa, _check_fge, _check_ema_and_run):
        check(cfg, checks)


def _check_sizes(cfg: Config, c: "_Checks") -> None:
    """Upper bounds of size-like keys: values beyond any real use would only ask for absurd memory
    (a 10^6 crop padding, a 10^5-wide network), refused before anything is allocated."""
    d, m, o, r = cfg.data, cfg.model, cfg.optim, cfg.run
    for key, value, limit in (
        ("data.crop_padding", d.crop_padding, 64),
        ("data.image_size", d.image_size, 1024),
        ("data.test_resize", d.test_resize, 2048),
        ("data.num_classes", d.num_classes, 100_000),
        ("data.train_subset", d.train_subset, 100_000_000),
        ("data.workers", d.workers, 256),
        ("optim.batch_size", o.batch_size, 65_536),
        ("run.seed", r.seed, 2**31 - 1),
    ):
        c.at_most(key, value, limit)
    c.positive("run.seed", r.seed, allow_zero=True)
    for option, value in m.options.items():
        if isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= 4096:
            c.fail(f"model.options.{option}", f"must be between 1 and 4096, got {value}")


def _check_data(cfg: Config, c: "_Checks") -> None:
    """The data section, and that the model takes the dataset's images."""
    d, m = cfg.data, cfg.model
    channels = DATASETS[d.dataset].channels
    for key, stats in (("data.mean", d.mean), ("data.std", d.std)):
        if len(stats) != channels:
            c.fail(key, f"{d.dataset} images have {channels} channel(s), got {len(stats)} values")
    if any(v <= 0 for v in d.std):
        c.fail("data.std", "values must be positive")
    if len(set(d.augment)) != len(d.augment):
        c.fail("data.augment", "each augmentation may appear once")
    c.positive("data.crop_padding", d.crop_padding, allow_zero=True)
    if d.image_size is not None:
        c.positive("data.image_size", d.image_size)
    if "resized_crop" in d.augment and d.image_size is None:
        c.fail("data.augment", "resized_crop needs data.image_size (the crop's output size)")
    if d.test_resize is not None:
        if d.image_size is None or d.test_resize < d.image_size:
            c.fail("data.test_resize", f"needs data.image_size and must be at least it, got {d.test_resize}")
    if d.num_classes is not None:
        c.positive("data.num_classes", d.num_classes)
    if d.dataset == "imagenet" and d.format == "torchvision":
        c.fail("data.format", "ImageNet is read from an ImageFolder tree (train/ and val/), not torchvision files")
    if not d.test_split or "/" in d.test_split or d.test_split in (".", ".."):
        c.fail("data.test_split", f"must be a folder name, got {shown(d.test_split)}")
    if d.train_subset is not None:
        c.positive("data.train_subset", d.train_subset)
    c.positive("data.workers", d.workers, allow_zero=True)

    from swa_bench.models import get_model_entry

    if (get_model_entry(m.name).input_shape[0] == 1) != (d.dataset == "digits"):  # 1x8x8 digits or RGB images
        c.fail("model.name", f"{m.name} does not take {d.dataset} images")


def _check_optim_and_schedule(cfg: Config, c: "_Checks") -> None:
    """The optimizer and the SGD schedule."""
    o, s, w = cfg.optim, cfg.schedule, cfg.swa
    c.positive("optim.lr_init", o.lr_init)
    c.positive("optim.weight_decay", o.weight_decay, allow_zero=True)
    if not 0 <= o.momentum < 1:
        c.fail("optim.momentum", f"must be in [0, 1), got {o.momentum}")
    if o.nesterov and o.momentum == 0:
        c.fail("optim.nesterov", "Nesterov momentum needs optim.momentum > 0")
    c.positive("optim.batch_size", o.batch_size)

    c.positive("schedule.budget", s.budget, allow_zero=w.start_from == "pretrained")
    c.positive("schedule.eval_every", s.eval_every)
    if not 0 < s.sgd_final_ratio <= 1:
        c.fail("schedule.sgd_final_ratio", f"must be in (0, 1], got {s.sgd_final_ratio}")
    if s.type == "step" and s.budget:
        if not s.milestones:
            c.fail("schedule.milestones", "a step schedule needs at least one milestone epoch")
        if list(s.milestones) != sorted(set(s.milestones)) or not 0 < s.milestones[0] or s.milestones[-1] >= s.budget:
            c.fail(
                "schedule.milestones", f"must be increasing epochs in (0, {s.budget}), got {shown(list(s.milestones))}"
            )
    if not 0 < s.gamma < 1:
        c.fail("schedule.gamma", f"must be in (0, 1), got {s.gamma}")
    c.positive("schedule.final_lr", s.final_lr, allow_zero=True)
    if s.type == "cosine" and s.final_lr >= o.lr_init:
        c.fail("schedule.final_lr", f"must be below optim.lr_init ({o.lr_init}), got {s.final_lr}")


def _check_swa(cfg: Config, c: "_Checks") -> None:
    """The SWA section, by where the run starts from."""
    m, s, w = cfg.model, cfg.schedule, cfg.swa
    if w.lr_schedule == "constant":
        if w.lr is None:
            c.fail("swa.lr", "missing value (the SWA learning rate of a constant schedule)")
        c.positive("swa.lr", w.lr)
    else:
        for key, value in (("swa.alpha1", w.alpha1), ("swa.alpha2", w.alpha2)):
            if value is None:
                c.fail(key, "missing value (a cyclical schedule needs alpha1 and alpha2)")
            c.positive(key, value)
        if w.alpha2 > w.alpha1:
            c.fail("swa.alpha2", f"must not exceed swa.alpha1 ({w.alpha1}), got {w.alpha2}")
    c.positive("swa.c_epochs", w.c_epochs)
    if w.cycle_steps is not None:
        c.positive("swa.cycle_steps", w.cycle_steps)
        if w.start_from == "scratch":
            c.fail(
                "swa.cycle_steps",
                "only for runs continuing the SGD run or from pretrained weights; "
                "from scratch the cycle is swa.c_epochs",
            )
    if w.variant is not None and not _VARIANT.match(w.variant):
        c.fail(
            "swa.variant",
            f"must be a short folder name (letters, digits, '.', '_', '-'; up to 40), got {shown(w.variant)}",
        )
    if not w.budgets:
        c.fail("swa.budgets", "needs at least one budget")
    if any(b <= 0 for b in w.budgets) or list(w.budgets) != sorted(set(w.budgets)):
        c.fail("swa.budgets", f"must be positive and increasing, got {shown(list(w.budgets))}")
    if w.report_epochs and (w.report_epochs[0] <= 0 or list(w.report_epochs) != sorted(set(w.report_epochs))):
        c.fail("swa.report_epochs", f"must be positive and increasing, got {shown(list(w.report_epochs))}")
    if w.report_epochs and w.start_from == "scratch":
        c.fail(
            "swa.report_epochs", "only for runs from pretrained weights or the SGD run; others report at swa.budgets"
        )
    if w.from_epoch is not None and w.start_from != "sgd_run":
        c.fail("swa.from_epoch", f"only when continuing the SGD run (swa.start_from: sgd_run), not from {w.start_from}")
    if w.start_from == "pretrained":
        if m.weights is None:
            c.fail("swa.start_from", "pretrained needs model.weights (e.g. IMAGENET1K_V1)")
        if not w.report_epochs:
            c.fail("swa.report_epochs", "a run from pretrained weights reports after given epochs, e.g. [5, 10]")
        if w.start is not None:
            c.fail(
                "swa.start", "not used when starting from pretrained weights (averaging starts with the first cycle)"
            )
    elif w.start_from == "scratch":
        if w.include_start:  # the start point of a run from scratch is its random initialisation
            c.fail(
                "swa.include_start",
                "only for runs continuing the SGD run or from pretrained weights; from "
                "scratch the start point is the random initial weights",
            )
        if w.start is None:
            c.fail("swa.start", "missing value (the epoch count after which averaging starts)")
        c.positive("swa.start", w.start)
        if w.start > s.budget * w.budgets[0]:
            c.fail("swa.start", f"{w.start} is beyond the first SWA budget point ({s.budget * w.budgets[0]:g} epochs)")
        if w.lr_schedule == "cyclical" and w.c_epochs > w.start:
            c.fail(
                "swa.c_epochs", f"the first cycle must end at swa.start ({w.start}), so at most that, got {w.c_epochs}"
            )
    else:
        if w.start is not None:
            c.fail("swa.start", "not used when continuing from the SGD run (averaging starts with the first cycle)")
        if w.from_epoch is not None:
            # The only state an SGD run keeps before its end is the one its FGE run starts from.
            kept = s.budget * cfg.fge.start if cfg.fge.alpha1 is not None else None
            if kept is None or w.from_epoch != kept:
                where = (
                    f"its only state before the end is the one kept for FGE, after fge.start x B = {kept:g} epochs"
                    if kept is not None
                    else "it keeps a state before its end only for rows with fge settings"
                )
                c.fail("swa.from_epoch", f"the SGD run has no state after {w.from_epoch} epochs: {where}")
        first = s.budget if w.from_epoch is None else w.from_epoch
        if w.cycle_steps is not None:
            pass  # a cycle in steps: the trainer checks it against the first report point once it knows the steps
        elif w.report_epochs:
            if w.report_epochs[0] < w.c_epochs:
                c.fail("swa.c_epochs", f"the first cycle ({w.c_epochs} epochs) would end after the first report point")
        elif s.budget * w.budgets[0] - first < w.c_epochs:
            if w.from_epoch is None and w.budgets[0] <= 1:
                c.fail(
                    "swa.budgets",
                    "a continuation of the B-epoch SGD run reports after it, so budgets must exceed 1, "
                    f"got {shown(list(w.budgets))}",
                )
            c.fail(
                "swa.c_epochs",
                f"the first cycle ({w.c_epochs} epochs from epoch {first:g}) would end after the first budget point",
            )


def _check_fge(cfg: Config, c: "_Checks") -> None:
    """The FGE section: absent (alpha1 unset), or a schedule that collects at least one model."""
    f, s = cfg.fge, cfg.schedule
    if f.alpha1 is None:
        if cfg.run.method == "fge":
            c.fail("fge.alpha1", "missing value: this row has no FGE settings (set fge.alpha1 and fge.alpha2)")
        return
    if f.alpha2 is None:
        c.fail("fge.alpha2", "missing value (the rate at mid-cycle, where models are collected)")
    c.positive("fge.alpha1", f.alpha1)
    c.positive("fge.alpha2", f.alpha2)
    if f.cycle < 2 or f.cycle % 2:
        c.fail("fge.cycle", f"must be an even number of epochs (a model is collected at mid-cycle), got {f.cycle}")
    if f.cycle_steps is not None and (f.cycle_steps < 2 or f.cycle_steps % 2):
        c.fail(
            "fge.cycle_steps",
            f"must be an even number of steps (a model is collected at mid-cycle), got {f.cycle_steps}",
        )
    if not 0 < f.start < 1:
        c.fail("fge.start", f"must be a fraction of the budget in (0, 1), got {f.start}")
    if f.keep_models is not None:
        c.positive("fge.keep_models", f.keep_models)
    if cfg.swa.start_from == "pretrained":
        c.fail("fge.alpha1", "FGE continues an SGD run trained from scratch; this row starts from pretrained weights")
    if f.cycle_steps is None and s.budget * (1 - f.start) < f.cycle // 2:
        c.fail(
            "fge.start",
            f"leaves {s.budget * (1 - f.start):g} epochs, fewer than the {f.cycle // 2} before the first collection",
        )


def _check_ema_and_run(cfg: Config, c: "_Checks") -> None:
    """The EMA and run sections, and the run's length."""
    s, w, r = cfg.schedule, cfg.swa, cfg.run
    e = cfg.ema
    if not 0 < e.decay < 1:
        c.fail("ema.decay", f"must be in (0, 1), got {e.decay}")
    c.positive("ema.every", e.every)
    if r.method == "ema" and w.start_from == "pretrained":
        c.fail("run.method", "ema trains from scratch under the SGD schedule; this row starts from pretrained weights")

    if not 0 < r.budget_scale <= 1000:
        c.fail("run.budget_scale", f"must be in (0, 1000], got {r.budget_scale}")
    if r.checkpoint_every is not None:
        c.positive("run.checkpoint_every", r.checkpoint_every)
    if r.checkpoint_minutes is not None:
        c.positive("run.checkpoint_minutes", r.checkpoint_minutes)
    if s.budget * max(w.budgets) * r.budget_scale > 100_000:
        c.fail("schedule.budget", "the run would exceed 100000 epochs")
