"""python -m scripts.gpu_check (what scripts/gpu_check.sh runs): the command line, the record of what
runs where, the stages in order, and OUT/summary.json. What it does: the package's docstring."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

from . import __doc__ as ABOUT
from .check import Check
from .data import prepare_data
from .modules import check_modules
from .pair import pair
from .paths import REPO
from .report import Report
from .sizes import GPU, REHEARSAL
from .smoke import smoke
from .speed import speed


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/gpu_check.sh", description=ABOUT.splitlines()[0])
    parser.add_argument("out", nargs="?", help="where the flat results go (default: $OUT, else runs/gpu)")
    parser.add_argument("--rehearse", action="store_true", help="the same stages on the CPU, tiny sizes")
    parser.add_argument("--minutes", type=float, help="total time budget (default 9 on the GPU, 8 in rehearsal)")
    parser.add_argument(
        "--compile",
        choices=["none", "default", "reduce-overhead", "max-autotune"],
        help="run.compile of the compile item, the benches and the fast path",
    )
    parser.add_argument("--scratch", help="where the runs' folder goes (default: the temp dir)")
    parser.add_argument("--keep-scratch", action="store_true", help="leave the runs and checkpoints there")
    args = parser.parse_args()
    began = time.monotonic()
    sizes = REHEARSAL if args.rehearse else GPU
    if args.compile:
        sizes = replace(sizes, compile=args.compile)
    if args.scratch and REPO in {Path(args.scratch).resolve(), *Path(args.scratch).resolve().parents}:
        parser.error(f"--scratch {args.scratch}: must be outside the repository")
    out = Path(os.environ.get("OUT") or args.out or "runs/gpu").resolve()
    out.mkdir(parents=True, exist_ok=True)
    # A new folder, so that removing it at the end removes nothing else.
    scratch = Path(tempfile.mkdtemp(prefix="gpu_check-", dir=args.scratch)).resolve()
    report = Report(out)
    check = Check(sizes, out, scratch, began + 60 * (args.minutes or sizes.minutes), report)
    try:
        return run_stages(check, args, began)
    finally:
        if not args.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def run_stages(check: Check, args, began: float) -> int:
    """The record of what runs where, then the stages; 1 if any did not pass."""
    sizes, say = check.sizes, check.say
    say(
        f"gpu_check {'REHEARSAL on the CPU' if args.rehearse else 'on ' + sizes.device}: "
        f"{args.minutes or sizes.minutes:g} "
        f"minutes; results to {check.out}, runs in {check.scratch}"
    )
    say(f"sizes: {json.dumps(asdict(sizes))}")
    # The versions and the device. The stages run in subprocesses; the rehearsal does not import torch
    # here (2 s of a 2-core CPU), the GPU run does, to name the device.
    if importlib.util.find_spec("torch") is None:
        say("error: torch is not importable by this python")
        return 1
    device = "CPU rehearsal"
    if sizes.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            say("error: no CUDA device; on a CPU, run --rehearse")
            return 1
        device = torch.cuda.get_device_name(0)
    say(
        f"python {sys.version.split()[0]}, torch {importlib.metadata.version('torch')}, {device}, {os.cpu_count()} CPUs"
    )
    check_modules(check)
    prepare_data(check)
    check.stage("a", "smoke test of every path", partial(smoke, check))
    check.stage("b", "speed: benches, 1 and 3 runs per device, projected GPU-hours", partial(speed, check))
    check.stage("c", "the longest VGG-16 SGD + SWA pair that fits", partial(pair, check))

    failed = [k for k, v in check.stages.items() if v["status"] != "passed"]
    summary = {
        "rehearsal": args.rehearse,
        "data": check.data.get("source"),
        "seconds": round(time.monotonic() - began, 1),
        "stages": {k: {"status": v["status"], "seconds": v["seconds"]} for k, v in check.stages.items()},
    }
    check.report.write_json("summary.json", summary)
    say(
        f"\n=== done in {summary['seconds']:.0f} s: "
        + ", ".join(f"({k}) {v['status']} {v['seconds']:.0f} s" for k, v in check.stages.items())
        + " ==="
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
