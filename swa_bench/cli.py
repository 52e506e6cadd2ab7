"""The `swa-bench` command line: parses arguments and calls library functions, nothing more."""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import warnings
from pathlib import Path

import click

from swa_bench.methods import method_names, methods
from swa_bench.outcomes import (
    EXIT_DIVERGED,
    EXIT_FAILED,
    EXIT_FINISHED,
    EXIT_INTERRUPTED,
    EXIT_PREEMPTED,
    EXIT_USER_ERROR,
)
from swa_bench.shipped import CONFIG_DIR, find_config


class _Registered(click.Choice):
    """Choices read from the method registry when the command line is parsed, so that a method
    registered after this module was imported is one."""

    def __init__(self, names):
        self._names = names
        super().__init__(())

    @property
    def choices(self) -> tuple:
        return tuple(self._names())

    @choices.setter
    def choices(self, value) -> None:  # click's __init__ sets it; the registry is the source
        pass


def _user_errors(fn):
    """Bad input (config, data, run directory, device) -> one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from swa_bench.errors import UserError  # the base of every such error; imports nothing heavy

        try:
            return fn(*args, **kwargs)
        except UserError as e:
            click.echo(f"error: {_one_line(e)}", err=True)
            sys.exit(getattr(e, "exit_status", EXIT_USER_ERROR))

    return wrapper


@contextlib.contextmanager
def _warnings_as_lines():
    """The library's warnings (a skipped file, a damaged checkpoint) as "warning: ..." lines on stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = lambda message, *args, **kwargs: click.echo(f"warning: {message}", err=True)
        yield


