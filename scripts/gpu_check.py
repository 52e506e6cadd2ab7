#!/usr/bin/env python3
"""The prepared check for a lent GPU: what works on CUDA, how fast, and the longest run that fits.
Entry point: scripts/gpu_check.sh, which runs this from the source tree (nothing installed).

    scripts/gpu_check.sh [--minutes 9] [OUT]     # on the GPU machine; OUT: $OUT, else the argument, else runs/gpu
    scripts/gpu_check.sh --rehearse [OUT]        # the same stages and code on this CPU, tiny sizes

Stages, in order of value. Each prints its figures and writes its flat result files to OUT as soon as
it ends, so a command cut short still returns what was done; a stage that fails is reported and the
next one runs (exit status 1 at the end if any failed or was skipped).
  (a) smoke: every path on a few hundred real images: SGD, SWA, EMA, a SIGTERM mid-epoch and the
      resume, bf16, compile, channels-last; pass/fail and seconds per item.
  (b) speed: `swa-bench bench` of VGG-16 and PreResNet-164 (the fast path against the reference-style
      loop at the same precision and in fp32); images/s of the whole device with 1 run and with 3 runs
      sharing it (`swa-bench grid --jobs-per-gpu 3`), and from them the GPU-hours of the CIFAR tables
      (scripts/gpu_hours.py).
  (c) the longest real run that fits the minutes left: the VGG-16 CIFAR-10 SGD + SWA pair, full budget
      or the largest budget scale that fits; its table, seconds per epoch, the share of time outside the
      training steps, and the compile epochs apart.

Runs go to a scratch folder outside the repository (removed at the end unless --keep-scratch); OUT gets
only small flat files (JSON, metrics rows, tables, logs), never checkpoints.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARBALLS = [REPO / "data/cifar10-jpg.tar.gz", REPO.parent / "shared/data/cifar10-jpg.tar.gz"]
MINI = REPO / "configs/mini/preresnet20_ratio0.5.yaml"  # PreResNet-20 with BN: every averaging path
VGG16 = REPO / "configs/cifar10/vgg16.yaml"
EXIT_PREEMPTED = 75  # swa_bench/outcomes.py (not imported: this process stays torch-free)
LOG_LIMIT = 200_000  # bytes of a subprocess log copied to OUT (its tail)


# --------------------------------------------------------------------------------------------------
# Sizes: the only thing that differs between the GPU run and its rehearsal


@dataclass(frozen=True)
class Sizes:
    device: str
    minutes: float  # default total budget
    smoke_per_class: tuple[int, int]  # (train, test) images per class of the smoke tree
    smoke_subset: int  # data.train_subset of the smoke runs
    smoke_batch: int  # optim.batch_size of the smoke runs: several steps per epoch, so a signal lands mid-epoch
    smoke_scale: float  # budget scale of the smoke runs (the mini config's B = 120 epochs)
    resume_scale: float  # the stopped run's: more epochs, so the signal lands before the end
    smoke_jobs: int  # smoke items at once
    compile: str  # run.compile of the compile item, the benches and the fast path
    precision: str  # run.precision of the fast path (grid and the pair)
    channels_last: bool  # of the fast path
    bench: tuple[str, ...]  # sizes of `swa-bench bench` (precision bf16 always: its two references)
    bench_channels_last: bool
    grid_scale: float  # VGG-16's SGD run at this scale: 4 epochs, two of them (2, 3) without evaluation
    full_data: bool  # grid and pair on all of CIFAR-10 (else on the smoke tree)
    subset: int | None  # data.train_subset of the grid and the pair
    pair_max_scale: float
    item_timeout: float  # seconds, any one subprocess


GPU = Sizes(
    device="cuda",
    minutes=9.0,
    smoke_per_class=(50, 20),
    smoke_subset=400,
    smoke_batch=128,
    smoke_scale=0.05,
    resume_scale=0.1,
    smoke_jobs=7,
    compile="reduce-overhead",
    precision="bf16",
    channels_last=True,
    bench=("--steps", "30", "--warmup", "5", "--rounds", "3", "--workers", "8"),
    bench_channels_last=True,
    grid_scale=0.02,
    full_data=True,
    subset=None,
    pair_max_scale=1.0,
    item_timeout=300,
)
# On this 2-core CPU a cold compilation costs ~40 s a model (`--compile default` rehearses it anyway) and
# bf16 runs 2x and more slower than fp32: the grid and the pair run fp32 without compilation there. The
# budget is a cap (the sizes set the length: ~2-3 minutes), generous so a busy machine does not cut stage (c).
REHEARSAL = Sizes(
    device="cpu",
    minutes=8.0,
    smoke_per_class=(8, 3),
    smoke_subset=64,
    smoke_batch=16,
    smoke_scale=0.02,
    resume_scale=0.04,
    smoke_jobs=2,
    compile="none",
    precision="fp32",
    channels_last=False,
    bench=("--batch-size", "4", "--steps", "1", "--warmup", "0", "--rounds", "1", "--workers", "1"),
    bench_channels_last=False,
    grid_scale=0.02,
    full_data=False,
    subset=16,
    pair_max_scale=0.01,
    item_timeout=120,
)


# --------------------------------------------------------------------------------------------------
# Output: everything printed also goes to OUT/gpu_check.log; results are small flat files in OUT


class Report:
    def __init__(self, out: Path):
        self.out = out
        self.lock = threading.Lock()
        self.log = open(out / "gpu_check.log", "a")

    def say(self, text: str = "") -> None:
        with self.lock:
            print(text, flush=True)
            self.log.write(text + "\n")
            self.log.flush()

    def write_json(self, name: str, value) -> None:
        _atomic_write(self.out / name, json.dumps(value, indent=1, default=str) + "\n")

    def copy(self, source: Path, name: str) -> None:
        """A small copy of `source` as OUT/name (its tail if it is large); nothing if it is missing."""
        if source.is_file():
            data = source.read_bytes()
            _atomic_write(self.out / name, data[-LOG_LIMIT:].decode(errors="replace"))


def _atomic_write(path: Path, text: str) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    part.replace(path)


# --------------------------------------------------------------------------------------------------
# Subprocesses: output to a log, a time limit, the whole process group ended on time-out


@dataclass
class Ran:
    rc: int
    seconds: float
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.text().splitlines()[-lines:])


def run(
    args: list[str], log: Path, timeout: float, env: dict | None = None, cwd: Path = REPO, on_line=None, every=None
) -> Ran:
    """Run `args` with stdout and stderr into `log`. `on_line(line, process)` sees each line as it comes
    (the stopped run sends its signal from there); `every()` is called every 10 s while it runs."""
    log.parent.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log, "w") as sink:
        process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
            env=child_env,
            start_new_session=True,
        )

        def pump():
            for line in process.stdout:
                sink.write(line)
                sink.flush()
                if on_line:
                    on_line(line, process)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        rc = None
        while rc is None:
            try:
                rc = process.wait(timeout=max(0.1, min(10.0, timeout - (time.monotonic() - began))))
            except subprocess.TimeoutExpired:
                if time.monotonic() - began >= timeout:
                    _end_group(process)
                    rc = 124
                elif every:
                    every()
        reader.join(timeout=10)
    return Ran(rc, time.monotonic() - began, log)


def _end_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process's group (compile workers, DataLoader workers), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def swa_bench(*args: str) -> list[str]:
    return [sys.executable, "-m", "swa_bench", *args]


# swa-bench needs these beside torch; the GPU machine's python3 was described without tqdm, which only
# draws progress bars: where it is missing, the children get this stand-in (no bars, lines still printed).
NEEDED = ("torchvision", "numpy", "PIL", "click", "yaml", "pandas", "tabulate", "tqdm")
TQDM_STAND_IN = '''"""Stand-in for tqdm, written by scripts/gpu_check.py where tqdm is not installed: no bars."""
import sys


class tqdm:
    def __init__(self, iterable=None, *args, **kwargs):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass

    def close(self):
        pass

    @staticmethod
    def write(line, file=None, end="\\n"):
        (file or sys.stdout).write(str(line) + end)
'''


# --------------------------------------------------------------------------------------------------
# Metrics of finished runs


def read_rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_summary(run_dir: Path) -> dict | None:
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_dirs(out: Path) -> list[Path]:
    """Run directories under `out` (those that wrote metrics), in a stable order."""
    return sorted(p.parent for p in out.rglob("metrics.jsonl"))


def split_epochs(rows: list[dict], method: str) -> dict:
    """A run's epochs by kind. Compile epochs: the first (its training step and evaluation compile) and
    the first that evaluates the averaged model (its BN pass and evaluation may compile new graphs); the
    rest are steady. step_s: the median of the steady epochs without an evaluation, i.e. the seconds of
    an epoch's training steps; None when every steady epoch evaluates (small budget scales)."""
    first_average = next((r["epoch"] for r in rows if f"{method}_test_acc" in r), None)
    compile_epochs = {rows[0]["epoch"], first_average} - {None} if rows else set()
    steady = [r for r in rows if r["epoch"] not in compile_epochs]
    plain = [r["seconds"] for r in steady if "test_acc" not in r]
    return {
        "compile": [r for r in rows if r["epoch"] in compile_epochs],
        "steady": steady,
        "step_s": statistics.median(plain) if plain else None,
    }


