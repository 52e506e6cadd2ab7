"""A grid on this machine: up to N runs at once, each on one GPU slot (K runs may share a GPU), or
on the CPU. A run waits for the SGD run it continues; a failed SGD run blocks its continuation,
which is recorded as failed too; nothing else stops the others."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from swa_bench.errors import UserError
from swa_bench.grid.plan import Plan, RunSpec
from swa_bench.grid.runner import record_failure, run_spec
from swa_bench.outcomes import NOT_FAILURES
from swa_bench.records import RunRecords


def is_done(spec: RunSpec) -> bool:
    """Whether the run has ended; its training process reports a damaged run directory."""
    records = RunRecords(spec.run_dir)
    try:
        done = records.is_finished()
    except UserError:
        return False
    if done:
        records.clear_failure()  # a failure record of an earlier attempt that another one superseded
    return done


def visible_gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [g.strip() for g in listed.split(",") if g.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_slots(gpus: list[str], jobs_per_gpu: int, gpus_per_run: int) -> list[str | None]:
    """One entry per concurrent run: the CUDA_VISIBLE_DEVICES it gets (None: the CPU)."""
    if not gpus:
        return [None]
    groups = [",".join(gpus[i : i + gpus_per_run]) for i in range(0, len(gpus) - gpus_per_run + 1, gpus_per_run)]
    return [g for g in groups for _ in range(jobs_per_gpu)]


def cores_busy() -> str | None:
    """Whether the CPU is already busy (another grid or experiment training on it), in words. Each
    grid gives its runs all the cores: two at once oversubscribe them, and the threads of a training
    step then wait on each other (measured: a 50,000-image epoch at one thread, 83 s alone, took 666 s
    with two such grids of two-thread runs on 2 cores)."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        return None
    if load < 0.75 * cores:
        return None
    return f"the CPU is busy already (load average {load:.1f} on {cores} cores)"


def run_local(plan: Plan, jobs: int | None = None, jobs_per_gpu: int = 1, gpus_per_run: int = 1, say=print) -> dict:
    """Run every unfinished run of `plan`; returns {run name: exit status} of those started."""
    slots = gpu_slots(visible_gpus(), jobs_per_gpu, gpus_per_run)
    parallel = jobs or (len(slots) if slots != [None] else 1)
    if slots == [None]:
        slots = [None] * parallel
        threads = max(1, (os.cpu_count() or 1) // parallel)  # CPU runs share the cores
        busy = cores_busy()
        if busy:
            say(f"warning: {busy}; these runs' {parallel * threads} threads will share the cores with it, "
                f"which can slow every run several times over: one grid or experiment at a time per machine "
                f"(its --jobs shares the cores between its runs)")  # fmt: skip
    free = list(slots[:parallel])
    lock = threading.Lock()
    pending = [s for s in plan.runs if not is_done(s)]
    say(
        f"grid: {len(plan.runs)} runs, {len(plan.runs) - len(pending)} already finished, "
        f"{len(pending)} to run, {parallel} at a time"
    )
    results: dict[str, int] = {}
    running: dict[Future, tuple[RunSpec, str | None]] = {}
    status_by_dir: dict[str, int] = {}

    def launch(spec: RunSpec, slot: str | None) -> int:
        env = {"CUDA_VISIBLE_DEVICES": slot} if slot is not None else {"OMP_NUM_THREADS": str(threads)}
        processes = len(slot.split(",")) if slot else 1
        return run_spec(spec, env=env, processes=processes)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        while pending or running:
            for spec in list(pending):
                if spec.after is not None:
                    blocker = status_by_dir.get(spec.after)
                    sgd_pending = any(s.run_dir == spec.after for s in pending) or spec.after in {
                        r.run_dir for r, _ in running.values()
                    }
                    if sgd_pending:
                        continue
                    if blocker is not None and blocker != 0:
                        pending.remove(spec)
                        record_failure(spec, -1, f"error: the SGD run it continues ({spec.after}) did not finish")
                        results[spec.name] = -1
                        say(f"grid: {spec.name}: blocked, its SGD run did not finish")
                        continue
                with lock:
                    if not free:
                        break
                    slot = free.pop(0)
                pending.remove(spec)
                running[pool.submit(launch, spec, slot)] = (spec, slot)
                say(f"grid: {spec.name}: started" + (f" on GPU {slot}" if slot else ""))
            if not running:
                if pending:  # only blocked runs are left and nothing will unblock them
                    time.sleep(0.05)
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                spec, slot = running.pop(future)
                status = future.result()
                results[spec.name] = status_by_dir[spec.run_dir] = status
                with lock:
                    free.append(slot)
                word = {
                    0: "finished",
                    3: "diverged",
                    75: "stopped by a signal",
                    69: "in use by another process (left to it)",
                }.get(status, f"failed (exit {status})")
                say(f"grid: {spec.name}: {word}")
    failed = [name for name, status in results.items() if status not in NOT_FAILURES]
    say(f"grid: done; {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    return results
