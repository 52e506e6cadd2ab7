"""One run of a grid, as a `swa-bench train` child process with its own log. An exit that is neither
success, divergence nor a signal stop is written down in the run directory as failure.json (exit
status and the error line), which `status` and `table` report."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from swa_bench.grid.plan import RunSpec
from swa_bench.records import atomic_write_text
from swa_bench.stopping import EXIT_PREEMPTED

EXIT_DIVERGED = 3
FAILURE_FILE = "failure.json"
# Runs that ended as planned (finished, or diverged: a result) and runs to resume later (stopped).
NOT_FAILURES = (0, EXIT_DIVERGED, EXIT_PREEMPTED)


def log_path(spec: RunSpec) -> Path:
    return Path(spec.out) / "logs" / (spec.name.replace("/", "-") + ".log")


def read_failure(run_dir: str | Path) -> dict | None:
    """The failure record a grid left in `run_dir`, or None; a damaged one still counts as a failure."""
    from swa_bench.records import read_json_object

    try:
        failure = read_json_object(Path(run_dir) / FAILURE_FILE)
    except ValueError as e:
        return {"error": f"unreadable failure record ({e})"}
    return None if failure is None else {**failure, "error": str(failure.get("error", ""))}


def run_spec(spec: RunSpec, env: dict | None = None, processes: int = 1, started=None) -> int:
    """Run `spec` to its end; returns the exit status. `started(proc)` receives the child process
    (for forwarding signals)."""
    failure = Path(spec.run_dir) / FAILURE_FILE
    failure.unlink(missing_ok=True)
    log = log_path(spec)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle:
        proc = subprocess.Popen(spec.command(processes), stdout=handle, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
        if started is not None:
            started(proc)
        status = proc.wait()
    if status not in NOT_FAILURES:
        record_failure(spec, status, _error_line(log))
    return status


def record_failure(spec: RunSpec, status: int, error: str) -> None:
    atomic_write_text(Path(spec.run_dir) / FAILURE_FILE, json.dumps(
        {"run": spec.name, "exit_status": status, "error": error, "log": str(log_path(spec))}, indent=1) + "\n")


def _error_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["(no output)"])[-1][:500]