def evaluations_in(row: dict, method: str) -> int:
    """Evaluations of the test set in an epoch's row: the model's, and the averaged model's (with its BN pass)."""
    return ("test_acc" in row) + (f"{method}_test_acc" in row)


def method_of(run_dir: Path) -> str:
    return run_dir.parent.name.split("-")[0]  # swa-<variant> -> swa


# --------------------------------------------------------------------------------------------------
# The check


class Check:
    def __init__(self, sizes: Sizes, out: Path, scratch: Path, deadline: float, report: Report):
        self.sizes, self.out, self.scratch, self.deadline, self.report = sizes, out, scratch, deadline, report
        self.say = report.say
        self.stages: dict[str, dict] = {}
        self.data: dict = {}
        self.figures: dict = {}  # what later stages use: the benches' and the grid's figures
        self.grid_runs: dict[int, dict] = {}  # runs at a time -> the grid's runs, their rows included
        self.extracting: subprocess.Popen | None = None
        self.stand_ins: Path | None = None  # a folder with the tqdm stand-in, where tqdm is missing

    def check_modules(self) -> None:
        """Say what this python lacks of what swa-bench imports; stand in for tqdm if it is missing."""
        missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
        if "tqdm" in missing:
            self.stand_ins = self.scratch / "stand-ins"
            self.stand_ins.mkdir(parents=True, exist_ok=True)
            (self.stand_ins / "tqdm.py").write_text(TQDM_STAND_IN)
            self.say(f"note: tqdm is not installed: the runs use a stand-in without progress bars ({self.stand_ins})")
        if set(missing) - {"tqdm"}:
            self.say(f"error: this python lacks {', '.join(sorted(set(missing) - {'tqdm'}))}: the stages will fail")

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
        """Run one stage: its wall time, pass/fail, and OUT/<key>-stage.json written at once."""
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

    # -- data --------------------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """The smoke tree (a few hundred images of the JPEG copy, or synthetic ones when no copy is
        found) and, on the GPU, the whole tree, extracted in the background while stage (a) runs."""
        s = self.sizes
        tree, tarball = REPO / "data/cifar10-jpg", next((t for t in TARBALLS if t.is_file()), None)
        small = self.scratch / "data/small"
        began = time.monotonic()
        if (tree / "train").is_dir():
            source = f"real CIFAR-10 images ({tree.relative_to(REPO)})"
            _copy_first(tree, small, s.smoke_per_class)
        elif tarball:
            source = f"real CIFAR-10 images ({tarball.name})"
            _extract_first(tarball, small, s.smoke_per_class)
        else:
            from swa_bench.data.synthetic import CIFAR10_CLASSES, write_imagefolder

            source = "SYNTHETIC random images (no CIFAR-10 copy found): no accuracy means anything"
            write_imagefolder(small, CIFAR10_CLASSES, *s.smoke_per_class)
        n_train, n_test = (10 * n for n in s.smoke_per_class)
        self.data = {"smoke": str(small), "source": source, "smoke_images": [n_train, n_test], "full": str(small)}
        self.say(f"data: smoke tree of {n_train} train / {n_test} test {source}, {time.monotonic() - began:.1f} s")
        if s.full_data:
            self.data["full"] = str(tree)
            if not (tree / "test").is_dir():
                if tarball is None:
                    self.data["full_error"] = f"no {tree} and no tarball ({', '.join(map(str, TARBALLS))})"
                    self.say(f"data: {self.data['full_error']}: stages (b) grid and (c) will fail")
                else:
                    # Into a folder of its own, renamed when complete: a cut-short extraction is redone
                    # next time rather than taken for the whole set. (data/ is kept on a warm machine.)
                    partial = tree.with_name(".cifar10-jpg.partial")
                    shutil.rmtree(partial, ignore_errors=True)
                    partial.mkdir(parents=True)
                    self.extracting = subprocess.Popen(["tar", "xzf", str(tarball), "-C", str(partial)])
                    self.say(f"data: extracting {tarball} into {tree}/ in the background")
        self.report.write_json("data.json", self.data)

    def full_tree(self) -> str:
        """The tree of the grid and the pair, once extracted."""
        if self.extracting is not None:
            began = time.monotonic()
            try:
                rc = self.extracting.wait(timeout=self.timeout())
            except subprocess.TimeoutExpired:
                self.extracting.kill()
                rc = "a time-out"
            self.extracting, tree = None, Path(self.data["full"])
            if rc == 0:
                partial = tree.with_name(".cifar10-jpg.partial")
                (partial / tree.name).rename(tree)
                partial.rmdir()
                self.say(f"data: extracted ({time.monotonic() - began:.0f} s waited for it)")
            else:
                self.data["full_error"] = f"extracting the tarball failed: tar exited with {rc}"
        if "full_error" in self.data:
            raise RuntimeError(self.data["full_error"])
        return self.data["full"]

    # -- (a) smoke -----------------------------------------------------------------------------------

    def smoke(self, figures: dict, errors: list[str]) -> None:
        s = self.sizes
        items = {
            "sgd": ["--method", "sgd"],
            "swa": ["--method", "swa"],
            "ema": ["--method", "ema"],
            "resume": ["--method", "sgd"],  # stopped by SIGTERM mid-epoch, then the same command again
            "bf16": ["--method", "swa", "--set", "run.precision=bf16"],
            "compile": ["--method", "swa", "--set", f"run.compile={s.compile}"],
            "channels_last": ["--method", "swa", "--set", "run.channels_last=true"],
        }
        if s.compile == "none":
            self.say(
                "note: compile item runs with run.compile=none here (compilation costs ~40 s a model on "
                "this CPU with a cold cache); --compile default rehearses it"
            )
        lock = threading.Lock()

        def one(name: str) -> None:
            out = self.scratch / "a" / name
            args = swa_bench(
                "train",
                "--config",
                str(MINI),
                "--data-path",
                self.data["smoke"],
                "--device",
                s.device,
                "--out",
                str(out),
                "--set",
                f"data.train_subset={s.smoke_subset}",
                "--set",
                f"optim.batch_size={s.smoke_batch}",
                *items[name],
            )
            scale = s.resume_scale if name == "resume" else s.smoke_scale
            args += ["--budget-scale", str(scale)]
            try:
                result = self.resume_item(args, out) if name == "resume" else self.plain_item(name, args, out)
            except Exception as e:
                result = {"ok": False, "error": f"{e.__class__.__name__}: {e}", "seconds": 0.0}
            with lock:
                figures[name] = result
                if not result["ok"]:
                    errors.append(f"{name}: {result['error']}")
                self.report.write_json("a-smoke.json", {"data": self.data["source"], "items": figures})
            detail = result.get("detail", "")
            self.say(
                f"  {name:14s} {'pass' if result['ok'] else 'FAIL'}  {result['seconds']:6.1f} s  "
                + (detail if result["ok"] else result["error"])
            )

        with ThreadPoolExecutor(max_workers=s.smoke_jobs) as pool:
            list(pool.map(one, items))

    def plain_item(self, name: str, args: list[str], out: Path) -> dict:
        ran = run(args + ["--quiet"], self.scratch / "logs" / f"a-{name}.log", self.timeout(), self.env())
        self.report.copy(ran.log, f"a-{name}.log")
        return self.finished_run(name, ran, out)

    def finished_run(self, name: str, ran: Ran, out: Path) -> dict:
        """An item's verdict from its exit status and summary; its metrics copied to OUT."""
        dirs = run_dirs(out)
        for d in dirs:
            self.report.copy(d / "metrics.jsonl", f"a-{name}-metrics.jsonl")
        summary = read_summary(dirs[-1]) if dirs else None
        result = {"ok": False, "seconds": round(ran.seconds, 1), "exit": ran.rc}
        if ran.rc != 0 or summary is None:
            result["error"] = f"exit {ran.rc}" + (", no summary" if summary is None else "") + "\n" + ran.tail()
            return result
        rows = read_rows(dirs[-1])
        epochs = split_epochs(rows, summary["method"])
        result.update(
            ok=True,
            results=summary["results"],
            epochs=len(rows),
            first_epoch_s=rows[0]["seconds"],
            step_s=epochs["step_s"],
        )
        accuracies = ", ".join(f"{k} {v:.1f}%" for k, v in summary["results"].items())
        result["detail"] = f"{len(rows)} epochs, first {rows[0]['seconds']:.1f} s; {accuracies}"
        return result

    def resume_item(self, args: list[str], out: Path) -> dict:
        """SIGTERM right after the first epoch's line, so it lands within the second epoch; the run must
        exit with the preempted status, then the same command resume it mid-epoch and finish. (Not
        --quiet: the epoch lines are the cue.)"""
        sent = threading.Event()

        def on_line(line: str, process) -> None:
            if not sent.is_set() and re.match(r"epoch\s+1/", line):
                process.send_signal(signal.SIGTERM)
                sent.set()

        logs = self.scratch / "logs"
        stopped = run(args, logs / "a-resume-stopped.log", self.timeout(), self.env(), on_line=on_line)
        self.report.copy(stopped.log, "a-resume-stopped.log")
        resumed = run(args, logs / "a-resume.log", self.timeout(), self.env())
        self.report.copy(resumed.log, "a-resume.log")
        result = self.finished_run("resume", resumed, out)
        result["seconds"] = round(stopped.seconds + resumed.seconds, 1)
        found = re.search(r"resuming after epoch (\d+) and (\d+) steps", resumed.text())
        problems = []
        if not sent.is_set():
            problems.append("no epoch line seen: no signal sent")
        if stopped.rc != EXIT_PREEMPTED:
            problems.append(f"the stopped run exited {stopped.rc}, not {EXIT_PREEMPTED} (preempted)\n{stopped.tail()}")
        if not found:
            problems.append("the resumed run did not say 'resuming after epoch E and N steps'")
        if problems or not result["ok"]:
            result.update(ok=False, error="; ".join(problems + ([result["error"]] if "error" in result else [])))
            return result
        result["resumed_after"] = {"epoch": int(found[1]), "steps": int(found[2])}
        result["detail"] = (
            f"stopped (exit {EXIT_PREEMPTED}) and resumed after epoch {found[1]} and {found[2]} steps; "
            + result["detail"]
        )
        return result

    # -- (b) speed -----------------------------------------------------------------------------------

    def speed(self, figures: dict, errors: list[str]) -> None:
        s = self.sizes
        flags = ["--precision", "bf16", "--compile", s.compile] + (["--channels-last"] if s.bench_channels_last else [])
        for model, target in (("vgg16", 0.4), ("preresnet164", 1.5)):  # the H200 epoch targets (docs/PERFORMANCE.md)
            try:
                figures[f"bench_{model}"] = self.bench(model, target, flags)
            except Exception as e:
                errors.append(f"bench {model}: {e}")
                self.say(f"  bench {model}: FAILED: {e}")
        try:
            figures["grid"] = self.grid_throughput()
        except Exception as e:
            errors.append(f"grid: {e}")
            self.say(f"  grid: FAILED: {e}")

    def bench(self, model: str, target: float, flags: list[str]) -> dict:
        folder = self.scratch / "b"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"bench-{model}.json"
        # cwd: the scratch folder, where the bench writes its checkpoint measurements (runs/bench/).
        ran = run(
            swa_bench(
                "bench",
                "--model",
                model,
                "--device",
                self.sizes.device,
                *self.sizes.bench,
                *flags,
                "--epoch-seconds",
                str(target),
                "--json",
                str(path),
            ),
            self.scratch / "logs" / f"b-bench-{model}.log",
            self.timeout(),
            self.env(),
            cwd=folder,
        )
        self.report.copy(ran.log, f"b-bench-{model}.txt")
        if ran.rc != 0 or not path.is_file():
            raise RuntimeError(f"exit {ran.rc}\n{ran.tail()}")
        self.report.copy(path, f"b-bench-{model}.json")
        r = json.loads(path.read_text())
        seen = {
            "train_img_s": r["train_img_s"],
            "eval_img_s": r["eval_img_s"],
            "epoch_steps_s": 50_000 / r["train_img_s"],
            "pipeline_train_x": r["train_img_s"] / r["reference_train_img_s"],
            "pipeline_eval_x": r["eval_img_s"] / r["reference_eval_img_s"],
        }
        if r.get("reference_fp32_train_img_s"):
            seen["vs_fp32_train_x"] = r["train_img_s"] / r["reference_fp32_train_img_s"]
            seen["vs_fp32_eval_x"] = r["eval_img_s"] / r["reference_fp32_eval_img_s"]
        seen["projected_outside_pct"] = r["outside_steps"].get("projected_share_pct")
        self.say(
            f"  bench {model} ({ran.seconds:.0f} s): train {seen['train_img_s']:,.0f} img/s "
            f"= {seen['epoch_steps_s']:.2f} s per 50,000-image epoch of steps (target {target} s); "
            f"speed-up over the reference loop at the same precision: train {seen['pipeline_train_x']:.2f}x, "
            f"eval {seen['pipeline_eval_x']:.2f}x"
            + (
                f"; over the fp32 reference: train {seen['vs_fp32_train_x']:.2f}x, eval {seen['vs_fp32_eval_x']:.2f}x"
                if "vs_fp32_train_x" in seen
                else ""
            )
            + f"; outside the steps at {target} s/epoch: {seen['projected_outside_pct']:.2f} %"
        )
        self.figures[f"bench_{model}"] = seen
        return seen

    def grid_throughput(self) -> dict:
        """The VGG-16 row at a small budget scale through `swa-bench grid`: 1 seed one run at a time, then
        3 seeds three at a time. Its SGD runs come first and run together; they are what is measured, so
        each grid is stopped once they have finished (its SWA and other runs would add minutes, not
        figures). Evaluation only where the protocol must (first and last epoch, budget points), so
        that the steady epochs are training steps alone."""
        s = self.sizes
        data = self.full_tree()
        found = {}
        for seeds, jobs in ((1, 1), (3, 3)):
            out = self.scratch / "b" / f"grid-{jobs}"
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
                    *self.fast_sets(),
                ),
                self.scratch / "logs" / f"b-grid-{jobs}.log",
                self.timeout(),
                self.env(),
                on_line=on_line,
            )
            self.report.copy(ran.log, f"b-grid-{jobs}.log")
            if len(done) < seeds:
                raise RuntimeError(
                    f"grid of {jobs} at a time: {len(done)} of {seeds} SGD runs finished, exit {ran.rc}\n{ran.tail()}"
                )
            found[jobs] = self.grid_rates(out, jobs, ran.seconds)
        one, three = found[1], found[3]
        result = {"one_run": one, "three_runs": three, "sharing_x": three["device_img_s"] / one["device_img_s"]}
        self.say(
            f"  grid: whole device, steady epochs: {one['device_img_s']:,.0f} img/s with 1 run, "
            f"{three['device_img_s']:,.0f} img/s with 3 runs sharing it ({result['sharing_x']:.2f}x); "
            f"the grids' wall time until their SGD runs finished: {one['wall_s']:.0f} s and {three['wall_s']:.0f} s"
        )
        result["gpu_hours"] = self.gpu_hours(
            {"1 run per device": one["device_img_s"], "3 runs per device": three["device_img_s"]}
        )
        self.figures["grid"] = result
        return result

    def grid_rates(self, out: Path, jobs: int, wall: float) -> dict:
        """Images/s of the device: each run's steady epochs of steps (median), times the runs sharing it."""
        rates, per_run = [], {}
        for d in run_dirs(out / "cifar10/vgg16/sgd"):
            method, seed = method_of(d), d.name.split("-")[0]
            self.report.copy(d / "metrics.jsonl", f"b-grid{jobs}-{method}-{seed}-metrics.jsonl")
            rows, summary = read_rows(d), read_summary(d)
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
        self.grid_runs[jobs] = per_run  # with their rows, for stage (c)'s estimates
        return {
            "runs": len(rates),
            "wall_s": wall,
            "run_img_s": statistics.median(rates),
            "device_img_s": jobs * statistics.median(rates),
            "per_run": {k: {key: v for key, v in r.items() if key != "rows"} for k, r in per_run.items()},
        }

    def gpu_hours(self, rates: dict[str, float]) -> dict:
        """scripts/gpu_hours.py at the FLOP rate each measured VGG-16 rate means (3 x forward MACs x 2 FLOP
        per trained image, its convention): every model assumed to reach VGG-16's rate."""
        macs = 313_725_952  # VGG-16's forward multiply-accumulates (swa_bench.models.registry)
        hours = {}
        for label, rate in rates.items():
            tflops = rate * 3 * macs * 2 / 1e12
            ran = run(
                [sys.executable, str(REPO / "scripts/gpu_hours.py"), "--tflops", f"{tflops:.4g}", "--seeds", "3"],
                self.scratch / "logs" / "b-gpu-hours.log",
                self.timeout(60),
                self.env(),
            )
            table = dict(re.findall(r"^(cifar10|cifar100)\s+(\d+) GPU-hours", ran.text(), re.M))
            hours[label] = {"tflops": tflops, **{k: int(v) for k, v in table.items()}}
            self.say(
                f"  projected {'GPU' if self.sizes.device == 'cuda' else 'CPU'}-hours of a whole table, 3 seeds, "
                f"{label} ({tflops:.3g} TFLOP/s effective, every model assumed at VGG-16's): "
                f"CIFAR-10 {table.get('cifar10', '?')}, CIFAR-100 {table.get('cifar100', '?')}"
                + ("" if self.sizes.device == "cuda" else " (rehearsal: meaningless)")
            )
        return hours

    # -- (c) the longest real run --------------------------------------------------------------------

    def pair(self, figures: dict, errors: list[str]) -> None:
        data = self.full_tree()
        costs = self.epoch_costs()
        margin = 30 if self.sizes.device == "cuda" else 10  # table, copies, the summary
        budget = self.left() - margin
        choice = choose_scale(costs, budget, self.sizes.pair_max_scale)
        figures["plan"] = {"costs": costs, "seconds_left": budget, **choice}
        self.report.write_json("c-plan.json", figures["plan"])
        self.say(
            f"  costs ({costs['basis']}): steps {costs['step_s']:.3f} s per epoch, evaluation {costs['eval_s']:.3f} s, "
            f"start-up {costs['startup_s']:.1f} s per run, compilation {costs['compile_s']:.1f} s per compile epoch"
        )
        self.say(f"  {choice['why']}")
        if choice["scale"] is None:
            figures["skipped"] = True
            errors.append(choice["why"])
            return
        out = self.scratch / "c"
        runs = {}
        for method in ("sgd", "swa"):

            def copy_now():
                return [self.report.copy(d / "metrics.jsonl", f"c-{method_of(d)}-metrics.jsonl") for d in run_dirs(out)]

            ran = run(
                swa_bench(
                    "train",
                    "--config",
                    str(VGG16),
                    "--method",
                    method,
                    "--device",
                    self.sizes.device,
                    "--data-path",
                    data,
                    "--out",
                    str(out),
                    "--budget-scale",
                    f"{choice['scale']:g}",
                    "--quiet",
                    *self.fast_sets(),
                ),
                self.scratch / "logs" / f"c-{method}.log",
                self.timeout(self.left()),
                self.env(),
                every=copy_now,
            )
            copy_now()
            self.report.copy(ran.log, f"c-{method}.log")
            runs[method] = ran
            if ran.rc != 0:
                errors.append(f"{method}: exit {ran.rc}" + (" (out of time)" if ran.rc == 124 else ""))
                self.say(f"  {method}: exit {ran.rc}\n{ran.tail()}")
        self.pair_figures(out, runs, figures)

    def epoch_costs(self) -> dict:
        """Seconds of an epoch's steps, of one evaluation, of a run's start-up (process start to its first
        epoch: imports, data, model) and of a compile epoch beyond its steps and evaluation. From the
        grid's single VGG-16 SGD run (same options and data; its first epoch's compilation stands for the
        SWA run's averaged model too); else from the VGG-16 bench, guessing the rest; else all guessed."""
        one = self.grid_runs.get(1)
        if one:
            (r,) = one.values()
            shares = time_shares(r["rows"], "sgd")  # it has steady epochs of steps alone: the grid keeps those
            return {
                "basis": "measured: the grid's single VGG-16 run",
                "step_s": shares["step_s"],
                "eval_s": max(0.0, shares["eval_s"]),
                "startup_s": r["startup_s"] or 0.0,
                "compile_s": max(0.0, shares["compile_epochs"][0]["beyond_steady_s"]),
            }
        bench = self.figures.get("bench_vgg16")
        train, test = (50_000, 10_000) if self.sizes.full_data else (10 * n for n in self.sizes.smoke_per_class)
        train = self.sizes.subset or train
        if bench:
            return {
                "basis": "the VGG-16 bench's rates (the grid failed); start-up and compilation guessed",
                "step_s": train / bench["train_img_s"],
                "eval_s": test / bench["eval_img_s"],
                "startup_s": 60.0,
                "compile_s": 60.0,
            }
        return {
            "basis": "nothing measured: guessed at 5x the 0.4 s target per 50,000 images",
            "step_s": 2.0 * train / 50_000,
            "eval_s": 0.4 * test / 10_000,
            "startup_s": 60.0,
            "compile_s": 120.0,
        }

    def pair_figures(self, out: Path, runs: dict, figures: dict) -> None:
        """The table; per run: seconds per epoch of steps, the share of the steady epochs' time spent
        outside the steps, the compile epochs apart; and the share over both runs."""
        for fmt, name in (("markdown", "c-table.md"), ("csv", "c-table.csv")):
            ran = run(
                swa_bench("table", str(out), "--format", fmt),
                self.scratch / "logs" / name,
                self.timeout(60),
                self.env(),
            )
            self.report.copy(ran.log, name)
            if fmt == "markdown":
                self.say(ran.text().rstrip())
        steady_s = outside_s = 0.0
        for d in run_dirs(out):
            method, rows = method_of(d), read_rows(d)
            if not rows:
                continue
            summary, ran = read_summary(d) or {}, runs.get(method)
            shares = time_shares(rows, method)
            figures[method] = result = {
                "epochs": len(rows),
                "finished": bool(summary),
                "results": summary.get("results"),
                "process_s": ran.seconds if ran else None,
                "startup_s": summary.get("startup_seconds"),
                "epoch_seconds_sum": sum(r["seconds"] for r in rows),
                **shares,
            }
            if shares["outside_steps_pct"] is not None:
                steady_s += shares["steady_s"]
                outside_s += shares["steady_s"] * shares["outside_steps_pct"] / 100
            compiled = ", ".join(
                f"epoch {c['epoch']} {c['seconds']:.2f} s"
                + ("" if c["beyond_steady_s"] is None else f" (+{c['beyond_steady_s']:.2f} s)")
                for c in shares["compile_epochs"]
            )
            self.say(
                f"  {method}: {len(rows)} epochs"
                + (f", steps {shares['step_s']:.3f} s per epoch" if shares["step_s"] else "")
                + f", mean epoch {shares['mean_epoch_s']:.3f} s; outside the steps, steady epochs: "
                + (
                    f"{shares['outside_steps_pct']:.2f} %"
                    if shares["outside_steps_pct"] is not None
                    else "not measurable (every epoch evaluates at this budget scale)"
                )
                + f"; compile epochs, apart: {compiled}; process {result['process_s'] or 0:.0f} s, of which "
                f"{result['epoch_seconds_sum']:.0f} s in epochs ({result['startup_s'] or 0:.1f} s to the first)"
            )
        if steady_s:
            figures["outside_steps_pct"] = 100 * outside_s / steady_s
            self.say(
                f"  the pair: {figures['outside_steps_pct']:.2f} % of its steady epochs' time outside "
                "the training steps"
            )
        self.report.write_json("c-result.json", figures)


