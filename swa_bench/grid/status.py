"""Where every run under a runs directory stands: done, diverged, damaged, running, stopped, failed
or pending, with its progress and an ETA. Read-only and safe while a grid is going: it reads records
that are written atomically, and asks the run's lock (not a pid file) whether it is running."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from swa_bench.identity import run_name
from swa_bench.records import RunRecords
from swa_bench.timefmt import format_duration


@dataclass
class RunState:
    run: str
    state: str  # done | diverged | damaged | running | stopped | failed | pending
    epochs_done: int
    epochs: int | None
    eta_seconds: float | None
    detail: str = ""


def run_state(run_dir: Path, name: str) -> RunState:
    records = RunRecords(run_dir)
    rows = records.read_metrics()
    protocol = records.stored_protocol()
    epochs, first = _count(protocol.get("epochs")), _count(protocol.get("first_epoch", 0))
    done = len([r for r in rows if r["epoch"] > (first or 0)])
    total = None if epochs is None else epochs - (first or 0)
    if records.config_path.exists() or records.has_records():  # not a start that failed before claiming the run
        try:
            records.stored_config()
        except Exception as e:  # RunMismatchError, in words: a run whose identity cannot be read
            return RunState(
                name, "damaged", done, total, None, str(e).split("; ")[0].removeprefix(str(records.dir) + "/")
            )
    try:
        summary = records.checked_summary()
    except ValueError as e:
        return RunState(name, "damaged", done, total, None, f"summary.json: {e}")
    if summary is not None:
        if summary.get("status") == "diverged":
            return RunState(name, "diverged", done, total, None, f"at epoch {summary.get('diverged_epoch')}")
        missing = records.missing_weights(summary["results"])
        if missing:
            return RunState(
                name,
                "damaged",
                done,
                total,
                None,
                f"finished, but checkpoints/ lacks the weights of {', '.join(missing)}",
            )
        results = ", ".join(f"{k} {v:.2f}" for k, v in summary["results"].items())
        return RunState(name, "done", done, total, 0.0, results)
    seconds = [r["seconds"] for r in rows if isinstance(r.get("seconds"), (int, float))]
    eta = (total - done) * sum(seconds) / len(seconds) if seconds and total is not None else None
    if records.in_use():
        return RunState(name, "running", done, total, eta)
    failure = records.read_failure()
    if failure is not None:
        return RunState(name, "failed", done, total, None, failure.get("error", ""))
    if rows or records.checkpoint_path("last").exists():
        return RunState(name, "stopped", done, total, eta, "resumes when started again")
    return RunState(name, "pending", 0, total, None)


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def grid_states(runs_dir: str | Path) -> list[RunState]:
    """Every run the grid plan (runs_dir/grid.json) names, and any other run directory found."""
    root = Path(runs_dir)
    planned, unplanned = [], []
    plan_file = root / "grid.json"
    if plan_file.exists():
        try:
            plan = json.loads(plan_file.read_text())
            planned = [root / _within_out(r) for r in plan.get("runs", [])]
            unplanned = [r for r in plan.get("unplanned", []) if isinstance(r, dict)]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # a damaged grid.json: runs found on disk
            warnings.warn(f"{plan_file}: not a readable grid plan; showing the run directories found")
    # Runs by any of their records: a run whose config.yaml is lost is shown (damaged), not hidden.
    found = {
        r.dir for marker in ("config.yaml", "failure.json", "metrics.jsonl") for r in RunRecords.find(root, marker)
    }
    dirs = list(dict.fromkeys(planned + sorted(found - set(planned))))
    states = [run_state(d, _name(d, root)) for d in dirs]
    for row in unplanned:
        states.append(
            RunState(
                f"{Path(str(row.get('config', '?'))).name} {row.get('method', '?')} seed{row.get('seed', '?')}",
                "failed",
                0,
                None,
                None,
                str(row.get("error", "")),
            )
        )
    return states


def _within_out(spec: dict) -> Path:
    """A planned run's folder relative to the grid's --out, so that a runs folder moved or copied
    elsewhere (or named by another path) still finds its runs."""
    run_dir, out = Path(spec["run_dir"]), Path(spec.get("out", ""))
    try:
        return run_dir.relative_to(out)
    except ValueError:
        return Path(run_name(run_dir))


def _name(run_dir: Path, root: Path) -> str:
    try:
        return str(run_dir.relative_to(root))
    except ValueError:
        return str(run_dir)


def render_states(states: list[RunState]) -> str:
    from tabulate import tabulate

    rows = []
    for s in states:
        progress = f"{s.epochs_done}/{s.epochs}" if s.epochs is not None else "–"
        rows.append(
            [
                s.run,
                s.state,
                progress,
                format_duration(s.eta_seconds) if s.state in ("running", "stopped") else "",
                s.detail,
            ]
        )
    counts = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return (
        tabulate(rows, headers=["run", "state", "epochs", "eta", "detail"], disable_numparse=True)
        + f"\n\n{len(states)} runs: {summary}\n"
    )
