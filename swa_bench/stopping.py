"""Stopping on request: SIGTERM and SIGUSR1 (what SLURM and most schedulers send before preempting or
at the time limit) make training finish its current step, write a checkpoint and exit with
outcomes.EXIT_PREEMPTED, so that a requeued job resumes where it stopped."""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(Exception):
    """Training stopped on a signal after writing its checkpoint."""


class StopSignals:
    """While active, the stop signals set `requested` instead of killing the process."""

    def __init__(self):
        self.requested = False
        self.signal_name: str | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # handlers live in the main thread only
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
