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
    shipped = CONFIG_DIR / relative.with_suffix(".yaml")
    if not path.is_absolute() and shipped.is_file():
        return shipped
    if path.exists():
        raise ConfigNotFound(f"{path}: not a config file")
    raise ConfigNotFound(f"{path}: config file not found, and no shipped config has that name "
                         f"(shipped: {', '.join(shipped_config_names())}; `swa-bench list` shows them)")
