"""An experiment on real data, described by a file (swa_bench/experiments/<name>.yaml) and run in parts
that run alone, in any order, and resume: every run and every landscape point is kept, finished work
is skipped, an interrupted run continues. `make reproduce-mini` and `make reproduce-cpu` run one each.

The parts an experiment file may describe (in this order):

  table      Table 1: the rows' SGD, SWA, FGE and EMA runs over seeds; records, tables, curves
  figures    one seed's runs: curves with a late zoom, optima width along random rays, the SGD-SWA
             line, the plane through three FGE models with their average
  schedules  SWA continuing one seed's SGD run at constant and cyclical rates (the paper's §4.3); a
             fixed rate from scratch (§4.4)
  finetune   Table 2's shape: SWA from each finished SGD run with the ImageNet rows' schedule
  picture    the table as a picture: paired differences to SGD

Every run goes to `out`; the parts share runs (the schedule experiments continue the table's SGD run,
Table 2's shape continues every SGD run). Each part copies the records of its finished runs (config,
metrics, summary; never checkpoints) into `results`: the table's and Table 2's under RESULTS/<dataset>,
the one-seed runs of the figures and schedules under RESULTS/seed<k>; it writes its tables and figures
there with the data behind each, and prints its wall time, also appended to RESULTS/wall_times.csv.

    python -m swa_bench.experiment cpu --part table --data data/cifar10-jpg
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from swa_bench.errors import UserError
from swa_bench.methods import method_names
from swa_bench.shipped import PACKAGE, find_config

EXPERIMENT_DIR = PACKAGE / "experiments"
PARTS = ("table", "figures", "schedules", "finetune", "picture")


class ExperimentError(UserError, ValueError):
    pass


# --------------------------------------------------------------------------------------------------
# The file: what an experiment is, validated once at load


@dataclass(frozen=True)
class Runs:
    """Every (config, method, seed) of some configs, methods and seeds."""

    configs: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class Figures:
    config: str  # the row whose SGD, SWA and FGE runs of `seed` are drawn
    rays: dict
    line: dict
    plane: dict
    test_images: int | None  # of the landscapes' test evaluations (None: all)


@dataclass(frozen=True)
class Schedules:
    sgd: str  # the row whose SGD run the variants continue
    from_sgd: str  # the continuation's config: its own variant, and each of `variants` set over it
    variants: dict  # name -> --set items
    fixed_rate: str | None = None  # a constant rate from scratch (§4.4), against the same SGD run


@dataclass(frozen=True)
class Design:
    name: str
    title: str
    out: str
    results: str
    seed: int  # the seed of the one-seed parts (figures, schedules)
    seed_sets: tuple[str, ...]  # --set items of every run of that seed (a denser evaluation)
    zoom_from: int  # the epoch the curves' late panels start at
    table: tuple[Runs, ...] = ()
    curves: tuple[str, ...] = ()  # method folders (sgd, swa-<variant>, ...) drawn in curves.png, in order
    seed_curves: bool = False  # the table part also draws curves_seed<k>.png with the late zoom
    figures: Figures | None = None
    schedules: Schedules | None = None
    finetune: tuple[Runs, ...] = ()
    picture: bool = False
    parts: tuple[str, ...] = field(default=())

    @property
    def seed_folder(self) -> str:
        return f"seed{self.seed}"


def experiment_names() -> list[str]:
    return sorted(p.stem for p in EXPERIMENT_DIR.glob("*.yaml"))


def load_design(name_or_path: str) -> Design:
    """An experiment by shipped name (mini, cpu) or path; one line naming the file and key if it is wrong."""
    import yaml

    path = Path(name_or_path)
    if not path.is_file():
        path = EXPERIMENT_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ExperimentError(
            f"{name_or_path}: no such experiment file, and no shipped experiment has that name "
            f"(shipped: {', '.join(experiment_names())})"
        )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ExperimentError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return _design(raw, path)


def _design(raw, path: Path) -> Design:
    def fail(key: str, what: str):
        raise ExperimentError(f"{path}: {key}: {what}")

    def known(section: dict, keys: set, where: str) -> None:
        if not isinstance(section, dict):
            fail(where, f"must be a mapping, got {type(section).__name__}")
        unknown = sorted(set(section) - keys)
        if unknown:
            fail(f"{where}.{unknown[0]}" if where else unknown[0], f"unknown key (known: {', '.join(sorted(keys))})")

    def config(value, key: str) -> str:
        if not isinstance(value, str):
            fail(key, f"must be a config name, got {value!r}")
        try:
            find_config(value)
        except UserError as e:
            fail(key, str(e))
        return value

    def ints(value, key: str) -> tuple[int, ...]:
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        ):
            fail(key, f"must be a non-empty list of seeds (integers >= 0), got {value!r}")
        return tuple(value)

    def strings(value, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail(key, f"must be a list of strings, got {value!r}")
        return tuple(value)

    def runs(value, key: str) -> tuple[Runs, ...]:
        if not isinstance(value, list) or not value:
            fail(key, "must be a non-empty list of {configs, methods, seeds}")
        out = []
        for i, group in enumerate(value):
            where = f"{key}[{i}]"
            known(group, {"configs", "methods", "seeds"}, where)
            configs = tuple(config(c, f"{where}.configs") for c in strings(group.get("configs"), f"{where}.configs"))
            methods = strings(group.get("methods"), f"{where}.methods")
            bad = [m for m in methods if m not in method_names()]
            if bad or not methods or not configs:
                fail(
                    f"{where}.methods" if bad else where,
                    f"needs configs and methods among {', '.join(method_names())}"
                    + (f"; got {bad[0]!r}" if bad else ""),
                )
            out.append(Runs(configs, methods, ints(group.get("seeds"), f"{where}.seeds")))
        return tuple(out)

    known(raw, {"title", "out", "results", "seed", "seed_sets", "zoom_from", *PARTS}, "")
    for key in ("title", "out", "results"):
        if not isinstance(raw.get(key), str):
            fail(key, "missing or not a string")
    seed = ints([raw.get("seed", 0)], "seed")[0]
    zoom = raw.get("zoom_from")
    if not isinstance(zoom, int) or isinstance(zoom, bool) or zoom < 1:
        fail("zoom_from", f"must be a positive epoch, got {zoom!r}")
    parts, kwargs = [], {}
    if "table" in raw:
        table = raw["table"]
        known(table, {"runs", "curves", "seed_curves"}, "table")
        kwargs.update(
            table=runs(table.get("runs"), "table.runs"),
            curves=strings(table.get("curves", []), "table.curves"),
            seed_curves=bool(table.get("seed_curves", False)),
        )
        parts.append("table")
    if "figures" in raw:
        f = raw["figures"]
        known(f, {"config", "rays", "line", "plane", "test_images"}, "figures")
        for key in ("rays", "line", "plane"):
            if not isinstance(f.get(key), dict):
                fail(f"figures.{key}", "missing or not a mapping of the landscape's sizes")
        kwargs["figures"] = Figures(
            config(f.get("config"), "figures.config"),
            f["rays"],
            {**f["line"], "t_range": tuple(f["line"].get("t_range", (-1.0, 2.0)))},
            f["plane"],
            f.get("test_images"),
        )
        parts.append("figures")
    if "schedules" in raw:
        s = raw["schedules"]
        known(s, {"sgd", "from_sgd", "variants", "fixed_rate"}, "schedules")
        variants = s.get("variants") or {}
        if not isinstance(variants, dict):
            fail("schedules.variants", "must map a variant's name to its --set items")
        kwargs["schedules"] = Schedules(
            config(s.get("sgd"), "schedules.sgd"),
            config(s.get("from_sgd"), "schedules.from_sgd"),
            {name: strings(sets, f"schedules.variants.{name}") for name, sets in variants.items()},
            config(s["fixed_rate"], "schedules.fixed_rate") if s.get("fixed_rate") is not None else None,
        )
        parts.append("schedules")
    if "finetune" in raw:
        known(raw["finetune"], {"runs"}, "finetune")
        kwargs["finetune"] = runs(raw["finetune"].get("runs"), "finetune.runs")
        parts.append("finetune")
    if raw.get("picture"):
        kwargs["picture"] = True
        parts.append("picture")
    return Design(
        name=path.stem,
        title=raw["title"],
        out=raw["out"],
        results=raw["results"],
        seed=seed,
        seed_sets=strings(raw.get("seed_sets", []), "seed_sets"),
        zoom_from=zoom,
        parts=tuple(parts),
        **kwargs,
    )


# --------------------------------------------------------------------------------------------------
# One execution of an experiment: where its data, runs and results go


@dataclass(frozen=True)
class Experiment:
    design: Design
    data: str
    out: str
    results: str
    jobs: int = 2
    say: object = print
    # For small rehearsals (tests): every run's budget scale and --set items, the landscapes' test subset.
    budget_scale: float | None = None
    sets: tuple[str, ...] = ()
    test_images: object = "design"  # "design": the file's figures.test_images

    @property
    def seed_results(self) -> Path:
        return Path(self.results) / self.design.seed_folder

    @property
    def figures(self) -> Path:
        return Path(self.results) / "figures"

    def landscape_test_images(self) -> int | None:
        return self.design.figures.test_images if self.test_images == "design" else self.test_images


def _spec(x: Experiment, config: str, method: str, seed: int, sets: tuple[str, ...] = ()):
    from swa_bench.grid.plan import plan_run

    # The one-seed parts' seed is evaluated more often for the curves; the key is set on every run
    # of that seed, so its continuations match their SGD run.
    sets = (x.design.seed_sets if seed == x.design.seed else ()) + sets
    return plan_run(
        find_config(config), method, seed, x.out, x.sets + sets, data_path=x.data, budget_scale=x.budget_scale
    )


def _specs(x: Experiment, groups: tuple[Runs, ...]) -> list:
    """Seed by seed, each config's methods in the file's order."""
    return [
        _spec(x, c, method, seed)
        for g in groups
        for seed in g.seeds
        for c in g.configs
        for method in g.methods
        if _has_method(c, method)
    ]


def _has_method(config: str, method: str) -> bool:
    """Whether the row has the method (FGE: only rows with fge settings; the others refuse it)."""
    from swa_bench.config import load_config
    from swa_bench.methods import get_method

    return get_method(method).available(load_config(find_config(config)))


def _train(x: Experiment, part: str, specs: list) -> int:
    """Train what is not finished, `jobs` at a time, each continuation after its SGD run; returns how
    many runs were started (0: the part's runs were all finished already)."""
    from swa_bench.grid.local import run_local
    from swa_bench.grid.plan import Plan
    from swa_bench.outcomes import NOT_FAILURES

    unique = list({s.run_dir: s for s in specs}.values())
    unique.sort(key=lambda s: s.after is not None)
    results = run_local(Plan(part, x.out, unique), jobs=x.jobs, say=lambda line: x.say(f"[{part}] {line}"))
    failed = [name for name, status in results.items() if status not in NOT_FAILURES]
    if failed:
        cause = _common_cause(failed, {s.name: s for s in unique}, results)
        if cause is not None:
            raise UserError(
                f"{part}: {len(failed)} run(s) did not finish, each for the same cause: {cause}; running "
                f"the part again will not help until that is fixed (the runs' logs are in {x.out}/logs)"
            )
        raise UserError(
            f"{part}: {len(failed)} run(s) did not finish: {', '.join(failed)}; run the part again to resume"
        )
    return len(results)


def _common_cause(failed: list[str], specs: dict, results: dict) -> str | None:
    """The one error line every failed run of a part ended with (failure.json), when it is a cause
    that running again cannot remove: shared by several runs, or a refusal (exit 2). None if the
    lines differ or one is unknown. A continuation blocked because its SGD run failed (status -1)
    failed for that run's cause, so it is left out of the comparison."""
    from swa_bench.records import RunRecords

    causes, statuses = set(), set()
    for name in failed:
        if results[name] == -1:
            continue  # blocked by its SGD run's failure
        failure = RunRecords(specs[name].run_dir).read_failure() if name in specs else None
        if not failure or not failure.get("error") or failure["error"] == "(no output)":
            return None
        causes.add(failure["error"].removeprefix("error: ").strip())
        statuses.add(failure.get("exit_status"))
    own = len(failed) - sum(results[name] == -1 for name in failed)
    if len(causes) != 1 or not (own > 1 or statuses == {2}):
        return None
    return causes.pop()


def _export(x: Experiment, specs: list, to: Path) -> None:
    """Copy the records of the finished runs among `specs` to the same place under `to` as under `out`."""
    from swa_bench.records import RunRecords

    for records in (RunRecords(s.run_dir) for s in specs):
        if not records.summary_path.exists():
            continue
        target = to / records.dir.relative_to(x.out)
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


def _zoom(x: Experiment) -> int:
    """The epoch the late panels start at, under the rehearsals' budget scale."""
    from swa_bench.protocol import scale_epochs

    return scale_epochs(x.design.zoom_from, x.budget_scale or 1.0)


def _dataset_dir(x: Experiment, specs: list) -> Path:
    """RESULTS/<dataset>: where the exported records of the table's runs lie."""
    return Path(x.results) / Path(specs[0].run_dir).relative_to(x.out).parts[0]


# --------------------------------------------------------------------------------------------------
# Parts


def part_table(x: Experiment) -> int:
    trained = _train(x, "table", _specs(x, x.design.table))
    table_outputs(x)
    return trained


def table_outputs(x: Experiment) -> None:
    """The table part's records, tables and curves in the results folder, from the runs in `out`."""
    from swa_bench.figures.curves import plot_curves

    _export_table(x)
    specs = _specs(x, x.design.table)
    row = _dataset_dir(x, specs) / Path(specs[0].run_dir).relative_to(x.out).parts[1]
    folders = x.design.curves or sorted({Path(s.run_dir).parent.name for s in specs})
    table_runs = [d for method in folders for d in sorted((row / method).glob("seed*"))]
    plot_curves(table_runs, x.figures, "curves", zoom_from=_zoom(x))  # with the late zoom, where averages separate
    if x.design.seed_curves:  # the seed's runs, as exported (folder names may carry a suffix: seed0-scale0.5)
        exported = {
            _dataset_dir(x, specs).parent / Path(s.run_dir).relative_to(x.out) for s in specs if s.seed == x.design.seed
        }
        seed_runs = [d for d in table_runs if d in exported]
        plot_curves(seed_runs, x.figures, f"curves_{x.design.seed_folder}", zoom_from=_zoom(x))


def _export_table(x: Experiment) -> None:
    """The records of the table's and Table 2's finished runs, and the table made from them."""
    specs = _specs(x, x.design.table) + _specs(x, x.design.finetune)
    _export(x, specs, Path(x.results))
    _write_tables(_dataset_dir(x, specs), Path(x.results))


def part_figures(x: Experiment) -> int:
    from swa_bench.figures import landscape
    from swa_bench.figures.curves import plot_curves

    f, seed = x.design.figures, x.design.seed
    specs = [_spec(x, f.config, method, seed) for method in ("sgd", "swa", "fge")]
    trained = _train(x, "figures", specs)
    _export(x, specs, x.seed_results)
    sgd, swa, fge = (Path(s.run_dir) for s in specs)
    plot_curves([sgd, swa, fge], x.figures, f"curves_{x.design.seed_folder}", zoom_from=_zoom(x))
    work = Path(x.out) / "figures"  # point caches stay with the runs
    test_images = x.landscape_test_images()
    steps = [
        ("rays", lambda: landscape.rays(swa, sgd, work, **f.rays, test_images=test_images)),
        ("line", lambda: landscape.line(swa, sgd, work, **f.line, test_images=test_images)),
        (
            "plane",
            lambda: landscape.plane(
                _fge_samples(fge), work, **f.plane, mean_of=_fge_members(fge), test_images=test_images
            ),
        ),
    ]
    for k, (name, draw) in enumerate(steps, 1):
        started = time.monotonic()
        x.say(f"[figures] landscape {name} ({k}/{len(steps)})")
        draw()
        _copy_figure(work, x.figures, name)
        x.say(f"[figures] landscape {name}: {time.monotonic() - started:.0f} s")
    return trained


def _fge_members(fge_run: Path) -> list[Path]:
    """The collected models' weights files, as the run's summary lists them (a missing one refused)."""
    from swa_bench.figures.weights import fge_member_files

    members = fge_member_files(fge_run)
    if len(members) < 3:
        raise UserError(f"{fge_run}: {len(members)} collected models kept; the plane needs three")
    return members


def _fge_samples(fge_run: Path) -> list[Path]:
    """The first, middle and last model the FGE run collected."""
    members = _fge_members(fge_run)
    return [members[0], members[len(members) // 2], members[-1]]


def _schedule_specs(x: Experiment) -> list:
    """The SGD run, the fixed rate from scratch (if any), and SWA from the SGD run's kept state at the
    continuation config's own rate and each variant's."""
    s, seed = x.design.schedules, x.design.seed
    variants = [_spec(x, s.from_sgd, "swa", seed)]
    variants += [_spec(x, s.from_sgd, "swa", seed, (f"swa.variant={name}", *sets)) for name, sets in s.variants.items()]
    fixed = [_spec(x, s.fixed_rate, "swa", seed)] if s.fixed_rate else []
    return [_spec(x, s.sgd, "sgd", seed), *fixed, *variants]


def part_schedules(x: Experiment) -> int:
    from swa_bench.figures.curves import plot_curves

    specs = _schedule_specs(x)
    trained = _train(x, "schedules", specs)
    _export(x, specs, x.seed_results)
    runs = [Path(s.run_dir) for s in specs]
    sgd, variants = runs[0], runs[2:] if x.design.schedules.fixed_rate else runs[1:]
    plot_curves(
        [sgd, *variants], x.figures, "schedules", zoom_from=_zoom(x), series=("sgd", "swa"), by_rates=True
    )  # the averages against SGD; each run's own iterate is in the CSV of its records
    if x.design.schedules.fixed_rate:
        plot_curves([sgd, runs[1]], x.figures, "constant_lr", zoom_from=_zoom(x))
    _write_tables(x.seed_results, x.seed_results)
    return trained


def part_finetune(x: Experiment) -> int:
    trained = _train(x, "finetune", _specs(x, x.design.finetune))
    _export_table(x)
    return trained


def part_picture(x: Experiment) -> int:
    from swa_bench.figures.table_picture import plot_table

    plot_table(_dataset_dir(x, _specs(x, x.design.table)), x.figures)
    return 0


PART_FUNCTIONS = {
    "table": part_table,
    "figures": part_figures,
    "schedules": part_schedules,
    "finetune": part_finetune,
    "picture": part_picture,
}


def run_parts(x: Experiment, parts: list[str]) -> dict[str, float]:
    """Each part in turn, its wall time printed and appended to RESULTS/wall_times.csv with the number
    of runs it trained (a second pass trains none: its time is that of the tables and figures)."""
    import torch

    missing = [p for p in parts if p not in x.design.parts]
    if missing:
        raise UserError(
            f"--part {missing[0]}: the {x.design.name} experiment has no such part "
            f"(its parts: {', '.join(x.design.parts)})"
        )
    times = {}
    for part in parts:
        started, when = time.monotonic(), datetime.now(timezone.utc).isoformat(timespec="seconds")
        x.say(f"[{part}] started")
        trained = PART_FUNCTIONS[part](x)
        times[part] = seconds = time.monotonic() - started
        x.say(f"[{part}] done in {seconds / 60:.1f} min ({trained} runs trained)")
        log = Path(x.results) / "wall_times.csv"
        new = not log.exists()
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(
                    ["part", "started_utc", "seconds", "runs_trained", "cpu_cores", "runs_at_once", "torch"]
                )
            writer.writerow([part, when, f"{seconds:.0f}", trained, os.cpu_count(), x.jobs, torch.__version__])
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swa_bench.experiment", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", help=f"A shipped experiment ({', '.join(experiment_names())}) or a file.")
    parser.add_argument(
        "--part", action="append", choices=list(PARTS), help="Run this part (repeatable; default: all)."
    )
    parser.add_argument(
        "--data", default="data/cifar10-jpg", help="CIFAR-10: the JPEG ImageFolder copy or torchvision's files."
    )
    parser.add_argument("--download", action="store_true", help="Fetch torchvision's CIFAR-10 into --data first.")
    parser.add_argument("--out", help="Where the runs go (default: the experiment file's).")
    parser.add_argument("--results", help="Where records, tables and figures go (default: the experiment file's).")
    parser.add_argument("--jobs", type=int, default=2, help="Runs at a time (they share the cores).")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs: at least 1, got {args.jobs}")
    try:
        design = load_design(args.experiment)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    x = Experiment(design, args.data, args.out or design.out, args.results or design.results, args.jobs)
    if not args.download and not Path(x.data).is_dir():  # otherwise every run would fail on it, one by one
        print(
            f"error: --data {x.data}: no such folder; extract the JPEG copy of CIFAR-10 there, "
            f"or pass --download for torchvision's files",
            file=sys.stderr,
        )
        return 2
    try:
        if args.download:
            fetch_cifar10(x.data)
        times = run_parts(x, args.part or list(design.parts))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("wall times: " + ", ".join(f"{p} {s / 60:.1f} min" for p, s in times.items()))
    return 0


def fetch_cifar10(root: str) -> None:
    """torchvision's CIFAR-10 files into `root`, once, before any run reads them."""
    from swa_bench.config import load_config
    from swa_bench.data.datasets import build_datasets

    cfg = load_config(
        find_config("mini/preresnet20_ratio0.5"),
        {"data.path": root, "data.download": True, "data.format": "torchvision"},
    )
    build_datasets(cfg.data)


if __name__ == "__main__":
    sys.exit(main())
