"""Where a run that continues an SGD run gets its start point: an SWA run with `swa.start_from:
sgd_run` (from the SGD run's last checkpoint, at epoch B, or with swa.from_epoch from the state it
kept at fge.start x B), or an FGE run (from that kept state).

The SGD run must be the same row and seed under the same protocol (everything but the method and the
keys the SGD run does not depend on equal), finished, with that state at the right epoch. Anything
else is refused with one line: continuing from the wrong weights would silently corrupt a table cell.
"""

from __future__ import annotations

from pathlib import Path

from swa_bench.config import Config
from swa_bench.data.datasets import data_format
from swa_bench.errors import UserError
from swa_bench.protocol import resolve_protocol
from swa_bench.records import RunRecords, config_differences, data_format_mismatch, independent_of, kept_state_name


class StartPointError(UserError, RuntimeError):
    """The SGD run a continuation needs is missing, unfinished or different."""


def _not_the_sgd_runs(key: str) -> bool:
    """Keys an SGD run does not depend on, the method itself, and where SWA starts (an SGD run trained
    from scratch is the same run whether its row's SWA runs start from scratch or continue it)."""
    return key in ("run.method", "swa.start_from") or independent_of("sgd")(key)


def load_start_point(cfg: Config, sgd_run_dir: str | Path | None, map_location="cpu") -> tuple[dict, dict]:
    """(checkpoint of the SGD run's final epoch, a record of where it came from)."""
    if sgd_run_dir is None:
        raise StartPointError("swa.start_from is sgd_run, but no SGD run directory was given")
    sgd = RunRecords(sgd_run_dir)
    proto = resolve_protocol(cfg)
    first_epoch, kind = proto.first_epoch, "an FGE run" if proto.method == "fge" else "an SWA continuation"
    hint = f"train it first (same config, --method sgd --seed {cfg.run.seed}, same --out)"
    if not sgd.config_path.exists():
        raise StartPointError(f"{sgd.dir}: no SGD run to continue from; {hint}")
    stored = sgd.stored_config() or {}
    for key, theirs, mine in config_differences(stored.get("config", {}), cfg.to_dict(), _not_the_sgd_runs):
        raise StartPointError(
            f"{sgd.dir}: the SGD run was made with {key}={theirs!r}, not {mine!r}; "
            f"{kind} needs the SGD run of the same protocol"
        )
    mismatch = data_format_mismatch(stored, {"data_format": data_format(cfg.data)})
    if mismatch:
        raise StartPointError(f"{sgd.dir}: {mismatch}; {kind} needs the SGD run on the same data")
    if stored.get("config", {}).get("run", {}).get("method") != "sgd":
        raise StartPointError(f"{sgd.dir}: not an SGD run")
    if not sgd.is_finished():
        done = len(sgd.read_metrics())
        raise StartPointError(f"{sgd.dir}: the SGD run has not finished ({done} of {first_epoch} epochs); {hint}")
    kept = proto.method == "fge" or cfg.swa.from_epoch is not None  # a state kept before the SGD run's end
    name = kept_state_name(first_epoch) if kept else "last"
    checkpoint = sgd.load_checkpoint(name, map_location=map_location)
    if kept and checkpoint is None:
        raise StartPointError(f"{sgd.checkpoint_dir}: the SGD run kept no state after epoch {first_epoch} ({name}.pt) for "
                              f"{kind} to continue from (trained before its row had fge settings, or with another "
                              f"fge.start); train the SGD run again into another --out, or delete {sgd.dir}")
    if checkpoint is None or checkpoint.get("epoch") != first_epoch:
        found = f"no {name}.pt" if checkpoint is None else f"{name}.pt at epoch {checkpoint.get('epoch')}"
        raise StartPointError(f"{sgd.checkpoint_dir}: expected the SGD run's checkpoint at epoch {first_epoch}, found {found}")
    return checkpoint, {"run": str(sgd.dir), "epoch": first_epoch}
