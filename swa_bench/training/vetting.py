"""Whether a checkpoint found in a run's folder is that run's state, before anything is resumed from it:
a pure function of the checkpoint, what the run expects, and the run's records on disk.

A checkpoint is refused (records.load_checkpoint then falls back to the one before) when it carries
another run's identity, another method's or model's structure (checkpoints of earlier versions carry
no identity), an epoch outside the run, or records it does not match: a metrics row or a table cell's
weights file missing for an epoch it has done, or a weights file it implies that is not the run's own."""

from __future__ import annotations

from dataclasses import dataclass

from swa_bench.identity import identity_problem
from swa_bench.protocol import Protocol
from swa_bench.record_files import CorruptCheckpointError, read_checkpoint
from swa_bench.records import RunRecords, kept_state_name


@dataclass(frozen=True)
class Expected:
    """What a run expects of its own checkpoints."""

    identity: dict  # identity.run_identity of its config
    proto: Protocol
    shapes: dict  # parameter and buffer name -> shape of its model
    state_key: str | None  # where its method keeps its state (None: nothing beside the iterate)
    state_keys: tuple[str, ...]  # every method's key: a checkpoint holds only its own method's
    implied: object  # state -> {weights file name: fields it must carry}, beyond the cells' (tracker.implied_files)


def checkpoint_problem(state: dict, expected: Expected, records: RunRecords) -> str | None:
    """Why `state` is not the run's own (None if it is)."""
    proto = expected.proto
    problem = identity_problem(state.get("identity"), expected.identity)
    if problem:
        return problem
    epoch = state.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not proto.first_epoch <= epoch <= proto.epochs:
        return f"its epoch ({epoch!r}) is not one of this run's ({proto.first_epoch} to {proto.epochs})"
    for key in expected.state_keys:
        mine = key == expected.state_key
        if (state.get(key) is None) == mine:
            return f"{'lacks' if mine else 'holds'} an {key}: another method's checkpoint"
    theirs = state.get("model") or {}
    if set(theirs) != set(expected.shapes) or any(
        getattr(theirs[k], "shape", None) != shape for k, shape in expected.shapes.items()
    ):
        return "holds the weights of another model"
    if not set(state.get("reported") or {}) <= {c for c, at in proto.report_points.items() if at <= epoch}:
        return f"reports columns this run has not reached ({', '.join(sorted(state['reported']))})"
    rows = {r["epoch"] for r in records.read_metrics(strict=True)}
    missing = [e for e in range(proto.first_epoch + 1, epoch + 1) if e not in rows]
    if missing:
        return (
            f"{records.metrics_path.name} lacks the rows of epoch{'s' if len(missing) > 1 else ''} "
            f"{missing[0]}{f' to {missing[-1]}' if len(missing) > 1 else ''}, which it has done (a "
            "cut or edited file)"
        )
    lost = [c for c, at in proto.report_points.items() if 0 < at <= epoch and not records.checkpoint_path(c).is_file()]
    if lost:
        return f"the weights behind {', '.join(lost)}, which it has passed, are missing from checkpoints/"
    return _weights_problem(state, epoch, expected, records)


def _weights_problem(state: dict, epoch: int, expected: Expected, records: RunRecords) -> str | None:
    """What is wrong with the weights files a checkpoint after `epoch` epochs implies (None if
    nothing): each table cell passed and each collected model it keeps (FGE) must be the run's own
    (its identity; for a member its index and epoch), intact. Files written before weights carried
    an identity are taken as the run's."""
    proto = expected.proto
    files = {c: {"column": c, "epoch": at} for c, at in proto.report_points.items() if 0 < at <= epoch}
    files.update(expected.implied(state))
    # The state an FGE run continues from (an SGD run's), where one is there: never the absence of one
    # (an SGD run trained before its row had fge settings has none, and is still this run).
    files.update(
        {
            kept_state_name(e): {"epoch": e}
            for e in proto.keep_states
            if e <= epoch and records.checkpoint_path(kept_state_name(e)).exists()
        }
    )
    for name, fields in files.items():
        path = records.checkpoint_path(name)
        if not path.is_file():  # a member's (the cells' were checked before)
            return f"{path.name}, the weights of collected model {fields.get('index')}, is missing from checkpoints/"
        try:
            weights = read_checkpoint(path)
        except CorruptCheckpointError as e:
            return f"a file it implies is damaged ({e})"
        identity = weights.get("identity")
        problem = identity_problem(identity, expected.identity, "weights" if "column" in fields else "state")
        wrong = [k for k, v in fields.items() if k in weights and weights[k] != v] if identity is not None else []
        if problem is None and wrong:
            problem = f"its {wrong[0]} is {weights[wrong[0]]!r}, not {fields[wrong[0]]!r}"
        if problem:
            return f"{path.name} is not this run's own: {problem}"
    return None
