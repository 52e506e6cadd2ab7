"""The training loop of docs/PROTOCOL.md §2 and §4: SGD or SWA, one run, resumable, on one process or many.

Randomness is re-derived at the start of every epoch from (seed, epoch): the data order and each
image's augmentation seed (see data/loaders.py), the global torch RNG (dropout, shake coefficients)
and Python's and NumPy's. An epoch's data and noise therefore do not depend on what ran before it in
this process, so a run resumed from the checkpoint after epoch k repeats epochs k+1.. exactly; no
RNG state needs saving.

Under torchrun every process runs this same code on its share of each pass (DDP); the main process
alone writes the run's records.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from swa_bench.averaging import WeightAverage, has_batchnorm, recompute_bn
from swa_bench.checkpointing import CheckpointWriter
from swa_bench.config import Config, ConfigError
from swa_bench.continuation import load_start_point
from swa_bench.dashboards import Dashboards
from swa_bench.data import build_datasets, make_loader, resolve_loader_kind
from swa_bench.distributed import World, init_world
from swa_bench.errors import UserError
from swa_bench.execution import Execution
from swa_bench.models import create_model
from swa_bench.models.registry import check_input_size
from swa_bench.models.pretrained import load_pretrained
from swa_bench.protocol import Protocol, averaged_prefix, resolve_protocol
from swa_bench.provenance import environment, process_seconds
from swa_bench.records import RunRecords
from swa_bench.stopping import Preempted, StopSignals
from swa_bench.timefmt import format_duration

# Independent random streams within an epoch.
_STREAM_TRAIN, _STREAM_BN = 0, 1


class DeviceError(UserError, RuntimeError):
    pass


def resolve_device(name: str, world: World = World()) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("run.device: cuda was asked for, but torch sees no CUDA device (use --device cpu or auto)")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", world.local_rank)  # one device per process under torchrun


def seed_epoch(seed: int, epoch: int, stream: int, generator: torch.Generator, rank: int = 0) -> None:
    """Seed `generator` (data order and augmentation, the same in every process) and the global RNGs
    (dropout and the like, different in every process) from (seed, epoch, stream)."""
    state = np.random.SeedSequence([seed, epoch, stream]).generate_state(2)
    value = int(state[0]) << 32 | int(state[1])
    generator.manual_seed(value)
    if rank:
        state = np.random.SeedSequence([seed, epoch, stream, rank]).generate_state(2)
        value = int(state[0]) << 32 | int(state[1])
    torch.manual_seed(value)  # also seeds every CUDA device
    random.seed(value)
    np.random.seed(int(state[0]))


def resolved_config(cfg: Config, overrides: dict | None = None) -> dict:
    """What config.yaml holds: the validated config, the protocol it implies, and the overrides
    (CLI flags and --set) that produced it from the file."""
    return {
        "config": cfg.to_dict(),
        "protocol": resolve_protocol(cfg).to_dict(),
        "overrides": dict(overrides or {}),
    }


# --------------------------------------------------------------------------------------------------
# One pass of training, one pass of evaluation


class _Tally:
    """Loss and accuracy sums kept on the device and read once at the end (reading them every step
    would sync the device every step), summed over processes."""

    def __init__(self, device, sums: tuple[float, float, float] = (0.0, 0.0, 0.0)):
        self.loss, self.correct, self.seen = (torch.tensor(v, device=device, dtype=torch.float64) for v in sums)

    def add(self, loss_sum, logits, targets) -> None:
        self.loss += loss_sum
        self.correct += (logits.argmax(1) == targets).sum()
        self.seen += targets.size(0)

    def reduce(self, world: World) -> tuple[float, float, float]:
        """The sums over every process."""
        world.all_reduce_sum_([self.loss, self.correct, self.seen])
        return self.loss.item(), self.correct.item(), self.seen.item()

    def means(self, world: World) -> tuple[float, float]:
        loss, correct, seen = self.reduce(world)
        return loss / max(seen, 1.0), 100.0 * correct / max(seen, 1.0)


def train_one_epoch(model, loader, optimizer, execution: Execution, bar, lr_at_step, *, tally: _Tally | None = None,
                    first_step: int = 0, stop=lambda: False, after_step=lambda step: None) -> tuple[_Tally, int]:
    """Steps over `loader`, numbered from `first_step` (a resumed epoch); `model` may be the compiled
    or DDP form of the module being trained. `lr_at_step(step)` gives each step's rate, so
    per-iteration schedules need nothing else. After each step `after_step(number of steps taken)`
    runs (the EMA's update), then `stop()` may end the pass early.
    Returns the tally and the number of the step after the last one taken."""
    model.train()
    tally = tally or _Tally(execution.device)
    step = first_step
    for inputs, targets in execution.batches(loader):
        lr = lr_at_step(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with execution.autocast():
            logits = model(inputs)
            loss = F.cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        tally.add(loss.detach() * targets.size(0), logits, targets)
        step += 1
        after_step(step)
        bar.update(1)
        if stop():
            break
    return tally, step


@torch.no_grad()
def evaluate(model, loader, execution: Execution, world: World = World()) -> dict:
    model.eval()
    tally = _Tally(execution.device)
    for inputs, targets in execution.batches(loader):
        with execution.autocast():
            logits = model(inputs)
        tally.add(F.cross_entropy(logits.float(), targets, reduction="sum"), logits, targets)
    loss, acc = tally.means(world)
    return {"loss": loss, "acc": acc}


# --------------------------------------------------------------------------------------------------
# A whole run


@dataclass
class RunOutcome:
    run_dir: Path
    summary: dict | None  # None in the processes other than the main one
    status: str  # "trained", "resumed", "already finished", "diverged"


def train_run(
    cfg: Config,
    run_dir: str | Path,
    overrides: dict | None = None,
    progress: bool = True,
    sgd_run_dir: str | Path | None = None,
    world: World | None = None,
) -> RunOutcome:
    """Train (or resume, or report) the run of `cfg` in `run_dir`. An SWA run with
    `swa.start_from: sgd_run` starts from the finished SGD run in `sgd_run_dir`. `world`: the
    processes sharing the run (default: what torchrun's environment says, else this one).

    Raises Preempted after checkpointing when SIGTERM or SIGUSR1 arrives; the run directory is
    locked against a second `train` meanwhile."""
    world = world or init_world(cfg.run.device)
    records = RunRecords(run_dir)
    fresh = not records.dir.exists()
    name = "/".join(Path(run_dir).parts[-4:])
    with records.lock() if world.is_main else contextlib.nullcontext():
        try:
            # Only the main process logs; the others' dashboards stay closed.
            with StopSignals() as signals, CheckpointWriter(records) as writer, \
                    Dashboards(cfg.log, records.dir, name) as dashboards:
                return _train(cfg, records, overrides, progress and world.is_main, sgd_run_dir, world, signals,
                              writer, dashboards)
        except BaseException:
            # A start that fails before any epoch (bad data or model options, no GPU, Ctrl-C while
            # loading) leaves no half-made directory for `status` to list and the corrected command to meet.
            if world.is_main and fresh:
                records.remove_if_unstarted()
            raise


def _train(cfg: Config, records: RunRecords, overrides, progress: bool, sgd_run_dir, world: World,
           signals: StopSignals, writer: CheckpointWriter, dashboards: Dashboards) -> RunOutcome:
    say = _say if world.is_main else (lambda line: None)
    proto = resolve_protocol(cfg)
    if world.is_main:
        records.claim(resolved_config(cfg, overrides))
        records.clean_partial_writes()
    world.barrier()  # the directory is claimed (or refused) before anyone reads it
    if records.is_finished():
        say(f"{records.dir}: already finished; not retrained (delete summary.json to re-run)")
        return RunOutcome(records.dir, records.read_summary(), "already finished")

    device = resolve_device(cfg.run.device, world)
    execution = Execution.from_config(cfg.run, device)
    execution.configure_backends()
    if cfg.optim.batch_size % world.size:
        raise ConfigError(f"optim.batch_size: {cfg.optim.batch_size} does not split over {world.size} processes")
    batch = cfg.optim.batch_size // world.size  # the config's batch is the global one
    data = build_datasets(cfg.data, progress=progress)
    for split, size in zip(("training", "test"), data.input_sizes or ()):
        try:
            check_input_size(cfg.model.name, split, size)
        except ValueError as e:
            raise ConfigError(f"{data.source['path']}: {e}") from None

    torch.manual_seed(cfg.run.seed)  # the initial weights depend on the seed only
    try:
        module = create_model(cfg.model.name, data.num_classes, **cfg.model.options)
    except ValueError as e:  # an option value the builder cannot build, e.g. a depth not 9n+2
        raise ConfigError(f"model.options: {e}") from None
    start_point = load_pretrained(module, cfg.model) if cfg.model.weights else None
    model = execution.place(module)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=cfg.optim.lr_init,
        momentum=cfg.optim.momentum,
        nesterov=cfg.optim.nesterov,
        weight_decay=cfg.optim.weight_decay,
    )
    # The averaged model: SWA's equal average, or the EMA's (beyond the paper); none for SGD.
    average = None if proto.method == "sgd" else WeightAverage(
        model, decay=cfg.ema.decay if proto.method == "ema" else None)

    start, partial = proto.first_epoch, None
    # column -> {"acc", "nll"} of each budget point passed: kept in the checkpoints, so the summary
    # does not depend on metrics.jsonl being intact.
    reported_results: dict[str, dict] = {}
    checkpoint = records.load_checkpoint("last", map_location=device)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if average is not None:
            average.load_state_dict(checkpoint["average"])
        start, start_point, partial = checkpoint["epoch"], checkpoint.get("start_point"), checkpoint.get("partial")
        reported_results = dict(checkpoint.get("reported") or {})
        if partial is not None and len(partial["rng"]) != world.size:
            raise ConfigError(f"{records.dir}: stopped within an epoch with {len(partial['rng'])} process(es); "
                              f"resume it with as many (its data were split that way)")
        within = f" and {partial['step']} steps" if partial else ""
        say(f"{records.dir}: resuming after epoch {start}{within} of {proto.epochs}")
    elif proto.start_from == "sgd_run":
        # The SGD run's weights and momentum buffers; the rates come from this run's schedule.
        initial, start_point = load_start_point(cfg, sgd_run_dir, map_location=device)
        model.load_state_dict(initial["model"])
        optimizer.load_state_dict(initial["optimizer"])
        say(f"{records.dir}: continuing from {start_point['run']} after its epoch {start_point['epoch']}")
    if checkpoint is None and proto.method == "swa" and cfg.swa.include_start:
        average.update(model)  # Algorithm 1: the average starts at the start point
    if world.is_main:
        # Rows past the checkpoint are re-run; an evaluation-only run redoes its one row.
        records.keep_metrics_through(start if proto.epochs else -1)
        dashboards.open(resumes_after=start if checkpoint is not None else None, config=cfg.to_dict())
        records.row_listeners.append(dashboards.log)

    # Training runs through DDP (gradients averaged over processes); everything else through the
    # plain modules, identical in every process. Compiled callables share the modules' parameters.
    train_module = model
    if world.distributed:
        from torch.nn.parallel import DistributedDataParallel

        train_module = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    run_train, run_model = execution.compiled(train_module), execution.compiled(model)
    run_average = execution.compiled(average.module) if average is not None else None

    kind = resolve_loader_kind(cfg.data.loader, device, data.in_memory)
    loader_args = dict(workers=cfg.data.workers, device=device, kind=kind, rank=world.rank, world=world.size)
    gen = torch.Generator(device=device if kind == "device" else torch.device("cpu"))
    # Training pads its pass so every process takes as many steps; BN recomputation and evaluation
    # see each image exactly once.
    train_loader = make_loader(data.train, batch, shuffle=True, generator=gen, pad=True, **loader_args)
    bn_loader = make_loader(data.train, batch, shuffle=True, generator=gen, **loader_args)
    test_loader = make_loader(data.test, batch, shuffle=False, **loader_args)
    bn_needed = average is not None and has_batchnorm(average.module)
    steps = len(train_loader)

    def stop_requested() -> bool:
        if not world.distributed:
            return signals.requested
        return world.sum_ints(int(signals.requested))[0] > 0  # every process stops after the same step

    def save(done_epochs: int, partial_state: dict | None = None, wait: bool = False) -> None:
        """Hand the state to the background writer; `wait` returns only once it is on disk."""
        writer.save({
            "epoch": done_epochs,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "average": average.state_dict() if average is not None else None,
            "start_point": start_point,
            "partial": partial_state,
            "reported": dict(reported_results),
        }, wait=wait or partial_state is not None)

    def checkpoint_due(done_epochs: int) -> bool:
        """The epoch cadence (run.checkpoint_every) or the wall-time one (run.checkpoint_minutes)."""
        every, minutes = cfg.run.checkpoint_every, cfg.run.checkpoint_minutes
        if every and done_epochs % every == 0:
            return True
        return minutes is not None and time.monotonic() - writer.last_saved >= 60 * minutes

    say(
        f"{records.dir}: {proto.method.upper()} {cfg.model.name} on {data.source['description']}, "
        f"{len(data.train)} train / {len(data.test)} test images, "
        + (f"{proto.epochs} epochs" if proto.epochs else "evaluation only")
        + f" on {device}{f' x {world.size} processes' if world.distributed else ''} "
        f"({kind} loader, {execution.precision}, compile {execution.compile})"
    )
    if proto.epochs == 0 and start == 0:  # a pretrained baseline: one evaluation is the whole run
        row = {"epoch": 0, **_prefixed("test_", evaluate(run_model, test_loader, execution, world)),
               **_skipped("test_skipped", test_loader, world), "report": list(proto.report_points), "seconds": 0.0}
        if world.is_main:
            records.append_metrics(row)

    # Everything before the first step (imports, data, model, resume), for docs/PERFORMANCE.md's start-up figures.
    startup_seconds = process_seconds()
    epoch_times: list[float] = []
    for epoch in range(start, proto.epochs):
        began = time.time()
        seed_epoch(cfg.run.seed, epoch, _STREAM_TRAIN, gen, world.rank)
        first_step, tally, spent = 0, None, 0.0
        if partial is not None:  # the epoch a signal interrupted: the same batches and noise from there on
            first_step, spent = partial["step"], partial["seconds"]
            train_loader.skip_batches(first_step)
            tally = _Tally(device, tuple(partial["tally"]) if world.is_main else (0.0, 0.0, 0.0))
            _set_rng_states(partial["rng"][world.rank])
            partial = None

        def lr_at_step(step: int, epoch=epoch) -> float:
            return proto.lr(epoch, step, steps)

        def after_step(step: int, epoch=epoch) -> None:
            if proto.method == "ema" and (epoch * steps + step) % cfg.ema.every == 0:
                average.update(model)

        row = {"epoch": epoch + 1, "lr": lr_at_step(0)}
        if proto.schedule.per_iteration:
            row["lr_end"] = lr_at_step(steps - 1)
        with tqdm(total=steps, initial=first_step, desc=f"epoch {epoch + 1}/{proto.epochs}", leave=False,
                  disable=None if progress else True, file=sys.stderr) as bar:
            tally, step = train_one_epoch(run_train, train_loader, optimizer, execution, bar, lr_at_step,
                                          tally=tally, first_step=first_step, stop=stop_requested,
                                          after_step=after_step)
        if step < steps:  # stopped by a signal: checkpoint the partial epoch and leave
            sums, rng = tally.reduce(world), world.all_gather(_rng_states())
            if world.is_main:
                save(epoch, {"step": step, "tally": sums, "rng": rng, "seconds": spent + time.time() - began})
            world.barrier()
            say(f"{records.dir}: stopped by {signals.signal_name} at step {step} of epoch {epoch + 1}; "
                f"checkpoint written, run the same command to resume")
            raise Preempted(signals.signal_name)
        row["train_loss"], row["train_acc"] = tally.means(world)
        row.update(_skipped("skipped_images", train_loader, world))
        if not math.isfinite(row["train_loss"]):
            row["seconds"] = spent + time.time() - began
            return _diverged(cfg, proto, records, data, device, start_point, world, row, say, writer)

        if average is not None and proto.collects_after(epoch):
            average.update(model)
        if proto.evaluates_after(epoch):
            row.update(_prefixed("test_", evaluate(run_model, test_loader, execution, world)))
            if average is not None and average.count:
                if bn_needed:
                    seed_epoch(cfg.run.seed, epoch, _STREAM_BN, gen, world.rank)
                    with execution.autocast():
                        recompute_bn(average.module, execution.batches(bn_loader), device, forward=run_average,
                                     world=world)
                row.update(_prefixed(f"{proto.method}_test_", evaluate(run_average, test_loader, execution, world)))
                row[f"{proto.method}_count"] = average.count
            row.update(_skipped("test_skipped", test_loader, world))
        reported = [col for col, at in proto.report_points.items() if at == epoch + 1]
        if reported:
            row["report"] = reported
        row["seconds"] = spent + time.time() - began
        epoch_times.append(row["seconds"])
        if not world.is_main:
            continue

        # Metrics, then the weights behind each table cell, then the checkpoint: on resume, rows
        # past the checkpoint are dropped and their epochs re-run (rewriting their weights files),
        # so no row is lost or doubled and no reported cell is left without its weights.
        records.append_metrics(row)
        done = epoch + 1
        for col in reported:
            reported_results[col] = {"acc": row[averaged_prefix(col) + "acc"], "nll": row[averaged_prefix(col) + "loss"]}
            weights = model if col == "sgd" else average.module  # the model the cell reports
            records.save_weights({"epoch": done, "column": col, "model": weights.state_dict()}, col)
        if reported or done == proto.epochs or checkpoint_due(done):
            save(done, wait=bool(reported) or done == proto.epochs)  # budget points and the end: on disk now
        if progress:
            say(_epoch_line(row, proto, epoch_times))

    if not world.is_main:
        return RunOutcome(records.dir, None, "trained")
    writer.wait()
    summary = build_summary(cfg, proto, records, data, device, start_point, world, reported_results)
    summary["startup_seconds"] = startup_seconds  # of the process that finished the run
    records.write_summary(summary)
    say(f"{records.dir}: finished: " + ", ".join(f"{k} {v:.2f}%" for k, v in summary["results"].items()))
    return RunOutcome(records.dir, summary, "resumed" if start > proto.first_epoch else "trained")


def _diverged(cfg, proto, records, data, device, start_point, world, row, say, writer) -> RunOutcome:
    """A non-finite training loss ends the run: the epoch's row and a summary saying so, no table cells."""
    if not world.is_main:
        return RunOutcome(records.dir, None, "diverged")
    writer.wait()
    records.append_metrics(row)
    summary = build_summary(cfg, proto, records, data, device, start_point, world)
    summary.update(status="diverged", diverged_epoch=row["epoch"], results={}, results_nll={},
                   columns=list(proto.report_points))
    records.write_summary(summary)
    say(f"{records.dir}: diverged: training loss {row['train_loss']} in epoch {row['epoch']}; "
        f"recorded in summary.json, no results")
    return RunOutcome(records.dir, summary, "diverged")


def _rng_states() -> dict:
    """This process's global RNG states: what dropout and similar noise draw from."""
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["cpu"])
    if states["cuda"]:
        torch.cuda.set_rng_state_all(states["cuda"])


def build_summary(cfg: Config, proto: Protocol, records: RunRecords, data, device, start_point=None,
                  world: World = World(), reported: dict | None = None) -> dict:
    """The run's summary. Its results are `reported` (the run's own state); metrics rows fill in only
    columns it lacks (checkpoints of earlier versions kept none)."""
    rows = records.read_metrics()
    results, results_nll = {}, {}
    for row in rows:
        for col in row.get("report", []):
            prefix = averaged_prefix(col)
            results[col], results_nll[col] = row[prefix + "acc"], row[prefix + "loss"]
    for col, value in (reported or {}).items():
        results[col], results_nll[col] = value["acc"], value["nll"]
    last = rows[-1]
    return {
        "status": "finished",
        "dataset": cfg.data.dataset,
        "model": cfg.model.name,
        "method": proto.method,
        "seed": cfg.run.seed,
        "budget": cfg.schedule.budget,
        "budget_scale": cfg.run.budget_scale,
        "epochs": proto.epochs,
        "first_epoch": proto.first_epoch,
        "start_point": start_point,
        "note": cfg.swa.note if proto.method == "swa" else None,
        "variant": cfg.swa.variant if proto.method == "swa" else None,
        "train_subset": cfg.data.train_subset,
        "train_images": len(data.train),
        "test_images": len(data.test),
        "data": data.source,
        "overrides": records.stored_config().get("overrides", {}),
        "results": results,
        "results_nll": results_nll,  # test loss (mean cross-entropy) of each reported model
        "final_test_acc": last.get("test_acc"),
        "final_train_acc": last.get("train_acc"),  # on the augmented images, during the last epoch
        "wall_seconds": sum(r["seconds"] for r in rows),
        "processes": world.size,
        "skipped_images": sum(r.get("skipped_images", 0) for r in rows),
        **environment(device),
    }


def _skipped(key: str, loader, world: World) -> dict:
    """{key: n} when the last pass of `loader` left out n unreadable images (all processes)."""
    (n,) = world.sum_ints(getattr(loader, "skipped", 0))
    return {key: n} if n else {}


def _prefixed(prefix: str, metrics: dict) -> dict:
    return {prefix + k: v for k, v in metrics.items()}


def _epoch_line(row: dict, proto: Protocol, epoch_times: list[float]) -> str:
    remaining = (proto.epochs - row["epoch"]) * sum(epoch_times) / len(epoch_times)
    parts = [
        f"epoch {row['epoch']:>4}/{proto.epochs}",
        f"lr {row['lr']:.4g}" + (f"->{row['lr_end']:.4g}" if "lr_end" in row else ""),
        f"train loss {row['train_loss']:.4f} acc {row['train_acc']:6.2f}",
    ]
    if "test_acc" in row:
        parts.append(f"test acc {row['test_acc']:6.2f}")
    if f"{proto.method}_test_acc" in row:  # the averaged model's (SWA, EMA)
        parts.append(f"{proto.method} acc {row[f'{proto.method}_test_acc']:6.2f} (n={row[f'{proto.method}_count']})")
    parts.append(f"{row['seconds']:.1f}s, eta {format_duration(remaining)}")
    return " | ".join(parts)


def _say(line: str) -> None:
    tqdm.write(line)