def time_shares(rows: list[dict], method: str) -> dict:
    """Where a run's epoch time went. step_s: seconds of an epoch's training steps (the median steady
    epoch without evaluation); the share of the steady epochs' time outside the steps (evaluations, BN
    passes, checkpoints, collection); and the compile epochs apart, with their seconds beyond a steady
    epoch that evaluates as much (None where no steady epoch is without evaluation)."""
    split = split_epochs(rows, method)
    step, steady = split["step_s"], split["steady"]
    steady_s = sum(r["seconds"] for r in steady)
    # One evaluation's seconds (with the average's BN pass, if any): from the steady epochs that evaluate.
    evals = [(r["seconds"] - step) / evaluations_in(r, method) for r in steady if step and evaluations_in(r, method)]
    eval_s = statistics.median(evals) if evals else (0.0 if step else None)
    return {
        "step_s": step,
        "eval_s": eval_s,
        "mean_epoch_s": statistics.mean(r["seconds"] for r in rows),
        "steady_epochs": len(steady),
        "steady_s": steady_s,
        "outside_steps_pct": 100 * (steady_s - step * len(steady)) / steady_s if step and steady_s else None,
        "compile_epochs": [
            {
                "epoch": r["epoch"],
                "seconds": r["seconds"],
                "evaluations": evaluations_in(r, method),
                "beyond_steady_s": r["seconds"] - step - evaluations_in(r, method) * eval_s if step else None,
            }
            for r in split["compile"]
        ],
    }


