"""The checks across a config's keys: impossible values and combinations, each one ConfigError line
naming the file and the key. The methods' own rules are in their modules (swa_bench/methods)."""

from __future__ import annotations

from swa_bench.config.schema import DATASETS, Config
from swa_bench.errors import ConfigError
from swa_bench.yaml_input import shown


class Checks:
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


def check_semantics(cfg: Config, where: str) -> None:
    """What the types cannot say: ranges, and keys that must agree with each other. Each method checks
    its own section (for every config: a row's settings) and whether a run of it can be made of the row."""
    from swa_bench.methods import get_method, method_names, methods

    c = Checks(where)
    if cfg.run.method not in method_names():
        c.fail("run.method", f"must be one of {', '.join(method_names())}, got {shown(cfg.run.method)}")
    for check in (_check_sizes, _check_data, _check_optim_and_schedule):
        check(cfg, c)
    # SWA's section first: it says what kind of row this is (from scratch, the SGD run, pretrained weights).
    for method in sorted(methods(), key=lambda m: m.section != "swa"):
        method.check_section(cfg, c)
    get_method(cfg.run.method).check_run(cfg, c)
    _check_run(cfg, c)


def _check_sizes(cfg: Config, c: Checks) -> None:
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


def _check_data(cfg: Config, c: Checks) -> None:
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


def _check_optim_and_schedule(cfg: Config, c: Checks) -> None:
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


def _check_run(cfg: Config, c: Checks) -> None:
    """The run section, and the run's length."""
    s, w, r = cfg.schedule, cfg.swa, cfg.run
    if not 0 < r.budget_scale <= 1000:
        c.fail("run.budget_scale", f"must be in (0, 1000], got {r.budget_scale}")
    if r.checkpoint_every is not None:
        c.positive("run.checkpoint_every", r.checkpoint_every)
    if r.checkpoint_minutes is not None:
        c.positive("run.checkpoint_minutes", r.checkpoint_minutes)
    if s.budget * max(w.budgets) * r.budget_scale > 100_000:
        c.fail("schedule.budget", "the run would exceed 100000 epochs")
