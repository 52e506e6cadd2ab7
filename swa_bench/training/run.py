"""The training loop of docs/PROTOCOL.md §2, §4, §8 and §9: one run of a method (SGD, SWA, FGE, EMA or
another registered one), resumable, on one process or many.

Randomness is re-derived at the start of every epoch from (seed, epoch): the data order and each
image's augmentation seed (see data/loaders.py), the global torch RNG (dropout, shake coefficients)
and Python's and NumPy's. An epoch's data and noise therefore do not depend on what ran before it in
this process, so a run resumed from the checkpoint after epoch k repeats epochs k+1.. with the same
data and noise; only a stop within an epoch saves the RNG states. On a CPU the resumed run is
bit-identical to an uninterrupted one; on a GPU, cuDNN's autotuning (cudnn.benchmark, as the
reference) may pick other kernels in the new process, so it agrees to rounding, not bit for bit.

Under torchrun every process runs this same code on its share of each pass (DDP); the main process
alone writes the run's records. BN running statistics are not broadcast at every step: they are
averaged over the processes once per epoch (World.average_buffers_), before evaluation and checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from swa_bench.checkpointing import CheckpointWriter
from swa_bench.columns import Column
from swa_bench.config import Config
from swa_bench.dashboards import Dashboards
from swa_bench.data.datasets import data_format
from swa_bench.distributed import World, init_world, shutdown
from swa_bench.engine import STREAM_TRAIN, Tally, evaluate, rng_states, seed_epoch, set_rng_states, train_one_epoch
from swa_bench.errors import ConfigError
from swa_bench.identity import run_identity, run_name
from swa_bench.methods import get_method
from swa_bench.protocol import Protocol, resolve_protocol
from swa_bench.provenance import process_seconds
from swa_bench.records import RunRecords, kept_state_name
from swa_bench.stopping import Preempted, StopPoll, StopSignals
from swa_bench.summary import build_summary, diverged_summary
from swa_bench.timefmt import format_duration
from swa_bench.training.setup import RunContext
from swa_bench.training.state import RunState


def resolved_config(cfg: Config, proto: Protocol, overrides: dict) -> dict:
    """What config.yaml holds: the validated config, the protocol it implies, and the overrides
    (CLI flags and --set) that produced it from the file."""
    return {
        "config": cfg.to_dict(),
        "protocol": proto.to_dict(),
        "overrides": dict(overrides),
        "data_format": data_format(cfg.data),
    }


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
    """Train (or resume, or report) the run of `cfg` in `run_dir`. A run continuing the row's SGD run
    (FGE, SWA with `swa.start_from: sgd_run`) starts from the finished SGD run in `sgd_run_dir`.
    `world`: the processes sharing the run (default: what torchrun's environment says, else this one).

    Raises Preempted after checkpointing when SIGTERM or SIGUSR1 arrives; the run directory is
    locked against a second `train` meanwhile."""
    own_world = world is None
    world = world or init_world(cfg.run.device)
    try:
        return _train_in(cfg, RunRecords(run_dir), overrides, progress, sgd_run_dir, world)
    finally:
        if own_world:
            shutdown(world)  # the process group torchrun's processes joined


def _train_in(cfg: Config, records: RunRecords, overrides, progress: bool, sgd_run_dir, world: World) -> RunOutcome:
    """train_run in a given world: the lock, the writer and dashboards, and no half-made directory."""
    fresh = not records.dir.exists()
    with records.lock() if world.is_main else contextlib.nullcontext():
        try:
            # Only the main process logs; the others' dashboards stay closed.
            with (
                StopSignals() as signals,
                CheckpointWriter(records) as writer,
                Dashboards(cfg.log, records.dir, run_name(records.dir)) as dashboards,
            ):
                identity = run_identity(cfg.to_dict())  # kept in every checkpoint: whose state it is
                ctx = RunContext(
                    cfg, resolve_protocol(cfg), records, world, signals, identity, progress and world.is_main
                )
                return Run(ctx, dict(overrides or {}), writer, dashboards).execute(sgd_run_dir)
        except BaseException:
            # A start that fails before any epoch (bad data or model options, no GPU, Ctrl-C while
            # loading) leaves no half-made directory for `status` to list and the corrected command to meet.
            if world.is_main and fresh:
                records.remove_if_unstarted()
            raise


class Run:
    """One run, in the protocol's order: set up, resume, then every epoch (train, collect, evaluate,
    record), then finish. The steps share `ctx` (setup.py); the checkpointed part is `state`."""

    def __init__(self, ctx: RunContext, overrides: dict, writer: CheckpointWriter, dashboards: Dashboards):
        self.ctx, self.cfg, self.proto, self.records, self.world = ctx, ctx.cfg, ctx.proto, ctx.records, ctx.world
        self.overrides, self.writer, self.dashboards = overrides, writer, dashboards
        self.progress = ctx.progress  # the main process's only
        self.say = _say if ctx.world.is_main else (lambda line: None)
        self.epoch_times: list[float] = []
        self.stop_poll = StopPoll(ctx.signals, ctx.world)  # agreed across processes without a collective per step
        self.method = get_method(ctx.proto.method)

    def execute(self, sgd_run_dir) -> RunOutcome:
        ctx, records, proto, world = self.ctx, self.records, self.proto, self.world
        if world.is_main:
            records.claim(resolved_config(self.cfg, proto, self.overrides))
            records.clean_partial_writes()
        world.barrier()  # the directory is claimed (or refused) before anyone reads it
        if records.is_finished():
            self.say(f"{records.dir}: already finished; not retrained (delete summary.json to re-run)")
            return RunOutcome(records.dir, records.read_summary(), "already finished")
        ctx.set_up()
        # What the method keeps beside the iterate (swa_bench/methods/tracking.py): an average of the
        # weights (SWA, EMA), an ensemble of collected models' predictions (FGE), nothing (SGD).
        self.tracker = self.method.tracker(ctx)
        self.tracker.attach()
        self.state = RunState(ctx, self.method, self.tracker)
        start, partial = self._resume(sgd_run_dir)
        ctx.make_loaders()
        self.tracker.prepare()
        problem = proto.first_collection_problem(ctx.steps)
        if problem is not None:
            raise ConfigError(f"{self.method.cycle_key}: {problem}")
        for line in ctx.announcement():
            self.say(line)
        if proto.epochs == 0 and start == 0:  # a pretrained baseline: one evaluation is the whole run
            self._evaluate_pretrained()
        # Everything before the first step (imports, data, model, resume), for docs/PERFORMANCE.md's start-up figures.
        self.startup_seconds = process_seconds()
        for epoch in range(start, proto.epochs):
            diverged = self._epoch(epoch, partial)
            partial = None
            if diverged is not None:
                return diverged
        return self._finish(start)

    def _resume(self, sgd_run_dir) -> tuple[int, dict | None]:
        """The epoch to start from and a signal's partial epoch (RunState.resume), then the records
        and dashboards made to agree with it."""
        start, partial, resumed = self.state.resume(sgd_run_dir, self.say)
        if self.world.is_main:
            # Rows past the checkpoint are re-run; an evaluation-only run redoes its one row.
            self.records.keep_metrics_through(start if self.proto.epochs else -1)
            self.dashboards.open(resumes_after=start if resumed else None, config=self.cfg.to_dict())
        return start, partial

    def _log(self, row: dict) -> None:
        """A metrics row to the records, then (once on disk) to the dashboards."""
        self.records.append_metrics(row)
        self.dashboards.log(row)

    def _evaluate_pretrained(self) -> None:
        ctx = self.ctx
        row = {
            "epoch": 0,
            **_prefixed("test_", evaluate(ctx.run_model, ctx.test_loader, ctx.execution, ctx.world)),
            **_skipped("test_skipped", ctx.test_loader, ctx.world),
            "report": list(self.proto.report_points),
            "seconds": 0.0,
        }
        if self.world.is_main:
            self._log(row)

    # -- one epoch ---------------------------------------------------------------------------------

    def _epoch(self, epoch: int, partial: dict | None) -> RunOutcome | None:
        """Train, collect, evaluate and record one epoch; a RunOutcome if the run diverged in it."""
        ctx, proto, world, steps = self.ctx, self.proto, self.world, self.ctx.steps
        began = time.time()
        seed_epoch(self.cfg.run.seed, epoch, STREAM_TRAIN, ctx.generator, world.rank)
        first_step, tally, spent = 0, None, 0.0
        if partial is not None:  # the epoch a signal interrupted: the same batches and noise from there on
            first_step, spent = partial["step"], partial["seconds"]
            ctx.train_loader.skip_batches(first_step)
            tally = Tally(ctx.device, tuple(partial["tally"]) if world.is_main else (0.0, 0.0, 0.0))
            set_rng_states(partial["rng"][world.rank])

        def lr_at_step(step: int) -> float:
            return proto.lr(epoch, step, steps)

        def after_step(step: int) -> None:
            self.tracker.after_step(epoch, step)
            if proto.collects_at_step(epoch, step, steps):  # a cycle in steps: collect where it says
                self.tracker.collect(epoch, step)
                ctx.model.train()  # a member's evaluation left it in eval mode mid-pass

        row = {"epoch": epoch + 1, "lr": lr_at_step(0)}
        self.stop_poll.start_pass()
        if proto.schedule.per_iteration:
            row["lr_end"] = lr_at_step(steps - 1)
        with tqdm(
            total=steps,
            initial=first_step,
            desc=f"epoch {epoch + 1}/{proto.epochs}",
            leave=False,
            disable=None if self.progress else True,
            file=sys.stderr,
        ) as bar:
            tally, step = train_one_epoch(
                ctx.run_train,
                ctx.train_loader,
                ctx.optimizer,
                ctx.execution,
                bar,
                lr_at_step,
                tally=tally,
                first_step=first_step,
                stop=self.stop_poll,
                after_step=after_step,
            )
        if step < steps:  # stopped by a signal: checkpoint the partial epoch and leave
            self._stop_within(epoch, step, tally, spent + time.time() - began)
        row["train_loss"], row["train_acc"] = tally.means(world)
        world.average_buffers_(ctx.model)  # one set of BN statistics for the SGD iterate's evaluation and checkpoint
        row.update(_skipped("skipped_images", ctx.train_loader, world))
        if not math.isfinite(row["train_loss"]):
            row["seconds"] = spent + time.time() - began
            return self._diverged(row)

        self._collect_and_evaluate(epoch, row)
        reported = [col for col, at in proto.report_points.items() if at == epoch + 1]
        if reported:
            row["report"] = reported
        row["seconds"] = spent + time.time() - began
        self.epoch_times.append(row["seconds"])
        if world.is_main:
            self._record(epoch + 1, row, reported)
        return None

    def _stop_within(self, epoch: int, step: int, tally: Tally, seconds: float) -> None:
        world = self.world
        sums, rng = tally.reduce(world), world.all_gather(rng_states())
        if world.is_main:
            self._save(epoch, {"step": step, "tally": sums, "rng": rng, "seconds": seconds})
        world.barrier()
        signal_name = self.ctx.signals.signal_name
        self.say(
            f"{self.records.dir}: stopped by {signal_name} at step {step} of epoch {epoch + 1}; "
            f"checkpoint written, run the same command to resume"
        )
        raise Preempted(signal_name)

    def _collect_and_evaluate(self, epoch: int, row: dict) -> None:
        """Collect where the protocol says, and evaluate the SGD iterate and the method's model (an
        average's BN statistics recomputed first) at the evaluation points."""
        ctx = self.ctx
        if self.proto.collects_after(epoch):
            self.tracker.collect(epoch)
        row.update(self.tracker.epoch_fields(epoch))
        if not self.proto.evaluates_after(epoch):
            return
        row.update(_prefixed("test_", evaluate(ctx.run_model, ctx.test_loader, ctx.execution, ctx.world)))
        row.update(self.tracker.evaluate(epoch))
        row.update(_skipped("test_skipped", ctx.test_loader, ctx.world))

    def _record(self, done: int, row: dict, reported: list[str]) -> None:
        """Metrics, then the weights behind each table cell, then the checkpoint: on resume, rows
        past the checkpoint are dropped and their epochs re-run (rewriting their weights files), so
        no row is lost or doubled and no reported cell is left without its weights."""
        self._log(row)
        for col in reported:
            self.state.report(Column(col), row)
            self.records.save_weights(self.state.cell_weights(Column(col), done), col)
        for kept in (e for e in self.proto.keep_states if e == done):  # the state an FGE run continues from
            self.records.save_weights(self.state.checkpoint(done), kept_state_name(kept))
        last = done == self.proto.epochs
        if reported or last or self._checkpoint_due(done):
            self._save(done, wait=bool(reported) or last)  # budget points and the end: on disk now
        if self.progress:
            self.say(_epoch_line(row, self.proto, self.epoch_times))

    def _save(self, done_epochs: int, partial: dict | None = None, wait: bool = False) -> None:
        """Hand the state to the background writer; `wait` returns only once it is on disk."""
        self.writer.save(self.state.checkpoint(done_epochs, partial), wait=wait or partial is not None)

    def _checkpoint_due(self, done_epochs: int) -> bool:
        """The epoch cadence (run.checkpoint_every) or the wall-time one (run.checkpoint_minutes)."""
        every, minutes = self.cfg.run.checkpoint_every, self.cfg.run.checkpoint_minutes
        if every and done_epochs % every == 0:
            return True
        return minutes is not None and time.monotonic() - self.writer.last_saved >= 60 * minutes

    # -- the end -----------------------------------------------------------------------------------

    def _summary(self, reported: dict | None) -> dict:
        ctx = self.ctx
        return build_summary(
            self.cfg, self.proto, self.records, ctx.data, ctx.device, self.state.start_point, self.world, reported,
            self.overrides,
        )  # fmt: skip

    def _finish(self, start: int) -> RunOutcome:
        records = self.records
        if not self.world.is_main:
            return RunOutcome(records.dir, None, "trained")
        self.writer.wait()
        summary = self._summary(self.state.reported)
        summary["startup_seconds"] = self.startup_seconds  # of the process that finished the run
        summary.update(self.tracker.summary_fields())  # FGE: each collected model's own test accuracy and NLL
        records.write_summary(summary)
        records.clear_failure()  # a grid's record of an earlier attempt: this one finished the run
        self.say(f"{records.dir}: finished: " + ", ".join(f"{k} {v:.2f}%" for k, v in summary["results"].items()))
        return RunOutcome(records.dir, summary, "resumed" if start > self.proto.first_epoch else "trained")

    def _diverged(self, row: dict) -> RunOutcome:
        """A non-finite training loss ends the run: the epoch's row and a summary saying so, no table cells."""
        records = self.records
        if not self.world.is_main:
            return RunOutcome(records.dir, None, "diverged")
        self.writer.wait()
        self._log(row)
        summary = diverged_summary(self._summary(None), row["epoch"], list(self.proto.report_points))
        records.write_summary(summary)
        self.say(
            f"{records.dir}: diverged: training loss {row['train_loss']} in epoch {row['epoch']}; "
            f"recorded in summary.json, no results"
        )
        return RunOutcome(records.dir, summary, "diverged")


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
    if f"{proto.method}_test_acc" in row:  # the method's model (SWA, EMA, FGE)
        parts.append(f"{proto.method} acc {row[f'{proto.method}_test_acc']:6.2f} (n={row[f'{proto.method}_count']})")
    parts.append(f"{row['seconds']:.1f}s, eta {format_duration(remaining)}")
    return " | ".join(parts)


def _say(line: str) -> None:
    tqdm.write(line)