def _one_line(error: Exception) -> str:
    """The error's own line. One raised in a DataLoader worker comes back wrapped with the worker's
    traceback, ending in "<module>.<Class>: <message>": keep that message."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    if len(lines) <= 1:
        return str(error).strip()
    last = lines[-1]
    prefix = f"{type(error).__module__}.{type(error).__name__}: "
    return last[len(prefix) :] if last.startswith(prefix) else last


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="swa-bench")
def main():
    """Reproduce Stochastic Weight Averaging (Izmailov et al., UAI 2018).

    \b
    Example:
      swa-bench list
      swa-bench train --config configs/cifar10/vgg16.yaml --method swa --data-path data/cifar10
      swa-bench table runs
    """


@main.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    help="YAML config of one row: a path, or a shipped config's name, e.g. cifar10/vgg16 "
    "(`swa-bench list` shows them).",
)
@click.option(
    "--method",
    type=_Registered(method_names),
    help="Required: SGD baseline, SWA, an EMA of the SGD run's weights (beyond the paper), FGE "
    "(an ensemble continuing the SGD run, rows with fge settings), or another registered method "
    "(swa_bench/methods); sets run.method.",
)
@click.option("--seed", type=int, help="Run seed (sets run.seed).")
@click.option(
    "--data-path",
    type=click.Path(file_okay=False),
    help="Dataset root: torchvision's CIFAR files, or an ImageFolder tree with train/ and test/.",
)
@click.option(
    "--download",
    is_flag=True,
    help="Download what is missing: CIFAR (torchvision) and pretrained weights (ImageNet rows).",
)
@click.option(
    "--weights",
    "weights_path",
    type=click.Path(dir_okay=False),
    help="A local copy of the pretrained weights file the config names (sets model.weights_path).",
)
@click.option(
    "--out",
    default="runs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Runs go to OUT/<dataset>/<model>/<method>/seed<k>/.",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where to train (sets run.device).")
@click.option(
    "--budget-scale",
    type=float,
    help="Multiply every epoch count (budget, swa_start, evaluation points), for quick runs.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override any config key, e.g. --set data.train_subset=5000 (repeatable).",
)
@click.option(
    "--log",
    "dashboards",
    multiple=True,
    type=click.Choice(["tensorboard", "wandb"]),
    help="Also send every metrics row to TensorBoard (<run>/tensorboard/) or Weights & Biases "
    "(sets log.to; repeatable).",
)
@click.option("--quiet", is_flag=True, help="No per-epoch lines or progress bars.")
@_user_errors
def train(
    config_path, method, seed, data_path, download, weights_path, out, device, budget_scale, sets, dashboards, quiet
):
    """Train one SGD, SWA, EMA or FGE run; re-running the same command resumes it.

    An SWA run reports the averaged model (BN recomputed) at 1, 1.25 and 1.5 budgets; an EMA run
    (beyond the paper) is the SGD run with an exponential average of its weights, reported at the
    end of the budget. An FGE run continues the finished SGD run of the same seed and --out from
    the state it kept at 0.8 B, collects a model every cycle and reports the ensemble of their
    predictions at 1 budget (train the SGD run first). A run that
    has finished is reported and not retrained. Where the config continues from the SGD run
    (swa.start_from: sgd_run, the PyramidNet and Shake-Shake rows), train the SGD run of the same
    seed into the same --out first; the SWA run starts from its final checkpoint. The ImageNet
    rows start from pretrained weights; their "SGD" run evaluates those weights.

    Under torchrun every process trains its share of each batch (DistributedDataParallel):
      torchrun --nproc_per_node=8 -m swa_bench train --config configs/imagenet/resnet50.yaml ...

    \b
    Example (a quick run on the JPEG copy of CIFAR-10, 5000 training images):
      swa-bench train --config configs/cifar10/vgg16.yaml --method swa \\
          --data-path data/cifar10-jpg --budget-scale 0.02 --set data.train_subset=5000
    """
    from swa_bench.config import ConfigError, load_config, parse_set_option
    from swa_bench.identity import run_dir_of
    from swa_bench.stopping import Preempted
    from swa_bench.training import train_run

    if method is None:  # checked here rather than by click, to say it in one line
        raise ConfigError("--method: missing; give sgd (the baseline), swa, ema (beyond the paper) or fge")

    flags = {
        "run.method": method,
        "run.seed": seed,
        "data.path": data_path,
        "data.download": True if download else None,
        "model.download": True if download else None,
        "model.weights_path": weights_path,
        "run.device": device,
        "run.budget_scale": budget_scale,
        "log.to": list(dashboards) or None,
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    overrides.update(parse_set_option(item) for item in sets)
    cfg = load_config(find_config(config_path), overrides)
    run_dir, sgd_run_dir = run_dir_of(out, cfg), run_dir_of(out, cfg, "sgd")
    try:
        with _warnings_as_lines():
            outcome = train_run(cfg, run_dir, overrides=overrides, progress=not quiet, sgd_run_dir=sgd_run_dir)
    except Preempted:
        sys.exit(EXIT_PREEMPTED)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: {run_dir} keeps its last checkpoint; run the same command to resume", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if outcome.status == "diverged":
        sys.exit(EXIT_DIVERGED)


@main.command()
@click.option(
    "--table",
    "table_name",
    required=True,
    type=click.Choice(["cifar10", "cifar100", "imagenet", "all", "demo", "mini"]),
    help="Which table's rows to run (all: the three tables of the paper; demo: the digits demo).",
)
@click.option("--seeds", type=int, default=3, show_default=True, help="Seeds 0..N-1 of every row and method.")
@click.option("--rows", help="Only these rows, by config name, comma-separated (e.g. vgg16,preresnet164).")
@click.option("--data-path", type=click.Path(file_okay=False), help="Dataset root for every run.")
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--budget-scale", type=float, help="Multiply every epoch count of every run (quick grids).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="run.device of every run.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a key in every run (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the plan (runs, epochs, estimated time) and run nothing.")
@click.option("--jobs", type=int, help="Runs at once (default: one per GPU slot, or 1 on CPU).")
@click.option("--jobs-per-gpu", type=int, default=1, show_default=True, help="Runs sharing one GPU (small models).")
@click.option(
    "--gpus-per-run",
    type=int,
    default=1,
    show_default=True,
    help="GPUs of one run (more than 1: torchrun on them, e.g. ImageNet).",
)
@click.option(
    "--launcher",
    type=click.Choice(["local", "slurm", "submitit-local"]),
    default="local",
    show_default=True,
    help="local: subprocesses here; slurm: job arrays through submitit; submitit-local: submitit's local executor.",
)
@click.option("--partition", help="SLURM partition.")
@click.option(
    "--time-min",
    type=int,
    default=24 * 60,
    show_default=True,
    help="SLURM time limit per task, minutes (a run that needs more is requeued and resumes).",
)
@click.option("--cpus-per-run", type=int, default=10, show_default=True, help="SLURM CPUs per task.")
@click.option("--mem-gb", type=int, help="SLURM memory per task.")
@click.option("--array-parallelism", type=int, default=64, show_default=True, help="SLURM tasks of an array at once.")
@click.option(
    "--configs", "configs_dir", type=click.Path(file_okay=False), help="Config folder (default: the shipped configs)."
)
@_user_errors
def grid(
    table_name,
    seeds,
    rows,
    data_path,
    out,
    budget_scale,
    device,
    sets,
    dry_run,
    jobs,
    jobs_per_gpu,
    gpus_per_run,
    launcher,
    partition,
    time_min,
    cpus_per_run,
    mem_gb,
    array_parallelism,
    configs_dir,
):
    """Run a whole table: rows x methods x seeds, SWA continuations after their SGD runs.

    Finished runs are skipped and partial ones resume, so re-running the same command after a crash
    or preemption completes the table. A failed run is recorded (see `swa-bench status`) and the
    others go on. Ends with the table (local launcher).

    \b
    Examples:
      swa-bench grid --table cifar10 --data-path data/cifar --dry-run
      swa-bench grid --table cifar100 --data-path data/cifar --jobs-per-gpu 2
      swa-bench grid --table all --launcher slurm --partition gpu --data-path /data/cifar
    """
    from swa_bench.config import ConfigError
    from swa_bench.grid.launch import LaunchOptions, launch
    from swa_bench.grid.plan import bench_rates, build_plan, render_plan
    from swa_bench.tables import table_text

    for flag, value in (("--jobs", jobs), ("--jobs-per-gpu", jobs_per_gpu), ("--gpus-per-run", gpus_per_run)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag}: must be at least 1, got {value}")
    plan = build_plan(
        table_name,
        configs_dir or CONFIG_DIR,
        out,
        seeds,
        rows.split(",") if rows else None,
        tuple(sets),
        data_path,
        budget_scale,
        device,
    )
    for row in plan.unplanned:
        click.echo(f"error: {row['error']} ({row['method']}, seed {row['seed']}: not run)", err=True)
    if dry_run:
        click.echo(render_plan(plan, bench_rates([Path(out) / "bench", Path("runs") / "bench"])), nl=False)
        return
    plan.write()
    options = LaunchOptions(
        jobs, jobs_per_gpu, gpus_per_run, partition, time_min, cpus_per_run, mem_gb, array_parallelism
    )
    ended_well = launch(plan, launcher, options, say=lambda line: click.echo(line, err=True))
    if ended_well is None:  # submitted to SLURM
        click.echo(f"follow with: swa-bench status {out}; when done: swa-bench table {out}", err=True)
        return
    with _warnings_as_lines():
        text = table_text(out)
    click.echo(text, nl=False)
    sys.exit(EXIT_FINISHED if ended_well else EXIT_FAILED)


@main.command()
@click.argument("runs_dir", default="runs", type=click.Path(file_okay=False))
@_user_errors
def status(runs_dir):
    """Where every run under RUNS_DIR stands: done, diverged, damaged, running, stopped, failed or
    pending, with epochs done and an ETA. Safe to run while a grid is going.

    \b
    Example:
      swa-bench status runs
    """
    from swa_bench.grid.status import grid_states, render_states

    if not Path(runs_dir).is_dir():
        click.echo(f"error: {runs_dir}: no such runs directory", err=True)
        sys.exit(EXIT_USER_ERROR)
    with _warnings_as_lines():
        states = grid_states(runs_dir)
    if not states:
        click.echo(f"{runs_dir}: no runs yet", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(render_states(states), nl=False)


@main.command()
@click.argument("runs_dir", default="runs", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["markdown", "latex", "csv"]), default="markdown", show_default=True)
@click.option(
    "--paper-dir",
    type=click.Path(file_okay=False),
    help="Folder of the paper's CSVs (default: the shipped ones, results/paper in a checkout).",
)
@click.option(
    "--detail",
    is_flag=True,
    help="Each cell also gives the test loss (NLL), the paired difference from SGD (same seeds, with "
    "the standard error of its mean) and, "
    "for SGD, the final training accuracy.",
)
@_user_errors
def table(runs_dir, fmt, paper_dir, detail):
    """Print the paper's tables from the finished runs under RUNS_DIR.

    Each cell is mean ± std over seeds (n = number of seeds), then the paper's value and the
    difference. Runs that differ from the paper's protocol (other data, budget scale, subset,
    changed keys) get rows of their own, labelled in the "setting" column.

    \b
    Example:
      swa-bench table runs --format latex
    """
    from swa_bench.tables import find_failures, table_text

    if not Path(runs_dir).is_dir():
        click.echo(f"error: {runs_dir}: no such runs directory", err=True)
        sys.exit(EXIT_USER_ERROR)
    with _warnings_as_lines():
        text = table_text(runs_dir, fmt, paper_dir, detail)
    for failure in find_failures(runs_dir):
        click.echo(f"warning: {failure['run']}: failed, not in the table: {failure['error']}", err=True)
    if not text:
        click.echo(f"{runs_dir}: no finished runs yet", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(text, nl=False)


@main.command()
@click.option("--model", required=True, help="A model with a config under configs/<dataset>/, e.g. vgg16.")
@click.option("--dataset", type=click.Choice(["cifar10", "cifar100"]), default="cifar10", show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--steps", type=int, default=20, show_default=True, help="Timed steps per measurement.")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed steps before each measurement.")
@click.option(
    "--rounds",
    type=int,
    default=3,
    show_default=True,
    help="Interleaved rounds of every measurement; the best is reported.",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16"]), default="fp32", show_default=True)
@click.option(
    "--compile",
    "compile_mode",
    type=click.Choice(["none", "default", "reduce-overhead", "max-autotune"]),
    default="none",
    show_default=True,
)
@click.option("--channels-last", is_flag=True, help="Use the channels-last memory format.")
@click.option(
    "--workers", type=int, default=4, show_default=True, help="DataLoader workers of the reference-style path."
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    help="Where to write the figures (default runs/bench/<model>-<device>.json).",
)
@click.option(
    "--epoch-seconds",
    type=float,
    help="Also project the time outside the steps to epochs whose steps take this long (e.g. a GPU target).",
)
@_user_errors
def bench(
    model,
    dataset,
    batch_size,
    steps,
    warmup,
    rounds,
    device,
    precision,
    compile_mode,
    channels_last,
    workers,
    json_path,
    epoch_seconds,
):
    """Measure training, evaluation, BN-recomputation and averaging throughput against a
    reference-style loop (per-image PIL transforms in a DataLoader, eager, `.item()` per step),
    same process, model and batch; the time a checkpoint holds the loop (background writer against a
    direct write); and the share of an SWA run's step time spent outside the steps at the paper's
    evaluation cadence. Prints a table with the speed-ups and writes JSON.

    The reference-style loop runs at the same precision as swa-bench's path (the pipeline's
    speed-up) and, when --precision is not fp32, also in strict fp32 (the speed-up with precision).

    \b
    Example:
      swa-bench bench --model preresnet164 --steps 10 --device cuda --compile reduce-overhead
    """
    from swa_bench.bench import BenchSettings, render_bench, run_bench, write_bench
    from swa_bench.config import ConfigError

    if not (CONFIG_DIR / dataset / f"{model}.yaml").exists():
        raise ConfigError(f"--model {model}: no config {CONFIG_DIR / dataset / (model + '.yaml')}")
    if min(batch_size, steps, rounds) < 1 or warmup < 0 or workers < 0:
        raise ConfigError("--batch-size, --steps and --rounds must be positive, --warmup and --workers non-negative")
    if epoch_seconds is not None and not epoch_seconds > 0:
        raise ConfigError(f"--epoch-seconds: must be positive, got {epoch_seconds}")
    settings = BenchSettings(
        model,
        dataset,
        batch_size,
        steps,
        warmup,
        rounds,
        device,
        precision,
        compile_mode,
        channels_last,
        workers,
        epoch_seconds=epoch_seconds,
    )
    results = run_bench(settings, CONFIG_DIR)
    path = Path(json_path or f"runs/bench/{model}-{results['device'].split()[0]}.json")
    write_bench(results, path)
    click.echo(render_bench(results) + f"figures written to {path}")


@main.group()
def plot():
    """Figures from run records (no computation)."""


@plot.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--out", default="figures", show_default=True, type=click.Path(file_okay=False))
@click.option("--name", default="curves", show_default=True, help="File name of the figure (several in one --out).")
@click.option(
    "--zoom-from",
    type=click.IntRange(0, None),
    metavar="EPOCH",
    help="Add a panel of the epochs from EPOCH on, where the averaged models separate.",
)
@click.option(
    "--series",
    "series",
    multiple=True,
    type=_Registered(lambda: [s.key for m in methods() for s in m.series]),
    help="Draw only these curves (repeatable; default all): swa_sgd is an SWA run's own iterate, "
    "fge_member each model FGE collected.",
)
@_user_errors
def curves(run_dirs, out, name, zoom_from, series):
    """Test accuracy and learning rate against epoch for SGD, SWA, EMA and FGE runs (seeds: mean and
    min-max band; the averaged model's evaluations marked). Writes OUT/NAME.png, .pdf and .csv.

    \b
    Example:
      swa-bench plot curves runs/cifar100/preresnet164/*/seed* --zoom-from 120
    """
    from swa_bench.figures.curves import plot_curves

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise click.BadParameter(f"a file name of letters, digits, '.', '_', '-', got {name!r}", param_hint="'--name'")
    for path in _figure_call(plot_curves, list(run_dirs), out, name, zoom_from, *([tuple(series)] if series else [])):
        click.echo(str(path))


@plot.command(name="table")
@click.argument("runs_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--out", default="figures", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--paper-dir", type=click.Path(file_okay=False), help="Folder of the paper's CSVs (default: the shipped ones)."
)
@_user_errors
def table_figure(runs_dir, out, paper_dir):
    """The table as a picture: for each row and averaged column (FGE, SWA, EMA), its difference to SGD
    over the same seeds (mean ± std) beside the paper's difference (hollow diamond), one panel per
    dataset. Writes OUT/table_vs_sgd.png, .pdf and .csv.

    \b
    Example:
      swa-bench plot table results/cifar10-jpg-mini --out figures
    """
    from swa_bench.figures.table_picture import plot_table

    with _warnings_as_lines():
        for path in _figure_call(plot_table, runs_dir, out, paper_dir):
            click.echo(str(path))


@main.group()
def landscape():
    """The loss landscape around solutions (docs/PROTOCOL.md §6). Each point recomputes BN; points are cached
    beside the figure, so an interrupted command resumes."""


class _Finite(click.ParamType):
    """A finite float within [low, high]: NaN and infinities would make every point NaN or unbounded."""

    name = "number"

    def __init__(self, low: float = -1e6, high: float = 1e6):
        self.low, self.high = low, high

    def convert(self, value, param, ctx):
        import math

        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            self.fail(f"must be a finite number from {self.low:g} to {self.high:g}, got {value}", param, ctx)
        return number


# Bounds on what one command computes: each point is a BN pass and two evaluations over the data.
_MAX_IMAGES = 10_000_000
_LANDSCAPE_OPTIONS = [
    click.option("--out", default="figures", show_default=True, type=click.Path(file_okay=False)),
    click.option("--data-path", type=click.Path(file_okay=False), help="Where the run's dataset is now."),
    click.option("--device", type=click.Choice(["auto", "cpu", "cuda"])),
    click.option(
        "--train-images",
        type=click.IntRange(1, _MAX_IMAGES),
        help="Evaluate BN and train loss on a fixed subset of N images.",
    ),
    click.option(
        "--test-images",
        type=click.IntRange(1, _MAX_IMAGES),
        help="Evaluate test error on a fixed subset of N images (quick figures).",
    ),
    click.option("--quiet", is_flag=True, help="No progress bar."),
]


def _landscape_options(fn):
    for option in reversed(_LANDSCAPE_OPTIONS):
        fn = option(fn)
    return fn


def _options(data_path, device, train_images, test_images, quiet) -> dict:
    return dict(
        data_path=data_path, device=device, train_images=train_images, test_images=test_images, progress=not quiet
    )


@landscape.command()
@click.option(
    "--swa", "swa_run", required=True, type=click.Path(file_okay=False, exists=True), help="SWA run directory."
)
@click.option(
    "--sgd", "sgd_run", required=True, type=click.Path(file_okay=False, exists=True), help="SGD run directory."
)
@click.option("--rays", "count", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--max-distance", type=_Finite(1e-9, 1e6), default=50.0, show_default=True)
@click.option("--points", type=click.IntRange(2, 1001), default=21, show_default=True, help="Points per ray.")
@click.option(
    "--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True, help="Seed of the random directions."
)
@_landscape_options
@_user_errors
def rays(swa_run, sgd_run, count, max_distance, points, seed, out, data_path, device, train_images, test_images, quiet):
    """Optima width: test error and L2-regularised train loss along random unit directions from the
    SWA and the SGD solution, against distance. Writes OUT/rays.png, .pdf, .csv.

    \b
    Example:
      swa-bench landscape rays --swa runs/cifar10/vgg16/swa/seed0 --sgd runs/cifar10/vgg16/sgd/seed0
    """
    from swa_bench.figures import landscape as ls

    for path in _figure_call(
        ls.rays,
        swa_run,
        sgd_run,
        out,
        count,
        max_distance,
        points,
        seed,
        **_options(data_path, device, train_images, test_images, quiet),
    ):
        click.echo(str(path))


@landscape.command()
@click.option("--swa", "swa_run", required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--sgd", "sgd_run", required=True, type=click.Path(file_okay=False, exists=True))
@click.option(
    "--range",
    "t_range",
    type=(_Finite(-1000, 1000), _Finite(-1000, 1000)),
    default=(-1.0, 2.0),
    show_default=True,
    help="t of w(t) = t w_SGD + (1 - t) w_SWA.",
)
@click.option("--points", type=click.IntRange(2, 10_001), default=31, show_default=True)
@_landscape_options
@_user_errors
def line(swa_run, sgd_run, t_range, points, out, data_path, device, train_images, test_images, quiet):
    """Both metrics along the line through the SWA and SGD solutions, against signed distance from
    the SWA solution. Writes OUT/line.png, .pdf, .csv.

    \b
    Example:
      swa-bench landscape line --swa runs/cifar10/vgg16/swa/seed0 --sgd runs/cifar10/vgg16/sgd/seed0
    """
    from swa_bench.figures import landscape as ls

    if not t_range[0] < t_range[1]:
        raise click.BadParameter(
            f"the first t must be below the second, got {t_range[0]:g} {t_range[1]:g}", param_hint="'--range'"
        )
    for path in _figure_call(
        ls.line, swa_run, sgd_run, out, t_range, points, **_options(data_path, device, train_images, test_images, quiet)
    ):
        click.echo(str(path))


@landscape.command()
@click.argument("checkpoints", nargs=3, type=click.Path(dir_okay=False, exists=True))
@click.option("--grid", "grid_points", type=click.IntRange(2, 201), default=21, show_default=True)
@click.option("--margin", type=_Finite(0, 10), default=0.2, show_default=True)
@click.option(
    "--extra",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="More weight files to project onto the plane and mark (repeatable).",
)
@click.option(
    "--mean-of",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Mark the average of these weight files, e.g. every model of an FGE run (repeatable).",
)
@_landscape_options
@_user_errors
def plane(checkpoints, grid_points, margin, extra, mean_of, out, data_path, device, train_images, test_images, quiet):
    """Contours of test error and train loss on the plane through three weight files (e.g. an SGD
    and an SWA solution from the same start, and a third point), the points marked. Writes
    OUT/plane.png, .pdf, .json.

    \b
    Example:
      swa-bench landscape plane runs/c10/vgg16/sgd/seed0/checkpoints/sgd.pt \\
          runs/c10/vgg16/swa/seed0/checkpoints/swa_1.pt runs/c10/vgg16/swa/seed0/checkpoints/swa_1.5.pt
    """
    from swa_bench.figures import landscape as ls

    for path in _figure_call(
        ls.plane,
        list(checkpoints),
        out,
        grid_points,
        margin,
        list(extra),
        list(mean_of),
        **_options(data_path, device, train_images, test_images, quiet),
    ):
        click.echo(str(path))


def _figure_call(fn, *args, **kwargs):
    """Missing runs or weights, or matplotlib, as one line."""
    from swa_bench.config import ConfigError

    try:
        return fn(*args, **kwargs)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise ConfigError(str(e)) from None


@main.command(name="list")
@_user_errors
def list_():
    """Show the shipped configs and the registered models.

    \b
    Example:
      swa-bench list
    """
    from swa_bench.shipped import render_catalog

    click.echo(render_catalog(), nl=False)
