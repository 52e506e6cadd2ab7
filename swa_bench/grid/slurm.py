"""A grid on SLURM through submitit: one job array per dependency level (SGD runs and from-scratch
SWA runs; then the SWA runs continuing an SGD run, held until the first array ends).

Each array task runs one `swa-bench train` child. On preemption or when the time limit nears, SLURM
signals the job (submitit's USR2); the task passes SIGTERM to its child, which finishes its step,
writes a mid-epoch checkpoint and exits, and submitit requeues the task, which then resumes the run.
`executor="local"` runs the same code with submitit's LocalExecutor (tests, machines without SLURM).
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import submitit

from swa_bench.grid.local import is_done
from swa_bench.grid.plan import Plan, RunSpec
from swa_bench.grid.runner import run_spec


@dataclass(frozen=True)
class SlurmResources:
    partition: str | None = None
    time_min: int = 24 * 60  # per task; a run that needs longer is requeued and resumes
    gpus_per_run: int = 1
    cpus_per_run: int = 10
    mem_gb: int | None = None
    array_parallelism: int = 64
    extra: dict = field(default_factory=dict)  # any other slurm_* parameter of submitit


class GridTask(submitit.helpers.Checkpointable):
    """One run as a requeueable array task."""

    def __init__(self, spec: RunSpec, processes: int):
        self.spec, self.processes = spec, processes
        self._child = None

    def __call__(self) -> int:
        return run_spec(self.spec, processes=self.processes, started=self._remember)

    def _remember(self, proc) -> None:
        self._child = proc

    def checkpoint(self, *args, **kwargs):
        """Called by submitit in its signal handler, while __call__ is inside the child's wait()."""
        child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)  # the run checkpoints within its epoch and exits 75
            # Wait without reaping (Popen.wait would deadlock on the lock the interrupted wait holds).
            os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        return submitit.helpers.DelayedSubmission(GridTask(self.spec, self.processes))

    def __getstate__(self):  # the child process is not part of what gets requeued
        return {"spec": self.spec, "processes": self.processes, "_child": None}


def submit(plan: Plan, resources: SlurmResources, executor: str = "slurm", say=print) -> list:
    """Submit the unfinished runs of `plan`; returns the submitit jobs (first array, then the second).
    With the local executor the second array is submitted once the first has ended (no scheduler to
    hold it); on SLURM it is submitted at once with an afterany dependency."""
    folder = Path(plan.out) / "slurm" / "%j"
    if executor == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=resources.time_min)
    else:
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        params = dict(
            timeout_min=resources.time_min,
            gpus_per_node=resources.gpus_per_run,
            cpus_per_task=resources.cpus_per_run,
            slurm_array_parallelism=resources.array_parallelism,
            nodes=1,
            tasks_per_node=1,
            name=f"swa-bench-{plan.table}",
            **resources.extra,
        )
        if resources.partition:
            params["slurm_partition"] = resources.partition
        if resources.mem_gb:
            params["mem_gb"] = resources.mem_gb
        ex.update_parameters(**params)

    todo = [s for s in plan.runs if not is_done(s)]
    levels = [[s for s in todo if s.after is None], [s for s in todo if s.after is not None]]
    jobs, previous = [], []
    for level in levels:
        if not level:
            continue
        if previous and executor == "local":
            for job in previous:
                job.wait()
        elif previous:
            ex.update_parameters(
                slurm_additional_parameters={"dependency": f"afterany:{previous[0].job_id.split('_')[0]}"}
            )
        processes = max(1, resources.gpus_per_run)
        with ex.batch():
            submitted = [ex.submit(GridTask(spec, processes)) for spec in level]
        jobs += submitted
        previous = submitted
        say(
            f"grid: submitted {len(level)} runs"
            + (f" (array {submitted[0].job_id.split('_')[0]})" if submitted else "")
        )
    return jobs