def choose_scale(costs: dict, budget: float, max_scale: float) -> dict:
    """The largest budget scale (full, else in hundredths) whose SGD + SWA pair is predicted to fit in
    `budget` seconds, with 10% to spare; the prediction counts each run's epochs and evaluations."""
    from swa_bench.config import load_config
    from swa_bench.protocol import resolve_protocol

    def predicted(scale: float) -> tuple[float, dict]:
        total, epochs = 0.0, {}
        for method in ("sgd", "swa"):
            proto = resolve_protocol(load_config(VGG16, {"run.method": method, "run.budget_scale": scale}))
            span = range(proto.first_epoch, proto.epochs)
            evaluations = sum(1 for e in span if proto.evaluates_after(e))
            averaged = sum(1 for e in span if proto.evaluates_after(e) and proto.swa_start and e + 1 >= proto.swa_start)
            compiles = 1 + (method == "swa")  # the first epoch; the first evaluation of the average
            total += (
                costs["startup_s"]
                + compiles * costs["compile_s"]
                + len(span) * costs["step_s"]
                + (evaluations + averaged) * costs["eval_s"]
            )
            epochs[method] = len(span)
        return 1.1 * total, epochs

    full, full_epochs = predicted(1.0)
    candidates = [1.0] + [k / 100 for k in range(99, 0, -1)]
    for scale in (c for c in candidates if c <= max_scale):
        seconds, epochs = predicted(scale)
        if seconds <= budget:
            why = (
                f"full budget: SGD {epochs['sgd']} + SWA {epochs['swa']} epochs, predicted {seconds:.0f} s of "
                f"{budget:.0f} s left"
                if scale == 1.0
                else f"budget scale {scale:g}: SGD {epochs['sgd']} + SWA {epochs['swa']} epochs, "
                f"predicted {seconds:.0f} s "
                f"of {budget:.0f} s left (the full budget, {full_epochs['sgd']} + {full_epochs['swa']} epochs, "
                f"needs {full:.0f} s" + (")" if max_scale >= 1 else f"; at most {max_scale:g} here)")
            )
            return {"scale": scale, "epochs": epochs, "predicted_s": seconds, "full_budget_s": full, "why": why}
    return {
        "scale": None,
        "predicted_s": None,
        "full_budget_s": full,
        "why": f"skipped: even budget scale 0.01 does not fit in the {budget:.0f} s left",
    }


