"""Running a plan with a launcher chosen by name: subprocesses here, SLURM job arrays, or submitit's
local executor (which behaves like SLURM on one machine, for testing)."""

from __future__ import annotations

from dataclasses import dataclass

from swa_bench.grid.plan import Plan
from swa_bench.outcomes import NOT_FAILURES


@dataclass(frozen=True)
class LaunchOptions:
    jobs: int | None = None  # local: runs at once
    jobs_per_gpu: int = 1
    gpus_per_run: int = 1
    partition: str | None = None  # SLURM
    time_min: int = 24 * 60
    cpus_per_run: int = 10
    mem_gb: int | None = None
    array_parallelism: int = 64


def _local(plan: Plan, o: LaunchOptions, say) -> bool:
    from swa_bench.grid.local import run_local

    results = run_local(plan, o.jobs, o.jobs_per_gpu, o.gpus_per_run, say=say)
    return not plan.unplanned and all(status in NOT_FAILURES for status in results.values())


def _submitit(executor: str, wait: bool):
    def launch(plan: Plan, o: LaunchOptions, say) -> bool | None:
        from swa_bench.grid.slurm import SlurmResources, submit

        resources = SlurmResources(
            o.partition, o.time_min, o.gpus_per_run, o.cpus_per_run, o.mem_gb, o.array_parallelism
        )
        jobs = submit(plan, resources, executor, say=say)
        if not wait:
            return None  # submitted: the scheduler runs them
        for job in jobs:
            job.wait()
        return not plan.unplanned

    return launch


# launcher -> run the plan; True: every run ended as planned, False: some failed, None: submitted only.
LAUNCHERS = {"local": _local, "slurm": _submitit("slurm", wait=False), "submitit-local": _submitit("local", wait=True)}


def launch(plan: Plan, launcher: str, options: LaunchOptions, say=print) -> bool | None:
    return LAUNCHERS[launcher](plan, options, say)
