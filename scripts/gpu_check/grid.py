"""Stage (b), the device shared: images/s of the whole device with 1 run and with 3 runs sharing it
(`swa-bench grid --jobs-per-gpu 3`), and from them the GPU-hours of the CIFAR tables (scripts/gpu_hours.py)."""

from __future__ import annotations

import os
import re
import signal
import statistics
import sys
from pathlib import Path

from .arithmetic import split_epochs
from .data import full_tree
from .paths import GPU_HOURS
from .processes import run, swa_bench
from .readers import method_of, runs_under, seed_of, summary_of


def grid_throughput(check) -> dict:
    """The VGG-16 row at a small budget scale through `swa-bench grid`: 1 seed one run at a time, then
    3 seeds three at a time. Its SGD runs come first and run together; they are what is measured, so
    each grid is stopped once they have finished (its SWA and other runs would add minutes, not
    figures). Evaluation only where the protocol must (first and last epoch, budget points), so
    that the steady epochs are training steps alone."""
    s = check.sizes
    data = full_tree(check)
    found = {}
    for seeds, jobs in ((1, 1), (3, 3)):
        out = check.scratch / "b" / f"grid-{jobs}"
        done: set[str] = set()

        def on_line(line: str, process, seeds=seeds, done=done) -> None:
            finished = re.search(r"/sgd/(seed\d+)\S*: finished", line)
            if finished:
                done.add(finished[1])
                if len(done) == seeds:  # the runs still going get SIGTERM: they checkpoint and stop
                    os.killpg(process.pid, signal.SIGTERM)

        ran = run(
            swa_bench(
                "grid",
                "--table",
                "cifar10",
                "--rows",
                "vgg16",
                "--seeds",
                str(seeds),
                "--budget-scale",
                str(s.grid_scale),
                "--data-path",
                data,
                "--out",
                str(out),
                "--device",
                s.device,
                "--jobs-per-gpu",
                str(jobs),
                "--jobs",
                str(jobs),
                "--set",
                "schedule.eval_every=1000",
                *check.fast_sets(),
            ),
            check.scratch / "logs" / f"b-grid-{jobs}.log",
            check.timeout(),
            check.env(),
            on_line=on_line,
        )
        check.report.copy(ran.log, f"b-grid-{jobs}.log")
        if len(done) < seeds:
            raise RuntimeError(
                f"grid of {jobs} at a time: {len(done)} of {seeds} SGD runs finished, exit {ran.rc}\n{ran.tail()}"
            )
        found[jobs] = grid_rates(check, out, jobs, ran.seconds)
    one, three = found[1], found[3]
    result = {"one_run": one, "three_runs": three, "sharing_x": three["device_img_s"] / one["device_img_s"]}
    check.say(
        f"  grid: whole device, steady epochs: {one['device_img_s']:,.0f} img/s with 1 run, "
        f"{three['device_img_s']:,.0f} img/s with 3 runs sharing it ({result['sharing_x']:.2f}x); "
        f"the grids' wall time until their SGD runs finished: {one['wall_s']:.0f} s and {three['wall_s']:.0f} s"
    )
    result["gpu_hours"] = gpu_hours(
        check, {"1 run per device": one["device_img_s"], "3 runs per device": three["device_img_s"]}
    )
    check.figures["grid"] = result
    return result


def grid_rates(check, out: Path, jobs: int, wall: float) -> dict:
    """Images/s of the device: each run's steady epochs of steps (median), times the runs sharing it."""
    rates, per_run = [], {}
    for records in runs_under(out / "cifar10/vgg16/sgd"):
        method, seed = method_of(records), seed_of(records)
        check.report.copy(records.metrics_path, f"b-grid{jobs}-{method}-{seed}-metrics.jsonl")
        rows, summary = records.read_metrics(), summary_of(records)
        epochs = split_epochs(rows, method)
        if epochs["step_s"] is None or summary is None:
            continue
        rate = summary["train_images"] / epochs["step_s"]
        rates.append(rate)
        per_run[f"{method}-{seed}"] = {
            "step_s": epochs["step_s"],
            "img_s": rate,
            "rows": rows,
            "startup_s": summary.get("startup_seconds"),
            "train_images": summary["train_images"],
            "test_images": summary["test_images"],
        }
    if not rates:
        raise RuntimeError(f"{out}: no run with a steady epoch of steps")
    check.grid_runs[jobs] = per_run  # with their rows, for stage (c)'s estimates
    return {
        "runs": len(rates),
        "wall_s": wall,
        "run_img_s": statistics.median(rates),
        "device_img_s": jobs * statistics.median(rates),
        "per_run": {k: {key: v for key, v in r.items() if key != "rows"} for k, r in per_run.items()},
    }


def gpu_hours(check, rates: dict[str, float]) -> dict:
    """scripts/gpu_hours.py at the FLOP rate each measured VGG-16 rate means (3 x forward MACs x 2 FLOP
    per trained image, its convention): every model assumed to reach VGG-16's rate."""
    macs = 313_725_952  # VGG-16's forward multiply-accumulates (swa_bench.models.registry)
    hours = {}
    for label, rate in rates.items():
        tflops = rate * 3 * macs * 2 / 1e12
        ran = run(
            [sys.executable, str(GPU_HOURS), "--tflops", f"{tflops:.4g}", "--seeds", "3"],
            check.scratch / "logs" / "b-gpu-hours.log",
            check.timeout(60),
            check.env(),
        )
        table = dict(re.findall(r"^(cifar10|cifar100)\s+(\d+) GPU-hours", ran.text(), re.M))
        hours[label] = {"tflops": tflops, **{k: int(v) for k, v in table.items()}}
        check.say(
            f"  projected {'GPU' if check.sizes.device == 'cuda' else 'CPU'}-hours of a whole table, 3 seeds, "
            f"{label} ({tflops:.3g} TFLOP/s effective, every model assumed at VGG-16's): "
            f"CIFAR-10 {table.get('cifar10', '?')}, CIFAR-100 {table.get('cifar100', '?')}"
            + ("" if check.sizes.device == "cuda" else " (rehearsal: meaningless)")
        )
    return hours
