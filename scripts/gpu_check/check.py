"""What the stages share, and how one stage runs: its wall time, pass/fail, its file in OUT at once."""

from __future__ import annotations

import os
import subprocess
import time
import traceback
from pathlib import Path

from .paths import REPO
from .report import Report
from .sizes import Sizes


class Check:
    """The sizes, OUT, the scratch folder, the deadline and the report; and what earlier stages found,
    for later ones: the data trees, the benches' and the grid's figures, the grid's runs."""

    def __init__(self, sizes: Sizes, out: Path, scratch: Path, deadline: float, report: Report):
        self.sizes, self.out, self.scratch, self.deadline, self.report = sizes, out, scratch, deadline, report
        self.say = report.say
        self.stages: dict[str, dict] = {}
        self.data: dict = {}
        self.figures: dict = {}  # what later stages use: the benches' and the grid's figures
        self.grid_runs: dict[int, dict] = {}  # runs at a time -> the grid's runs, their rows included
        self.extracting: subprocess.Popen | None = None
        self.stand_ins: Path | None = None  # a folder with the tqdm stand-in, where tqdm is missing

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def timeout(self, limit: float | None = None) -> float:
        """Seconds a subprocess may take: its limit, never past the deadline (less a margin to report)."""
        return max(1.0, min(limit or self.sizes.item_timeout, self.left() - 15))

    def env(self) -> dict:
        """Child environment: the source tree on the path. On a CPU, one thread per process: the tiny
        rehearsal steps gain nothing from more, and on a busy machine OpenMP threads that wait for each
        other made them 10-15x slower (a PreResNet-164 bench: 63 s with 2 threads, 4 s with 1)."""
        paths = [str(self.stand_ins)] if self.stand_ins else []
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [*paths, str(REPO), os.environ.get("PYTHONPATH")]))}
        if self.sizes.device == "cpu":
            env["OMP_NUM_THREADS"] = "1"
        return env

    def fast_sets(self) -> list[str]:
        """--set items of the grid's and the pair's runs: the fast path, and the rehearsal's subset."""
        s = self.sizes
        sets = [
            "--set",
            f"run.precision={s.precision}",
            "--set",
            f"run.compile={s.compile}",
            "--set",
            f"run.channels_last={str(s.channels_last).lower()}",
        ]
        return sets + (["--set", f"data.train_subset={s.subset}"] if s.subset else [])

    def stage(self, key: str, title: str, body) -> None:
        """Run one stage, body(figures, errors): its wall time, pass/fail, and OUT/<key>-stage.json
        written at once."""
        self.say(f"\n=== stage {key}: {title} ({self.left():.0f} s left) ===")
        began = time.monotonic()
        errors: list[str] = []
        figures: dict = {}
        try:
            body(figures, errors)
        except Exception as e:  # a bug or a missing file: reported, and the next stage runs
            errors.append(f"{e.__class__.__name__}: {e}")
            self.say(traceback.format_exc().rstrip())
        seconds = time.monotonic() - began
        status = "skipped" if figures.get("skipped") else ("failed" if errors else "passed")
        self.stages[key] = {
            "stage": key,
            "title": title,
            "status": status,
            "seconds": round(seconds, 1),
            "errors": errors,
            "figures": figures,
        }
        self.report.write_json(f"{key}-stage.json", self.stages[key])
        briefly = "; ".join(e.splitlines()[0] for e in errors)  # the details were printed as they came
        self.say(f"--- stage {key}: {status.upper()} in {seconds:.1f} s" + (f": {briefly}" if errors else ""))
