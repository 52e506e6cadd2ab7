"""Where an SWA run that continues an SGD run (`swa.start_from: sgd_run`) gets its start point.

The SGD run must be the same row and seed under the same protocol (everything but the method and the
SWA keys equal), finished, with its last checkpoint at epoch B. Anything else is refused with one
line: continuing from the wrong weights would silently corrupt a table cell.
"""

from __future__ import annotations

from pathlib import Path

from swa_bench.config import Config
from swa_bench.errors import UserError
from swa_bench.protocol import resolve_protocol
from swa_bench.records import RunRecords, config_differences


class StartPointError(UserError, RuntimeError):
    """The SGD run an SWA continuation needs is missing, unfinished or different."""


def _differs_only_by_swa(key: str) -> bool:
    return key == "run.method" or key.startswith("swa.")


def load_start_point(cfg: Config, sgd_run_dir: str | Path | None, map_location="cpu") -> tuple[dict, dict]:
    """(checkpoint of the SGD run's final epoch, a record of where it came from)."""
    if sgd_run_dir is None:
        raise StartPointError("swa.start_from is sgd_run, but no SGD run directory was given")
    sgd = RunRecords(sgd_run_dir)
    first_epoch = resolve_protocol(cfg).first_epoch
    hint = f"train it first (same config, --method sgd --seed {cfg.run.seed}, same --out)"
    if not sgd.config_path.exists():
        raise StartPointError(f"{sgd.dir}: no SGD run to continue from; {hint}")
    stored = sgd.stored_config() or {}
    for key, theirs, mine in config_differences(stored.get("config", {}), cfg.to_dict(), _differs_only_by_swa):
        raise StartPointError(
            f"{sgd.dir}: the SGD run was made with {key}={theirs!r}, not {mine!r}; "
            f"an SWA continuation needs the SGD run of the same protocol"
        )
    if stored.get("config", {}).get("run", {}).get("method") != "sgd":
        raise StartPointError(f"{sgd.dir}: not an SGD run")
    if not sgd.is_finished():
        done = len(sgd.read_metrics())
        raise StartPointError(f"{sgd.dir}: the SGD run has not finished ({done} of {first_epoch} epochs); {hint}")
    checkpoint = sgd.load_checkpoint("last", map_location=map_location)
    if checkpoint is None or checkpoint.get("epoch") != first_epoch:
        found = "no last.pt" if checkpoint is None else f"last.pt at epoch {checkpoint.get('epoch')}"
        raise StartPointError(f"{sgd.checkpoint_dir}: expected the SGD run's checkpoint at epoch {first_epoch}, found {found}")
    return checkpoint, {"run": str(sgd.dir), "epoch": first_epoch}
