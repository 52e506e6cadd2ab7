"""Where every run under a runs directory stands: done, diverged, running, stopped, failed or
pending, with its progress and an ETA. Read-only and safe while a grid is going: it reads records
that are written atomically, and asks the run's lock (not a pid file) whether it is running."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from swa_bench.grid.runner import read_failure
from swa_bench.records import RunRecords
from swa_bench.timefmt import format_duration


@dataclass
class RunState:
    run: str
    state: str  # done | diverged | running | stopped | failed | pending
    epochs_done: int
    epochs: int | None
    eta_seconds: float | None
    detail: str = ""


def _is_locked(run_dir: Path) -> bool:
    try:
        import fcntl
    except ImportError:
        return False
    lock = run_dir / ".lock"
    if not lock.exists():
        return False
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def run_state(run_dir: Path, name: str) -> RunState:
    records = RunRecords(run_dir)
    rows = records.read_metrics()
    epochs = first = None
    try:
        protocol = (yaml.safe_load(records.config_path.read_text()) or {}).get("protocol", {})
        epochs, first = protocol.get("epochs"), protocol.get("first_epoch", 0)
    except (OSError, yaml.YAMLError):
        pass
    done = len([r for r in rows if r.get("epoch", 0) > (first or 0)])
    total = None if epochs is None else epochs - (first or 0)
    if records.summary_path.exists():
        try:
            summary = json.loads(records.summary_path.read_text())
        except (OSError, ValueError):
            summary = {}
        if summary.get("status") == "diverged":
            return RunState(name, "diverged", done, total, None, f"at epoch {summary.get('diverged_epoch')}")
        results = ", ".join(f"{k} {v:.2f}" for k, v in summary.get("results", {}).items())
        return RunState(name, "done", done, total, 0.0, results)
    seconds = [r["seconds"] for r in rows if "seconds" in r]
    eta = (total - done) * sum(seconds) / len(seconds) if seconds and total is not None else None
    if _is_locked(run_dir):
        return RunState(name, "running", done, total, eta)
    failure = read_failure(run_dir)
    if failure is not None:
        return RunState(name, "failed", done, total, None, failure.get("error", ""))
    if rows or records.checkpoint_path("last").exists():
        return RunState(name, "stopped", done, total, eta, "resumes when started again")
    return RunState(name, "pending", 0, total, None)


def grid_states(runs_dir: str | Path) -> list[RunState]:
    """Every run the grid plan (runs_dir/grid.json) names, and any other run directory found."""
    root = Path(runs_dir)
    planned, unplanned = [], []
    plan_file = root / "grid.json"
    if plan_file.exists():
        try:
            plan = json.loads(plan_file.read_text())
            planned = [Path(r["run_dir"]) for r in plan.get("runs", [])]
            unplanned = plan.get("unplanned", [])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    found = {p.parent for p in root.rglob("config.yaml")} | {p.parent for p in root.rglob("failure.json")}
    dirs = list(dict.fromkeys(planned + sorted(found - set(planned))))
    states = [run_state(d, _name(d, root)) for d in dirs]
    for row in unplanned:
        states.append(RunState(f"{Path(row['config']).name} {row['method']} seed{row['seed']}", "failed", 0, None,
                               None, row.get("error", "")))
    return states


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
        rows.append([s.run, s.state, progress, format_duration(s.eta_seconds) if s.state in ("running", "stopped") else "",
                     s.detail])
    counts = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return tabulate(rows, headers=["run", "state", "epochs", "eta", "detail"], disable_numparse=True) + \
        f"\n\n{len(states)} runs: {summary}\n"
