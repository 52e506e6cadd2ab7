"""One run of a grid, as a `swa-bench train` child process with its own log. An exit that is neither
success, divergence nor a signal stop is written down in the run directory as failure.json (exit
status and the error line), which `status` and `table` report."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from swa_bench.grid.plan import RunSpec
from swa_bench.outcomes import NOT_FAILURES
from swa_bench.records import RunRecords


def log_path(spec: RunSpec) -> Path:
    return Path(spec.out) / "logs" / (spec.name.replace("/", "-") + ".log")


def run_spec(spec: RunSpec, env: dict | None = None, processes: int = 1, started=None) -> int:
    """Run `spec` to its end; returns the exit status. `started(proc)` receives the child process
    (for forwarding signals)."""
    RunRecords(spec.run_dir).clear_failure()
    log = log_path(spec)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle:
        proc = subprocess.Popen(
            spec.command(processes), stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        if started is not None:
            started(proc)
        status = proc.wait()
    if status not in NOT_FAILURES:
        record_failure(spec, status, _error_line(log))
    return status


def record_failure(spec: RunSpec, status: int, error: str) -> None:
    RunRecords(spec.run_dir).write_failure(
        {"run": spec.name, "exit_status": status, "error": error, "log": str(log_path(spec))}
    )


def _error_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["(no output)"])[-1][:500]
