"""The paper in miniature on a CPU (`make reproduce-mini`): PreResNet-20 on a fixed 1,000-image subset of
CIFAR-10, in parts that run alone, in any order, and resume (every run and every landscape point is kept;
finished work is skipped, an interrupted run continues):

  table      the miniature of Table 1: SGD, FGE, SWA at the two rate rules, EMA, seeds 0-2; seeds 3 and 4
             of SGD and the 0.5 x rule, so their paired difference has a standard error
  figures    the table's seed-0 runs (evaluated every 10 epochs): convergence curves with a late zoom, optima width
             along random rays, the SGD-SWA line, the plane through three FGE models with their average
  schedules  SWA continuing the SGD run from epoch 96 at constant and cyclical rates (the paper's §4.3);
             a constant rate from scratch, averaged from epoch 84 (§4.4); seed 0
  finetune   SWA from each finished SGD run with the ImageNet schedule, after 7 and 13 epochs (Table 2)
  picture    the table as a picture: paired differences to SGD

Every run goes to `out`; the parts share runs (the figures are drawn from the table's seed-0 runs, the
schedule experiments continue its seed-0 SGD run, Table 2's shape continues every SGD run). Each part
copies the records of its finished runs (config, metrics, summary; never checkpoints) into `results`:
the table's and Table 2's under RESULTS/cifar10, the seed-0 runs behind the figures and the schedule
experiments under RESULTS/seed0; it writes its tables and figures there with the data behind each, and
prints its wall time, also appended to RESULTS/wall_times.csv.

    python -m swa_bench.miniature --part figures --data data/cifar10-jpg
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from swa_bench.errors import UserError
from swa_bench.shipped import find_config

SEEDS = (0, 1, 2)
MORE_SEEDS = (3, 4)  # of SGD and the 0.5 x rule only: the table's headline difference gets a standard error
RATIO_05 = "mini/preresnet20_ratio0.5"
FROM_SGD = "mini-experiments/preresnet20_from_sgd"
CONSTANT_LR = "mini-experiments/preresnet20_constant_lr"
FINETUNE = "mini-experiments/preresnet20_finetune"
# Seed 0 is evaluated every 10 epochs instead of 30: the curves need the points, the other seeds do not
# pay for them. An evaluation changes no training step (every pass is seeded by seed and epoch), so the
# seed's numbers are those it has at 30; the key is set on every seed-0 run, so that its continuations
# match their SGD run, and tables do not label it a setting.
EVERY_10 = ("schedule.eval_every=10",)
# The §4.3 sweep beside the config's own setting (constant 0.05): named variants set on the command line.
SCHEDULES = {
    "from96-constant-0.1": ("swa.lr=0.1",),
    "from96-constant-0.01": ("swa.lr=0.01",),
    "from96-cyclical-0.1-0.001": ("swa.lr_schedule=cyclical", "swa.alpha1=0.1", "swa.alpha2=0.001"),
    "from96-cyclical-0.05-0.0005": ("swa.lr_schedule=cyclical", "swa.alpha1=0.05", "swa.alpha2=0.0005"),
}
# Landscape sizes, measured to fit the CPU budget: every point is a BN pass over the 1,000 training
# images, their train loss, and the test error on a fixed 2,000 of the 10,000 test images (test_images).
RAYS = dict(rays=5, points=11, max_distance=40.0)
LINE = dict(t_range=(-1.0, 2.0), points=25)
PLANE = dict(grid=11, margin=0.25)
ZOOM_FROM = 90


@dataclass(frozen=True)
class Miniature:
    data: str = "data/cifar10-jpg"
    out: str = "runs/mini"
    results: str = "results/cifar10-jpg-mini"
    jobs: int = 2
    say: object = print
    # For small rehearsals (tests): every run's budget scale and --set items, the landscapes' test subset.
    budget_scale: float | None = None
    sets: tuple[str, ...] = ()
    test_images: int | None = 2000

    @property
    def seed0_results(self) -> Path:
        return Path(self.results) / "seed0"

    @property
    def figures(self) -> Path:
        return Path(self.results) / "figures"


# --------------------------------------------------------------------------------------------------
# Runs


def _spec(m: Miniature, config: str, method: str, seed: int, sets: tuple[str, ...] = ()):
    from swa_bench.grid.plan import plan_run

    sets = (EVERY_10 if seed == 0 else ()) + sets
    return plan_run(find_config(config), method, seed, m.out, m.sets + sets, data_path=m.data, budget_scale=m.budget_scale)


def _train(m: Miniature, part: str, specs: list) -> int:
    """Train what is not finished, `jobs` at a time, each continuation after its SGD run; returns how
    many runs were started (0: the part's runs were all finished already)."""
    from swa_bench.grid.local import run_local
    from swa_bench.grid.plan import Plan
    from swa_bench.outcomes import NOT_FAILURES

    unique = list({s.run_dir: s for s in specs}.values())
    unique.sort(key=lambda s: s.after is not None)
    results = run_local(Plan(part, m.out, unique), jobs=m.jobs, say=lambda line: m.say(f"[{part}] {line}"))
    failed = [name for name, status in results.items() if status not in NOT_FAILURES]
    if failed:
        raise UserError(f"{part}: {len(failed)} run(s) did not finish: {', '.join(failed)}; run the part again to resume")
    return len(results)


def _export(m: Miniature, specs: list, to: Path) -> None:
    """Copy the records of the finished runs among `specs` to the same place under `to` as under `out`."""
    from swa_bench.records import RunRecords

    for records in (RunRecords(s.run_dir) for s in specs):
        if not records.summary_path.exists():
            continue
        target = to / records.dir.relative_to(m.out)
        target.mkdir(parents=True, exist_ok=True)
        for source in (records.config_path, records.metrics_path, records.summary_path):
            shutil.copyfile(source, target / source.name)


def _write_tables(runs_dir: Path, to: Path) -> None:
    from swa_bench.records import atomic_write_text
    from swa_bench.tables import table_text

    atomic_write_text(to / "table.md", table_text(runs_dir, "markdown", None, detail=True))
    atomic_write_text(to / "table.csv", table_text(runs_dir, "csv", None))


def _copy_figure(source: Path, to: Path, name: str) -> None:
    """A landscape's figure and its data, without the point caches beside it (runs/ keeps those)."""
    to.mkdir(parents=True, exist_ok=True)
    for path in [*source.glob(f"{name}.*"), *source.glob(f"{name}_*.csv")]:  # rays_width.csv too
        if ".points." not in path.name:
            shutil.copyfile(path, to / path.name)


# --------------------------------------------------------------------------------------------------
# What each part runs


def _table_specs(m: Miniature) -> list:
    """Table 1: every run of configs/mini (seeds 0-2), and seeds 3 and 4 of SGD and the 0.5 x rule."""
    from swa_bench.grid.plan import build_plan
    from swa_bench.shipped import CONFIG_DIR

    plan = build_plan("mini", CONFIG_DIR, m.out, seeds=len(SEEDS), sets=m.sets, data_path=m.data,
                      budget_scale=m.budget_scale)
    return ([_spec(m, s.config, s.method, s.seed) for s in plan.runs]  # seed 0 evaluated every 10 epochs
            + [_spec(m, RATIO_05, method, seed) for seed in MORE_SEEDS for method in ("sgd", "swa")])


def _finetune_specs(m: Miniature) -> list:
    seeds = SEEDS + MORE_SEEDS
    return [_spec(m, RATIO_05, "sgd", seed) for seed in seeds] + [_spec(m, FINETUNE, "swa", seed) for seed in seeds]


def _figure_specs(m: Miniature) -> list:
    return [_spec(m, RATIO_05, method, 0) for method in ("sgd", "swa", "fge")]


def _schedule_specs(m: Miniature) -> list:
    """The seed-0 SGD run, the fixed rate from scratch, and SWA from the SGD run at epoch 96 at the
    config's rate and each of SCHEDULES."""
    variants = [_spec(m, FROM_SGD, "swa", 0)]
    variants += [_spec(m, FROM_SGD, "swa", 0, (f"swa.variant={name}",) + sets) for name, sets in SCHEDULES.items()]
    return [_spec(m, RATIO_05, "sgd", 0), _spec(m, CONSTANT_LR, "swa", 0), *variants]


def _export_table(m: Miniature) -> None:
    """The records of the table's and Table 2's finished runs, and the table made from them."""
    _export(m, _table_specs(m) + _finetune_specs(m), Path(m.results))
    _write_tables(Path(m.results) / "cifar10", Path(m.results))


# --------------------------------------------------------------------------------------------------
# Parts


def part_table(m: Miniature) -> int:
    trained = _train(m, "table", _table_specs(m))
    table_outputs(m)
    return trained


def table_outputs(m: Miniature) -> None:
    """The table part's records, tables and curves in the results folder, from the runs in `out`."""
    from swa_bench.figures.curves import plot_curves

    _export_table(m)
    row = Path(m.results) / "cifar10" / "preresnet20"
    table_runs = [d for method in ("sgd", "swa-lr-ratio-0.1", "swa-lr-ratio-0.5", "ema", "fge")
                  for d in sorted((row / method).glob("seed*"))]
    plot_curves(table_runs, m.figures, "curves")


def part_figures(m: Miniature) -> int:
    from swa_bench.figures import landscape
    from swa_bench.figures.curves import plot_curves

    specs = _figure_specs(m)
    trained = _train(m, "figures", specs)
    _export(m, specs, m.seed0_results)
    sgd, swa, fge = (Path(s.run_dir) for s in specs)
    plot_curves([sgd, swa, fge], m.figures, "curves_seed0", zoom_from=_zoom(m))
    work = Path(m.out) / "figures"  # point caches stay with the runs
    steps = [
        ("rays", lambda: landscape.rays(swa, sgd, work, **RAYS, test_images=m.test_images)),
        ("line", lambda: landscape.line(swa, sgd, work, **LINE, test_images=m.test_images)),
        ("plane", lambda: landscape.plane(_fge_samples(fge), work, **PLANE, mean_of=_fge_members(fge),
                                                  test_images=m.test_images)),
    ]
    for k, (name, draw) in enumerate(steps, 1):
        started = time.monotonic()
        m.say(f"[figures] landscape {name} ({k}/{len(steps)})")
        draw()
        _copy_figure(work, m.figures, name)
        m.say(f"[figures] landscape {name}: {time.monotonic() - started:.0f} s")
    return trained


def _zoom(m: Miniature) -> int:
    """The epoch the late panels start at, under the rehearsals' budget scale."""
    from swa_bench.protocol import scale_epochs

    return scale_epochs(ZOOM_FROM, m.budget_scale or 1.0)


def _fge_members(fge_run: Path) -> list[Path]:
    members = sorted((fge_run / "checkpoints").glob("fge_member*.pt"), key=lambda p: int(p.stem.removeprefix("fge_member")))
    if len(members) < 3:
        raise UserError(f"{fge_run}: {len(members)} collected models kept; the plane needs three")
    return members


def _fge_samples(fge_run: Path) -> list[Path]:
    """The first, middle and last model the FGE run collected."""
    members = _fge_members(fge_run)
    return [members[0], members[len(members) // 2], members[-1]]


def part_schedules(m: Miniature) -> int:
    from swa_bench.figures.curves import plot_curves

    specs = _schedule_specs(m)
    trained = _train(m, "schedules", specs)
    _export(m, specs, m.seed0_results)
    sgd, constant, *variants = (Path(s.run_dir) for s in specs)
    plot_curves([sgd, *variants], m.figures, "schedules", zoom_from=_zoom(m),
                series=("sgd", "swa"))  # the averages against SGD; each run's own iterate is in the CSV of its records
    plot_curves([sgd, constant], m.figures, "constant_lr", zoom_from=_zoom(m))
    _write_tables(m.seed0_results, m.seed0_results)
    return trained


def part_finetune(m: Miniature) -> int:
    trained = _train(m, "finetune", _finetune_specs(m))
    _export_table(m)
    return trained


def part_picture(m: Miniature) -> int:
    from swa_bench.figures.table_picture import plot_table

    plot_table(Path(m.results) / "cifar10", m.figures)
    return 0


PARTS = {"table": part_table, "figures": part_figures, "schedules": part_schedules, "finetune": part_finetune,
         "picture": part_picture}


def run_parts(m: Miniature, parts: list[str]) -> dict[str, float]:
    """Each part in turn, its wall time printed and appended to RESULTS/wall_times.csv with the number
    of runs it trained (a second pass trains none: its time is that of the tables and figures)."""
    import torch

    times = {}
    for part in parts:
        started, when = time.monotonic(), datetime.now(timezone.utc).isoformat(timespec="seconds")
        m.say(f"[{part}] started")
        trained = PARTS[part](m)
        times[part] = seconds = time.monotonic() - started
        m.say(f"[{part}] done in {seconds / 60:.1f} min ({trained} runs trained)")
        log = Path(m.results) / "wall_times.csv"
        new = not log.exists()
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["part", "started_utc", "seconds", "runs_trained", "cpu_cores", "runs_at_once", "torch"])
            writer.writerow([part, when, f"{seconds:.0f}", trained, os.cpu_count(), m.jobs, torch.__version__])
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swa_bench.miniature", description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", action="append", choices=list(PARTS), help="Run this part (repeatable; default: all).")
    parser.add_argument("--data", default=Miniature.data, help="CIFAR-10: the JPEG ImageFolder copy or torchvision's files.")
    parser.add_argument("--download", action="store_true", help="Fetch torchvision's CIFAR-10 into --data first.")
    parser.add_argument("--out", default=Miniature.out)
    parser.add_argument("--results", default=Miniature.results)
    parser.add_argument("--jobs", type=int, default=Miniature.jobs, help="Runs at a time (they share the cores).")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs: at least 1, got {args.jobs}")
    m = Miniature(args.data, args.out, args.results, args.jobs)
    if not args.download and not Path(m.data).is_dir():  # otherwise every run would fail on it, one by one
        print(f"error: --data {m.data}: no such folder; extract the JPEG copy of CIFAR-10 there "
              f"(make reproduce-mini does), or pass --download for torchvision's files", file=sys.stderr)
        return 2
    try:
        if args.download:
            fetch_cifar10(m.data)
        times = run_parts(m, args.part or list(PARTS))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("wall times: " + ", ".join(f"{p} {s / 60:.1f} min" for p, s in times.items()))
    return 0


def fetch_cifar10(root: str) -> None:
    """torchvision's CIFAR-10 files into `root`, once, before any run reads them."""
    from swa_bench.config import load_config
    from swa_bench.data.datasets import build_datasets

    cfg = load_config(find_config(RATIO_05), {"data.path": root, "data.download": True, "data.format": "torchvision"})
    build_datasets(cfg.data)


if __name__ == "__main__":
    sys.exit(main())
