#!/usr/bin/env python3
"""Fixed costs of the command line, measured as a user meets them: whole `swa-bench` processes,
several times each (min / median seconds).

- `--help`, `list`;
- `table` and `status` over 50 finished run directories (copies of one digits run);
- the digits demo's start-up: seconds from the process starting to its first epoch, as the run
  records them (summary.json's `startup_seconds`), and the whole process's wall time;
- where start-up goes: importing torch, the CLI and the data modules, each in a fresh process.

    python scripts/startup_times.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "swa_bench"]
DEMO = [
    "train",
    "--config",
    str(REPO / "configs/demo/digits.yaml"),
    "--method",
    "sgd",
    "--budget-scale",
    "0.05",
    "--quiet",
]


def timed(args: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - began


def figures(values: list[float]) -> str:
    return f"{min(values):6.2f} / {statistics.median(values):6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n = args.repeats
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        timed(CLI + DEMO + ["--out", str(root / "one")])
        run = next((root / "one").rglob("summary.json")).parent
        for seed in range(50):  # 50 finished runs for the read-only commands
            shutil.copytree(
                run,
                root / "fifty" / "digits/digits_cnn/sgd" / f"seed{seed}",
                ignore=shutil.ignore_patterns("checkpoints", ".lock"),
            )
        rows = {
            "swa-bench --help": [timed(CLI + ["--help"]) for _ in range(n)],
            "swa-bench list": [timed(CLI + ["list"]) for _ in range(n)],
            "swa-bench table (50 runs)": [timed(CLI + ["table", str(root / "fifty")]) for _ in range(n)],
            "swa-bench status (50 runs)": [timed(CLI + ["status", str(root / "fifty")]) for _ in range(n)],
        }
        startup, walls = [], []
        for i in range(n):
            out = root / f"demo{i}"
            walls.append(timed(CLI + DEMO + ["--out", str(out)]))
            startup.append(json.loads(next(out.rglob("summary.json")).read_text())["startup_seconds"])
        rows["digits demo: process start to first epoch"] = startup
        rows["digits demo: whole process"] = walls
        python = [sys.executable, "-c"]
        rows["  python alone"] = [timed(python + ["pass"]) for _ in range(n)]
        rows["  import torch"] = [timed(python + ["import torch"]) for _ in range(n)]
        rows["  import swa_bench.cli"] = [timed(python + ["import swa_bench.cli"]) for _ in range(n)]
        rows["  import the trainer (torch, data, models)"] = [
            timed(python + ["import swa_bench.training"]) for _ in range(n)
        ]
        # torch.optim's first optimizer imports torch._dynamo (its disable-decorator), whatever the run
        rows["  import torch, then build an SGD optimizer"] = [
            timed(python + ["import torch; torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)"])
            for _ in range(n)
        ]
        rows["  import torchvision (not paid by the demo)"] = [timed(python + ["import torchvision"]) for _ in range(n)]
    width = max(len(k) for k in rows)
    print(f"{'process':{width}s}  seconds, min / median of {n}")
    for name, values in rows.items():
        print(f"{name:{width}s}  {figures(values)}")


if __name__ == "__main__":
    main()
