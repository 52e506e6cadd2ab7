"""A table's runs: every row config of the table, its methods, every seed, in an order where a run
that continues an SGD run (an SWA continuation, FGE) comes after it. The plan is written to OUT/grid.json so
that `status` can show runs that have not started yet."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from swa_bench.config import DATASETS, ConfigError, load_config, parse_set_option
from swa_bench.identity import run_dir_of, run_name
from swa_bench.methods import get_method, methods
from swa_bench.methods.sgd import BASELINE
from swa_bench.protocol import resolve_protocol
from swa_bench.records import atomic_write_text

TABLES = {
    "cifar10": ["cifar10"],
    "cifar100": ["cifar100"],
    "imagenet": ["imagenet"],
    "all": ["cifar10", "cifar100", "imagenet"],
    "demo": ["demo"],
    "mini": ["mini"],
}
MAX_SEEDS = 1000  # a plan lists every run; more seeds than this is a typo, not a study
# The tables of this project's own (not the paper's) also run the methods beyond the paper (EMA).
OWN_TABLES = {"demo", "mini"}


@dataclass(frozen=True)
class RunSpec:
    config: str  # path of the row's YAML
    method: str
    seed: int
    out: str
    run_dir: str
    epochs: int
    train_images: int | None  # for time estimates; None when unknown before loading the data
    model: str
    after: str | None = None  # run_dir of the SGD run this one continues
    sets: tuple[str, ...] = ()  # --set items for every run of the grid
    data_path: str | None = None
    budget_scale: float | None = None
    device: str | None = None

    @property
    def name(self) -> str:
        return run_name(self.run_dir)

    def train_args(self) -> list[str]:
        """`swa-bench train` arguments: a list, never a shell string."""
        args = [
            "train",
            "--config",
            self.config,
            "--method",
            self.method,
            "--seed",
            str(self.seed),
            "--out",
            self.out,
            "--quiet",
        ]
        if self.data_path:
            args += ["--data-path", self.data_path]
        if self.budget_scale is not None:
            args += ["--budget-scale", repr(self.budget_scale)]
        if self.device:
            args += ["--device", self.device]
        for item in self.sets:
            args += ["--set", item]
        return args

    def command(self, processes: int = 1) -> list[str]:
        launcher = [sys.executable, "-m", "swa_bench"]
        if processes > 1:  # one run over several GPUs of a node
            launcher = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={processes}",
                "-m",
                "swa_bench",
            ]
        return launcher + self.train_args()


@dataclass
class Plan:
    table: str
    out: str
    runs: list[RunSpec]
    unplanned: list[dict] = field(default_factory=list)  # rows whose config could not be loaded

    def write(self) -> Path:
        path = Path(self.out) / "grid.json"
        atomic_write_text(
            path,
            json.dumps(
                {"table": self.table, "runs": [asdict(r) for r in self.runs], "unplanned": self.unplanned}, indent=1
            )
            + "\n",
        )
        return path


def row_configs(table: str, configs_dir: Path, rows: list[str] | None = None) -> list[Path]:
    if table not in TABLES:
        raise ConfigError(f"--table {table}: unknown (known: {', '.join(TABLES)})")
    found = [p for folder in TABLES[table] for p in sorted((configs_dir / folder).glob("*.yaml"))]
    if rows:
        unknown = sorted(set(rows) - {p.stem for p in found})
        if unknown:
            raise ConfigError(f"--rows: {', '.join(unknown)} not in {table} (rows: {', '.join(p.stem for p in found)})")
        found = [p for p in found if p.stem in rows]
    if not found:
        raise ConfigError(f"{configs_dir}: no configs for table {table}")
    return found


def build_plan(
    table: str,
    configs_dir: str | Path,
    out: str | Path,
    seeds: int = 3,
    rows: list[str] | None = None,
    sets: tuple[str, ...] = (),
    data_path: str | None = None,
    budget_scale: float | None = None,
    device: str | None = None,
) -> Plan:
    """Every run of `table`, SGD runs first so that continuations find theirs finished."""
    if not 1 <= seeds <= MAX_SEEDS:
        raise ConfigError(f"--seeds: must be between 1 and {MAX_SEEDS}, got {seeds}")
    overrides = _overrides(sets, data_path, budget_scale, device)
    runs, unplanned, planned = [], [], set()
    for config in row_configs(table, Path(configs_dir), rows):
        for method in _row_methods(config, table, overrides):
            for seed in range(seeds):
                try:
                    spec = plan_run(config, method, seed, out, sets, data_path, budget_scale, device)
                except ConfigError as e:
                    unplanned.append({"config": str(config), "method": method, "seed": seed, "error": str(e)})
                    continue
                if spec.run_dir in planned:  # an SGD run shared by the SWA variants of one row
                    continue
                planned.add(spec.run_dir)
                runs.append(spec)
    runs.sort(key=lambda r: r.after is not None)  # continuations last (stable: otherwise in table order)
    return Plan(table, str(out), runs, unplanned)


def _overrides(sets, data_path, budget_scale, device) -> dict:
    overrides = dict(parse_set_option(item) for item in sets)
    if data_path:
        overrides["data.path"] = data_path
    if budget_scale is not None:
        overrides["run.budget_scale"] = budget_scale
    if device:
        overrides["run.device"] = device
    return overrides


def plan_run(
    config: str | Path,
    method: str,
    seed: int,
    out: str | Path,
    sets: tuple[str, ...] = (),
    data_path: str | None = None,
    budget_scale: float | None = None,
    device: str | None = None,
) -> RunSpec:
    """One run of a config (ConfigError if it does not load), waiting for the SGD run it continues."""
    cfg = load_config(
        config, {**_overrides(sets, data_path, budget_scale, device), "run.method": method, "run.seed": seed}
    )
    after = str(run_dir_of(out, cfg, BASELINE)) if get_method(method).continues_sgd(cfg) else None
    proto = resolve_protocol(cfg)
    return RunSpec(
        config=str(config),
        method=method,
        seed=seed,
        run_dir=str(run_dir_of(out, cfg)),
        epochs=proto.epochs - proto.first_epoch,
        train_images=cfg.data.train_subset,
        model=cfg.model.name,
        after=after,
        out=str(out),
        sets=tuple(sets),
        data_path=data_path,
        budget_scale=budget_scale,
        device=device,
    )


def _row_methods(config: Path, table: str, overrides: dict) -> tuple[str, ...]:
    """The methods a row's runs are made with: the paper's (and in this project's own tables, the others),
    each where the row has its settings (FGE: rows with fge settings), in table order."""
    candidates = [m for m in methods() if not m.beyond_paper or table in OWN_TABLES]
    try:
        cfg = load_config(config, {**overrides, "run.method": BASELINE})
    except ConfigError:  # each method's load reports the problem
        return tuple(m.name for m in candidates if not m.optional)
    return tuple(m.name for m in candidates if m.available(cfg))


# --------------------------------------------------------------------------------------------------
# Time estimates for --dry-run, from `swa-bench bench` figures where they exist


def bench_rates(bench_dirs: list[Path]) -> dict[str, float]:
    """model -> training images/s from the newest bench JSON of each model."""
    rates: dict[str, tuple[float, float]] = {}
    for folder in bench_dirs:
        for path in folder.glob("*.json"):
            try:
                figures = json.loads(path.read_text())
                model, rate = figures["settings"]["model"], float(figures["train_img_s"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            mtime = path.stat().st_mtime
            if model not in rates or mtime > rates[model][1]:
                rates[model] = (rate, mtime)
    return {model: rate for model, (rate, _) in rates.items()}


def estimate_seconds(spec: RunSpec, rates: dict[str, float]) -> float | None:
    """Training time only (evaluation and BN passes add roughly a tenth on CIFAR)."""
    if spec.model not in rates:
        return None
    dataset = Path(spec.run_dir).parts[-4]
    images = spec.train_images or (DATASETS[dataset].train_images if dataset in DATASETS else None)
    return spec.epochs * images / rates[spec.model] if images else None


def render_plan(plan: Plan, rates: dict[str, float]) -> str:
    """The --dry-run listing: every run, its epochs, what it waits for, its estimated training time."""
    from tabulate import tabulate

    from swa_bench.timefmt import format_duration

    rows, total, known = [], 0.0, True
    for spec in plan.runs:
        seconds = estimate_seconds(spec, rates)
        known &= seconds is not None
        total += seconds or 0.0
        rows.append([spec.name, spec.epochs, "its SGD run" if spec.after else "", format_duration(seconds)])
    basis = "from `swa-bench bench` figures" if rates else "run `swa-bench bench --model M` for estimates"
    scope = "" if known else " for the runs with figures"
    return (
        tabulate(rows, headers=["run", "epochs", "waits for", "est. training time"], disable_numparse=True)
        + f"\n\n{len(plan.runs)} runs, {sum(s.epochs for s in plan.runs)} epochs; estimated "
        f"{format_duration(total)} of training on the benchmarked device{scope} ({basis})\n"
    )