# --------------------------------------------------------------------------------------------------
# Small image trees


def _copy_first(tree: Path, dest: Path, per_class: tuple[int, int]) -> None:
    for split, n in zip(("train", "test"), per_class):
        for folder in sorted(p for p in (tree / split).iterdir() if p.is_dir()):
            (dest / split / folder.name).mkdir(parents=True, exist_ok=True)
            for image in sorted(folder.iterdir())[:n]:
                shutil.copyfile(image, dest / split / folder.name / image.name)


def _extract_first(tarball: Path, dest: Path, per_class: tuple[int, int]) -> None:
    """The first images of each class from the tarball (cifar10-jpg/<split>/<class>/NNNN.jpg), read as a
    stream: a second or two, where extracting all 60,000 files takes much longer."""
    wanted = dict(zip(("train", "test"), per_class))
    with tarfile.open(tarball) as archive:
        for member in archive:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 4 and parts[1] in wanted and int(parts[3][:4]) < wanted[parts[1]]:
                target = dest / parts[1] / parts[2] / parts[3]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())


# --------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    check.check_modules()
    check.prepare_data()
    check.stage("a", "smoke test of every path", check.smoke)
    check.stage("b", "speed: benches, 1 and 3 runs per device, projected GPU-hours", check.speed)
    check.stage("c", "the longest VGG-16 SGD + SWA pair that fits", check.pair)

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
