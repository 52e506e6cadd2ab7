"""What ships inside the package, so that an installed swa-bench works from any directory: the
configs of every row (also reachable from a checkout as configs/) and the paper's numbers (also
results/paper/)."""

from __future__ import annotations

from pathlib import Path

from swa_bench.errors import UserError

PACKAGE = Path(__file__).resolve().parent
CONFIG_DIR = PACKAGE / "configs"
PAPER_DIR = PACKAGE / "paper"


class ConfigNotFound(UserError, FileNotFoundError):
    pass


def shipped_config_names() -> list[str]:
    """Names `--config` accepts for the shipped configs: "cifar10/vgg16", "demo/digits", ..."""
    return sorted(str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.rglob("*.yaml"))


def find_config(name: str | Path) -> Path:
    """A config by path, or a shipped one by name: "cifar10/vgg16", "cifar10/vgg16.yaml" or
    "configs/cifar10/vgg16.yaml" (the checkout's spelling) all name the same file."""
    path = Path(name)
    if path.is_file():
        return path
    relative = Path(*path.parts[1:]) if path.parts[:1] == ("configs",) else path
    # Appended, not with_suffix: a name such as "mini/preresnet20_ratio0.5" has no suffix to replace.
    shipped = CONFIG_DIR / (str(relative) if relative.suffix == ".yaml" else f"{relative}.yaml")
    if not path.is_absolute() and shipped.is_file():
        return shipped
    if path.exists():
        raise ConfigNotFound(f"{path}: not a config file")
    raise ConfigNotFound(
        f"{path}: config file not found, and no shipped config has that name "
        f"(shipped: {', '.join(shipped_config_names())}; `swa-bench list` shows them)"
    )


def render_catalog() -> str:
    """What `swa-bench list` prints: every shipped config with its key settings, then every model
    with the figures its catalog entry keeps (nothing is built)."""
    from tabulate import tabulate

    from swa_bench.config import load_config
    from swa_bench.models import get_model_entry, model_names

    configs = []
    for name in shipped_config_names():
        cfg = load_config(CONFIG_DIR / f"{name}.yaml")
        configs.append(
            [
                name,
                cfg.model.name,
                cfg.schedule.budget,
                cfg.optim.lr_init,
                cfg.schedule.type,
                cfg.optim.weight_decay,
                _swa_summary(cfg),
            ]
        )
    models = []
    for name in model_names():
        entry = get_model_entry(name)
        macs = "–" if entry.macs is None else f"{entry.macs / 1e9:.3f} G"
        params = "–" if entry.params is None else f"{entry.params:,}"
        models.append([name, params, macs, "x".join(map(str, entry.input_shape)), entry.description])
    return (
        f"Configs (train --config NAME, or a path to your own; shipped in {CONFIG_DIR}):\n"
        + tabulate(
            configs,
            headers=["config", "model", "budget", "lr_init", "sgd schedule", "wd", "swa"],
            disable_numparse=True,
        )
        + "\n\nModels (parameters for 10 classes; forward multiply-accumulates per image of the model's input size):\n"
        + tabulate(models, headers=["model", "params", "MACs", "input", "description"], disable_numparse=True)
        + "\n"
    )


def _swa_summary(cfg) -> str:
    w = cfg.swa
    rate = f"{w.lr:g}" if w.lr_schedule == "constant" else f"cyclical {w.alpha1:g}->{w.alpha2:g}/{w.c_epochs} ep"
    start = {
        "scratch": f"from epoch {w.start}",
        "sgd_run": "after the SGD run",
        "pretrained": "from pretrained weights",
    }[w.start_from]
    return f"{rate}, {start}"
