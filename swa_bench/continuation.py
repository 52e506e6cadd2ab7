"""Where a run that continues an SGD run gets its start point: an SWA run with `swa.start_from:
sgd_run` (from the SGD run's last checkpoint, at epoch B, or with swa.from_epoch from the state it
kept at fge.start x B), or an FGE run (from that kept state).

The SGD run must be the same row and seed under the same protocol (everything but the method and the
keys the SGD run does not depend on equal), finished, with that state at the right epoch, and the
state must be that run's own: the identity it carries (identity.run_identity) that of the config the
SGD run's config.yaml holds, so that another seed's, rate's, budget's, method's or model's state copied
or linked in its place, or a config.yaml edited after training, is caught. Anything else is refused
with one line: continuing from the wrong weights would silently corrupt a table cell.
"""

from __future__ import annotations

from pathlib import Path

from swa_bench.config import Config
from swa_bench.data.datasets import data_format
from swa_bench.errors import UserError
from swa_bench.identity import config_differences, data_format_mismatch, identity_problem, independent_of, run_identity
from swa_bench.methods import checkpoint_keys, get_method
from swa_bench.methods.sgd import BASELINE
from swa_bench.protocol import budget_epochs, resolve_protocol
from swa_bench.record_files import CorruptCheckpointError, read_checkpoint
from swa_bench.records import RunRecords, kept_state_name


class StartPointError(UserError, RuntimeError):
    """The SGD run a continuation needs is missing, unfinished or different."""


def _not_the_sgd_runs(key: str) -> bool:
    """Keys an SGD run does not depend on, the method itself, and where SWA starts (an SGD run trained
    from scratch is the same run whether its row's SWA runs start from scratch or continue it)."""
    return key in ("run.method", "swa.start_from") or independent_of(BASELINE)(key)


def load_start_point(
    cfg: Config, sgd_run_dir: str | Path | None, map_location="cpu", model: dict | None = None
) -> tuple[dict, dict]:
    """(checkpoint of the SGD run's final epoch, a record of where it came from). `model`: the state
    dict of the continuation's model, whose parameter names and shapes the checkpoint must have."""
    if sgd_run_dir is None:
        raise StartPointError("swa.start_from is sgd_run, but no SGD run directory was given")
    sgd = RunRecords(sgd_run_dir)
    proto = resolve_protocol(cfg)
    method = get_method(proto.method)
    first_epoch, kind = proto.first_epoch, f"a continuation ({method.label})"
    hint = f"train it first (same config, --method sgd --seed {cfg.run.seed}, same --out)"
    if not sgd.config_path.exists():
        if sgd.has_records():
            raise StartPointError(
                f"{sgd.config_path}: missing, though the SGD run's records are there; without its "
                f"config they cannot be checked, so {kind} does not continue them: restore "
                f"config.yaml, or delete {sgd.dir} and train the SGD run again"
            )
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
    if stored.get("config", {}).get("run", {}).get("method") != BASELINE:
        raise StartPointError(f"{sgd.dir}: not an SGD run")
    if not sgd.is_finished():
        done, budget = len(sgd.read_metrics()), stored.get("protocol", {}).get("epochs")
        count = (
            f"{done} of {budget} epochs"
            if isinstance(budget, int) and done < budget
            else (f"{done} epochs, no summary.json" if budget is None else f"all {budget} epochs, but no summary.json")
        )
        finish = hint.replace("train", "finish", 1)
        raise StartPointError(f"{sgd.dir}: the SGD run has not finished ({count}); {finish}")
    kept = first_epoch < budget_epochs(cfg)  # a state the SGD run kept before its end (FGE's start, swa.from_epoch)
    name = kept_state_name(first_epoch) if kept else "last"
    path = sgd.checkpoint_path(name)
    if kept and not path.exists():
        raise StartPointError(
            f"{sgd.checkpoint_dir}: the SGD run kept no state after epoch {first_epoch} ({name}.pt) for "
            f"{kind} to continue from (trained before its row had fge settings, or with another "
            f"fge.start); train the SGD run again into another --out, or delete {sgd.dir}"
        )
    if not path.exists():
        raise StartPointError(
            f"{sgd.checkpoint_dir}: expected the SGD run's checkpoint at epoch {first_epoch}, found no {name}.pt"
        )
    # Only this file is the start point: the rolling previous.pt is an earlier epoch, never a fallback here.
    try:
        checkpoint = read_checkpoint(path, map_location)
    except CorruptCheckpointError as e:
        raise StartPointError(
            f"{e}; {kind} continues from this state only: train the SGD run again into "
            f"another --out, or delete {sgd.dir}"
        ) from None
    expected = run_identity(stored["config"])
    problem = _not_the_sgd_state(checkpoint, expected, model)
    if problem:
        raise StartPointError(_whose_problem(sgd, path, checkpoint.get("identity"), expected, problem, kind))
    if checkpoint.get("epoch") != first_epoch:
        raise StartPointError(
            f"{sgd.checkpoint_dir}: expected the SGD run's checkpoint at epoch {first_epoch}, "
            f"found {name}.pt at epoch {checkpoint.get('epoch')}"
        )
    return checkpoint, {"run": str(sgd.dir), "epoch": first_epoch}


def _not_the_sgd_state(state: dict, expected: dict, model: dict | None) -> str | None:
    """What makes `state` not the state of the SGD run whose identity is `expected` (None if nothing).
    A state without an identity (kept before checkpoints carried one) is checked by its structure."""
    problem = identity_problem(state.get("identity"), expected)
    if problem:
        return problem
    for key in checkpoint_keys():
        if state.get(key) is not None:
            return f"holds an {key}: another method's state, not an SGD run's"
    theirs = state.get("model") or {}
    if model is not None and (
        set(theirs) != set(model)
        or any(getattr(theirs[k], "shape", None) != getattr(v, "shape", None) for k, v in model.items())
    ):
        return "holds the weights of another model"
    if not isinstance(state.get("optimizer"), dict):
        return "holds no optimizer state (a weights file, not a run's state)"
    return None


def _whose_problem(sgd: RunRecords, path: Path, found, expected: dict, problem: str, kind: str) -> str:
    """The refusal of a start point that is not the SGD run's state, in one line. When the state is
    of the SGD run's method and seed under another config, and the run's rolling checkpoints carry
    that same identity too, it is config.yaml that changed (edited after training), and that is said."""
    if isinstance(found, dict) and found != expected and all(found.get(k) == expected[k] for k in ("method", "seed")):
        others = [sgd.checkpoint_path(n) for n in ("last", "previous") if sgd.checkpoint_path(n) != path]
        agreeing = [p.name for p in others if _identity_of(p) == found]
        if agreeing:
            return (
                f"{sgd.config_path}: not the config the SGD run was trained under (its checkpoints {path.name} and "
                f"{', '.join(agreeing)} carry another config's identity: edited after training?); {kind} continues "
                f"only the run that file describes: restore it, or train the SGD run again into another --out"
            )
    return (
        f"{path}: {problem}; {kind} continues only the SGD run's own state: restore that run's file, or train the "
        f"SGD run again into another --out"
    )


def _identity_of(path: Path):
    """The identity a checkpoint carries (None if it carries none or cannot be read)."""
    try:
        return read_checkpoint(path).get("identity") if path.is_file() else None
    except CorruptCheckpointError:
        return None
