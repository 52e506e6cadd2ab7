"""Subprocesses: output to a log, a time limit, the whole process group ended on time-out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .paths import REPO

TIMED_OUT = 124  # the exit status of a process ended at its time limit (as timeout(1) gives it)


@dataclass
class Ran:
    rc: int
    seconds: float
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.text().splitlines()[-lines:])


def run(
    args: list[str], log: Path, timeout: float, env: dict | None = None, cwd: Path = REPO, on_line=None, every=None
) -> Ran:
    """Run `args` with stdout and stderr into `log`. `on_line(line, process)` sees each line as it comes
    (the stopped run sends its signal from there); `every()` is called every 10 s while it runs."""
    log.parent.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log, "w") as sink:
        process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
            env=child_env,
            start_new_session=True,
        )

        def pump():
            for line in process.stdout:
                sink.write(line)
                sink.flush()
                if on_line:
                    on_line(line, process)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        rc = None
        while rc is None:
            try:
                rc = process.wait(timeout=max(0.1, min(10.0, timeout - (time.monotonic() - began))))
            except subprocess.TimeoutExpired:
                if time.monotonic() - began >= timeout:
                    end_group(process)
                    rc = TIMED_OUT
                elif every:
                    every()
        reader.join(timeout=10)
    return Ran(rc, time.monotonic() - began, log)


def end_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process's group (compile workers, DataLoader workers), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def swa_bench(*args: str) -> list[str]:
    """The command line of `swa-bench ARGS` with this python, from the source tree (nothing installed)."""
    return [sys.executable, "-m", "swa_bench", *args]
