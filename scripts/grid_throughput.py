#!/usr/bin/env python3
"""Throughput of K concurrent small runs on one device versus one at a time: the demo grid (2 rows x
2 methods x N seeds) with --jobs 1, then --jobs K (or --jobs-per-gpu K on a GPU), each into a fresh
folder. Prints wall time, runs per minute and the speed-up.

    python scripts/grid_throughput.py [--k 2] [--seeds 2] [--budget-scale 0.5] [--device cpu]
"""

import argparse
import subprocess
import sys
import tempfile
import time


def timed_grid(k: int, args, out: str) -> float:
    slots = ["--jobs-per-gpu", str(k), "--jobs", str(k)] if args.device == "cuda" else ["--jobs", str(k)]
    command = [
        sys.executable,
        "-m",
        "swa_bench",
        "grid",
        "--table",
        "demo",
        "--seeds",
        str(args.seeds),
        "--budget-scale",
        str(args.budget_scale),
        "--out",
        out,
        "--device",
        args.device,
        *slots,
    ]
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--budget-scale", type=float, default=0.5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    runs = 2 * 2 * args.seeds
    times = {}
    for k in (1, args.k):
        with tempfile.TemporaryDirectory() as out:
            times[k] = timed_grid(k, args, out)
        print(f"{k} at a time: {runs} runs in {times[k]:.1f} s, {60 * runs / times[k]:.1f} runs/min", flush=True)
    print(f"speed-up of {args.k} concurrent runs: {times[1] / times[args.k]:.2f}x ({args.device})")


if __name__ == "__main__":
    main()
