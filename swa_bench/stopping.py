"""Stopping on request: SIGTERM and SIGUSR1 (what SLURM and most schedulers send before preempting or
at the time limit) make training finish its current step, write a checkpoint and exit with
outcomes.EXIT_PREEMPTED, so that a requeued job resumes where it stopped."""

from __future__ import annotations

import signal
import threading
import time

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


class StopPoll:
    """After each training step: should every process stop now? One process answers from its signal
    flag. Many (torchrun) must agree on the same step, which takes a collective; one per step would
    sync the device and every process at every step. So they agree only at check points spaced to
    about `every_seconds` of training, the spacing doubling from one step at the start of each pass
    (checks after steps 1, 3, 7, 15... until the measured step time says `every_seconds` is reached):
    a few collectives per pass, and a signal is honoured within about `every_seconds` (every process
    reads the same sums, so all stop at the same step). `clock` is for the tests."""

    def __init__(self, signals: StopSignals, world, every_seconds: float = 2.0, clock=time.monotonic):
        self.signals, self.world, self.every_seconds, self.clock = signals, world, every_seconds, clock
        self.checks = 0  # collectives made, over all passes
        self.start_pass()

    def start_pass(self) -> None:
        self.began, self.steps, self.next_check, self.interval = self.clock(), 0, 1, 1

    def __call__(self) -> bool:
        self.steps += 1
        if not self.world.distributed:
            return self.signals.requested
        if self.steps < self.next_check:
            return False
        requested, seconds = self.world.sum_floats(float(self.signals.requested), self.clock() - self.began)
        self.checks += 1
        per_step = seconds / self.world.size / self.steps
        paced = int(self.every_seconds / per_step) if per_step > 0 else 2 * self.interval
        self.interval = max(1, min(2 * self.interval, paced))
        self.next_check = self.steps + self.interval
        return requested > 0
