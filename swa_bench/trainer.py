"""The training loop of docs/PROTOCOL.md §2, §4, §8 and §9: SGD, SWA, FGE or EMA, one run, resumable, on
one process or many.

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
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from swa_bench.averaging import WeightAverage, has_batchnorm, recompute_bn
from swa_bench.checkpointing import CheckpointWriter
from swa_bench.columns import Column
from swa_bench.config import Config, ConfigError
from swa_bench.continuation import load_start_point
from swa_bench.dashboards import Dashboards
from swa_bench.data import build_datasets, make_loader, resolve_loader_kind
from swa_bench.data.datasets import data_format
from swa_bench.distributed import World, init_world, shutdown
from swa_bench.engine import (
    STREAM_BN,
    STREAM_TRAIN,
    Tally,
    evaluate,
    predict,
    resolve_device,
    rng_states,
    seed_epoch,
    set_rng_states,
    train_one_epoch,
)
from swa_bench.ensembling import PredictionEnsemble
from swa_bench.execution import Execution
from swa_bench.models import create_model
from swa_bench.models.pretrained import load_pretrained
from swa_bench.models.registry import check_input_size
from swa_bench.protocol import Protocol, resolve_protocol
from swa_bench.provenance import environment, process_seconds
from swa_bench.record_files import CorruptCheckpointError, read_checkpoint
from swa_bench.records import RunRecords, identity_problem, kept_state_name, member_name, run_identity
from swa_bench.stopping import Preempted, StopPoll, StopSignals
from swa_bench.timefmt import format_duration


def resolved_config(cfg: Config, proto: Protocol, overrides: dict) -> dict:
    """What config.yaml holds: the validated config, the protocol it implies, and the overrides
    (CLI flags and --set) that produced it from the file."""
    return {
        "config": cfg.to_dict(),
        "protocol": proto.to_dict(),
        "overrides": dict(overrides),
        "data_format": data_format(cfg.data),
    }


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
    own_world = world is None
    world = world or init_world(cfg.run.device)
    try:
        return _train_in(cfg, RunRecords(run_dir), overrides, progress, sgd_run_dir, world)
    finally:
        if own_world:
            shutdown(world)  # the process group torchrun's processes joined


def _train_in(cfg: Config, records: RunRecords, overrides, progress: bool, sgd_run_dir, world: World) -> RunOutcome:
    """train_run in a given world: the lock, the writer and dashboards, and no half-made directory."""
    run_dir = records.dir
    fresh = not records.dir.exists()
    name = "/".join(Path(run_dir).parts[-4:])
    with records.lock() if world.is_main else contextlib.nullcontext():
        try:
            # Only the main process logs; the others' dashboards stay closed.
            with (
                StopSignals() as signals,
                CheckpointWriter(records) as writer,
                Dashboards(cfg.log, records.dir, name) as dashboards,
            ):
                run = _Run(
                    cfg,
                    resolve_protocol(cfg),
                    records,
                    dict(overrides or {}),
                    progress and world.is_main,
                    world,
                    signals,
                    writer,
                    dashboards,
                )
                return run.execute(sgd_run_dir)
        except BaseException:
            # A start that fails before any epoch (bad data or model options, no GPU, Ctrl-C while
            # loading) leaves no half-made directory for `status` to list and the corrected command to meet.
            if world.is_main and fresh:
                records.remove_if_unstarted()
            raise


class _Run:
    """One run, in the protocol's order: set up, resume, then every epoch (train, collect, evaluate,
    record), then finish. Holds what the steps share: the model, its optimizer and average, the
    loaders, and the results reported so far."""

    def __init__(
        self,
        cfg: Config,
        proto: Protocol,
        records: RunRecords,
        overrides: dict,
        progress: bool,
        world: World,
        signals: StopSignals,
        writer: CheckpointWriter,
        dashboards: Dashboards,
    ):
        self.cfg, self.proto, self.records, self.overrides = cfg, proto, records, overrides
        self.progress, self.world, self.signals, self.writer, self.dashboards = (
            progress,
            world,
            signals,
            writer,
            dashboards,
        )
        self.say = _say if world.is_main else (lambda line: None)
        # column -> {"acc", "nll"} of each budget point passed: kept in the checkpoints, so the
        # summary does not depend on metrics.jsonl being intact.
        self.reported: dict[str, dict] = {}
        self.start_point = None
        self.epoch_times: list[float] = []
        self.stop_poll = StopPoll(signals, world)  # agreed across processes without a collective per step
        self.identity = run_identity(cfg.to_dict())  # kept in every checkpoint: whose state it is

    def execute(self, sgd_run_dir) -> RunOutcome:
        records, proto, world = self.records, self.proto, self.world
        if world.is_main:
            records.claim(resolved_config(self.cfg, proto, self.overrides))
            records.clean_partial_writes()
        world.barrier()  # the directory is claimed (or refused) before anyone reads it
        if records.is_finished():
            self.say(f"{records.dir}: already finished; not retrained (delete summary.json to re-run)")
            return RunOutcome(records.dir, records.read_summary(), "already finished")
        self._set_up()
        start, partial = self._resume(sgd_run_dir)
        self._make_loaders()
        self._announce()
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

    # -- set up ------------------------------------------------------------------------------------

    def _set_up(self) -> None:
        """Device, data, model, optimizer and the averaged model."""
        cfg, world = self.cfg, self.world
        self.device = resolve_device(cfg.run.device, world)
        self.execution = Execution.from_config(cfg.run, self.device)
        self.execution.configure_backends()
        if cfg.optim.batch_size % world.size:
            raise ConfigError(f"optim.batch_size: {cfg.optim.batch_size} does not split over {world.size} processes")
        self.batch = cfg.optim.batch_size // world.size  # the config's batch is the global one
        self.data = build_datasets(cfg.data, progress=self.progress)
        for split, size in zip(("training", "test"), self.data.input_sizes or ()):
            try:
                check_input_size(cfg.model.name, split, size)
            except ValueError as e:
                raise ConfigError(f"{self.data.source['path']}: {e}") from None

        torch.manual_seed(cfg.run.seed)  # the initial weights depend on the seed only
        try:
            module = create_model(cfg.model.name, self.data.num_classes, **cfg.model.options)
        except ValueError as e:  # an option value the builder cannot build, e.g. a depth not 9n+2
            raise ConfigError(f"model.options: {e}") from None
        self.start_point = load_pretrained(module, cfg.model) if cfg.model.weights else None
        self.model = self.execution.place(module)
        o = cfg.optim
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=o.lr_init, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
        )
        # The averaged model: SWA's equal average, or the EMA's (beyond the paper); FGE's ensemble of
        # collected models' predictions instead; none for SGD.
        method = self.proto.method
        self.average = (
            None
            if method not in ("swa", "ema")
            else WeightAverage(self.model, decay=cfg.ema.decay if method == "ema" else None)
        )
        self.ensemble = PredictionEnsemble() if method == "fge" else None
        if self.ensemble is not None and world.distributed:
            # Each process would hold the probabilities of its share of the test set only.
            raise ConfigError(
                "run.method: fge runs in one process (the CIFAR rows need no more); start it without torchrun"
            )

    def _resume(self, sgd_run_dir) -> tuple[int, dict | None]:
        """The epoch to start from and a signal's partial epoch: from this run's checkpoint, the SGD
        run it continues, or the beginning."""
        cfg, proto, records, world = self.cfg, self.proto, self.records, self.world
        start, partial = proto.first_epoch, None
        # Read on the host: load_state_dict copies each part to where its module lives, and the RNG
        # states of a mid-epoch stop must stay CPU byte tensors (torch refuses them anywhere else).
        checkpoint = records.load_checkpoint("last", map_location="cpu", accept=self._foreign)
        if checkpoint is not None:
            self.model.load_state_dict(checkpoint["model"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.average is not None:
                self.average.load_state_dict(checkpoint["average"])
            if self.ensemble is not None:
                self.ensemble.load_state_dict(checkpoint["ensemble"])
                self.ensemble.to(self.device)
            start, self.start_point, partial = (
                checkpoint["epoch"],
                checkpoint.get("start_point"),
                checkpoint.get("partial"),
            )
            self.reported = dict(checkpoint.get("reported") or {})
            if partial is not None and len(partial["rng"]) != world.size:
                raise ConfigError(
                    f"{records.dir}: stopped within an epoch with {len(partial['rng'])} process(es); "
                    f"resume it with as many (its data were split that way)"
                )
            within = f" and {partial['step']} steps" if partial else ""
            self.say(f"{records.dir}: resuming after epoch {start}{within} of {proto.epochs}")
        elif proto.start_from == "sgd_run":
            # The SGD run's weights and momentum buffers (after B epochs for an SWA continuation, after
            # fge.start x B for FGE); the rates come from this run's schedule.
            initial, self.start_point = load_start_point(
                cfg, sgd_run_dir, map_location="cpu", model=self.model.state_dict()
            )
            self.model.load_state_dict(initial["model"])
            self.optimizer.load_state_dict(initial["optimizer"])
            self.say(
                f"{records.dir}: continuing from {self.start_point['run']} after its epoch {self.start_point['epoch']}"
            )
        if checkpoint is None and proto.method == "swa" and cfg.swa.include_start:
            self.average.update(self.model)  # Algorithm 1: the average starts at the start point
        if world.is_main:
            # Rows past the checkpoint are re-run; an evaluation-only run redoes its one row.
            records.keep_metrics_through(start if proto.epochs else -1)
            self.dashboards.open(resumes_after=start if checkpoint is not None else None, config=cfg.to_dict())
            records.row_listeners.append(self.dashboards.log)
        return start, partial

    def _foreign(self, state: dict) -> str | None:
        """What makes a checkpoint found in this run's directory not this run's state (None if
        nothing): another run's identity, another method's or model's structure (checkpoints of
        earlier versions carry no identity), an epoch outside the run, or records it does not
        match: a metrics row or a cell's weights file missing for an epoch it has done, or a weights
        file it implies that is not this run's own (_foreign_weights). Such a checkpoint is never
        resumed from (records.load_checkpoint falls back to the one before)."""
        proto = self.proto
        problem = identity_problem(state.get("identity"), self.identity)
        if problem:
            return problem
        epoch = state.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or not proto.first_epoch <= epoch <= proto.epochs:
            return f"its epoch ({epoch!r}) is not one of this run's ({proto.first_epoch} to {proto.epochs})"
        for key, part in (("average", self.average), ("ensemble", self.ensemble)):
            if (state.get(key) is None) != (part is None):
                return f"{'lacks' if part is not None else 'holds'} an {key}: another method's checkpoint"
        mine, theirs = self.model.state_dict(), state.get("model") or {}
        if set(theirs) != set(mine) or any(getattr(theirs[k], "shape", None) != v.shape for k, v in mine.items()):
            return "holds the weights of another model"
        if not set(state.get("reported") or {}) <= {c for c, at in proto.report_points.items() if at <= epoch}:
            return f"reports columns this run has not reached ({', '.join(sorted(state['reported']))})"
        rows = {r["epoch"] for r in self.records.read_metrics(strict=True)}
        missing = [e for e in range(proto.first_epoch + 1, epoch + 1) if e not in rows]
        if missing:
            return (
                f"{self.records.metrics_path.name} lacks the rows of epoch{'s' if len(missing) > 1 else ''} "
                f"{missing[0]}{f' to {missing[-1]}' if len(missing) > 1 else ''}, which it has done (a "
                "cut or edited file)"
            )
        lost = [
            c
            for c, at in proto.report_points.items()
            if 0 < at <= epoch and not self.records.checkpoint_path(c).is_file()
        ]
        if lost:
            return f"the weights behind {', '.join(lost)}, which it has passed, are missing from checkpoints/"
        return self._foreign_weights(state, epoch)

    def _foreign_weights(self, state: dict, epoch: int) -> str | None:
        """What is wrong with the weights files a checkpoint after `epoch` epochs implies (None if
        nothing): each table cell passed and, for FGE, each collected model it keeps must be this
        run's own (its identity; for a member its index and epoch), intact. Files written before
        weights carried an identity are taken as this run's."""
        records, proto = self.records, self.proto
        expected = {c: {"column": c, "epoch": at} for c, at in proto.report_points.items() if 0 < at <= epoch}
        members = (state.get("ensemble") or {}).get("members") or []
        kept = min(len(members), self.cfg.fge.keep_models or len(members)) if self.ensemble is not None else 0
        for i in range(1, kept + 1):
            expected[member_name(i)] = {"column": "fge_member", "index": i, "epoch": members[i - 1].get("epoch")}
        # The state an FGE run continues from (an SGD run's), where one is there: never the absence of one
        # (an SGD run trained before its row had fge settings has none, and is still this run).
        expected.update(
            {
                kept_state_name(e): {"epoch": e}
                for e in proto.keep_states
                if e <= epoch and records.checkpoint_path(kept_state_name(e)).exists()
            }
        )
        for name, fields in expected.items():
            path = records.checkpoint_path(name)
            if not path.is_file():  # a member's (the cells' were checked before)
                return (
                    f"{path.name}, the weights of collected model {fields.get('index')}, is missing from checkpoints/"
                )
            try:
                weights = read_checkpoint(path)
            except CorruptCheckpointError as e:
                return f"a file it implies is damaged ({e})"
            identity = weights.get("identity")
            problem = identity_problem(identity, self.identity, "weights" if "column" in fields else "state")
            wrong = [k for k, v in fields.items() if k in weights and weights[k] != v] if identity is not None else []
            if problem is None and wrong:
                problem = f"its {wrong[0]} is {weights[wrong[0]]!r}, not {fields[wrong[0]]!r}"
            if problem:
                return f"{path.name} is not this run's own: {problem}"
        return None

    def _make_loaders(self) -> None:
        # Training runs through DDP (gradients averaged over processes); everything else through the
        # plain modules, identical in every process. Compiled callables share the modules' parameters.
        cfg, world, device, execution = self.cfg, self.world, self.device, self.execution
        train_module = self.model
        if world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            # No buffer broadcast before every forward: it is a collective per step and, compiled, keeps
            # CUDA graphs from applying (mutated inputs). The BN statistics are averaged once per epoch instead.
            # (Newer torch names it forward_sync_buffers and warns; older ones know only broadcast_buffers.)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*broadcast_buffers", category=FutureWarning)
                train_module = DistributedDataParallel(
                    self.model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False
                )
        self.run_train, self.run_model = execution.compiled(train_module), execution.compiled(self.model)
        self.run_average = execution.compiled(self.average.module) if self.average is not None else None

        self.loader_kind = resolve_loader_kind(cfg.data.loader, device, self.data.in_memory)
        args = dict(workers=cfg.data.workers, device=device, kind=self.loader_kind, rank=world.rank, world=world.size)
        self.generator = torch.Generator(device=device if self.loader_kind == "device" else torch.device("cpu"))
        # Training pads its pass so every process takes as many steps; BN recomputation and evaluation
        # see each image exactly once.
        self.train_loader = make_loader(
            self.data.train, self.batch, shuffle=True, generator=self.generator, pad=True, **args
        )
        self.bn_loader = make_loader(self.data.train, self.batch, shuffle=True, generator=self.generator, **args)
        self.test_loader = make_loader(self.data.test, self.batch, shuffle=False, **args)
        self.bn_needed = self.average is not None and has_batchnorm(self.average.module)
        self.steps = len(self.train_loader)
        problem = self.proto.first_collection_problem(self.steps)
        if problem is not None:
            key = "fge.cycle_steps" if self.proto.method == "fge" else "swa.cycle_steps"
            raise ConfigError(f"{key}: {problem}")

    def _announce(self) -> None:
        proto, data, world, execution = self.proto, self.data, self.world, self.execution
        if world.distributed and has_batchnorm(self.model):
            self.say(
                f"{self.records.dir}: BatchNorm normalises each process's own batch of {self.batch} "
                f"({self.cfg.optim.batch_size} / {world.size} processes), not the whole batch of "
                f"{self.cfg.optim.batch_size}: with BN, a run on {world.size} processes is not the "
                "single-device protocol"
            )
        self.say(
            f"{self.records.dir}: {proto.method.upper()} {self.cfg.model.name} on {data.source['description']}, "
            f"{len(data.train)} train / {len(data.test)} test images, "
            + (f"{proto.epochs} epochs" if proto.epochs else "evaluation only")
            + f" on {self.device}{f' x {world.size} processes' if world.distributed else ''} "
            f"({self.loader_kind} loader, {execution.precision}, compile {execution.compile})"
        )

    def _evaluate_pretrained(self) -> None:
        row = {
            "epoch": 0,
            **_prefixed("test_", evaluate(self.run_model, self.test_loader, self.execution, self.world)),
            **_skipped("test_skipped", self.test_loader, self.world),
            "report": list(self.proto.report_points),
            "seconds": 0.0,
        }
        if self.world.is_main:
            self.records.append_metrics(row)

    # -- one epoch ---------------------------------------------------------------------------------

    def _epoch(self, epoch: int, partial: dict | None) -> RunOutcome | None:
        """Train, collect, evaluate and record one epoch; a RunOutcome if the run diverged in it."""
        cfg, proto, world, steps = self.cfg, self.proto, self.world, self.steps
        began = time.time()
        seed_epoch(cfg.run.seed, epoch, STREAM_TRAIN, self.generator, world.rank)
        first_step, tally, spent = 0, None, 0.0
        if partial is not None:  # the epoch a signal interrupted: the same batches and noise from there on
            first_step, spent = partial["step"], partial["seconds"]
            self.train_loader.skip_batches(first_step)
            tally = Tally(self.device, tuple(partial["tally"]) if world.is_main else (0.0, 0.0, 0.0))
            set_rng_states(partial["rng"][world.rank])

        def lr_at_step(step: int) -> float:
            return proto.lr(epoch, step, steps)

        def after_step(step: int) -> None:
            if proto.method == "ema" and (epoch * steps + step) % cfg.ema.every == 0:
                self.average.update(self.model)
            if proto.collects_at_step(epoch, step, steps):  # a cycle in steps: collect where it says
                self._collect(epoch, step)
                self.model.train()  # a member's evaluation left it in eval mode mid-pass

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
                self.run_train,
                self.train_loader,
                self.optimizer,
                self.execution,
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
        world.average_buffers_(self.model)  # one set of BN statistics for the SGD iterate's evaluation and checkpoint
        row.update(_skipped("skipped_images", self.train_loader, world))
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
        self.say(
            f"{self.records.dir}: stopped by {self.signals.signal_name} at step {step} of epoch {epoch + 1}; "
            f"checkpoint written, run the same command to resume"
        )
        raise Preempted(self.signals.signal_name)

    def _collect_and_evaluate(self, epoch: int, row: dict) -> None:
        """Collect into the average where the protocol says, and evaluate the SGD iterate and the
        average (its BN statistics recomputed first) at the evaluation points."""
        proto, average, world, execution = self.proto, self.average, self.world, self.execution
        if proto.collects_after(epoch):
            self._collect(epoch)
        if self.ensemble is not None and self.ensemble.members and self.ensemble.members[-1]["epoch"] == epoch + 1:
            # The epoch's last collected model, from the ensemble's state (kept by a stop within the epoch)
            member = self.ensemble.members[-1]
            row.update(fge_member_acc=member["acc"], fge_member_loss=member["loss"])
        if not proto.evaluates_after(epoch):
            return
        row.update(_prefixed("test_", evaluate(self.run_model, self.test_loader, execution, world)))
        if average is not None and average.count:
            if self.bn_needed:
                seed_epoch(self.cfg.run.seed, epoch, STREAM_BN, self.generator, world.rank)
                with execution.autocast():
                    recompute_bn(
                        average.module,
                        execution.batches(self.bn_loader),
                        self.device,
                        forward=self.run_average,
                        world=world,
                    )
            row.update(
                _prefixed(f"{proto.method}_test_", evaluate(self.run_average, self.test_loader, execution, world))
            )
            row[f"{proto.method}_count"] = average.count
        if self.ensemble is not None and self.ensemble.count:
            row.update(_prefixed("fge_test_", self.ensemble.metrics()), fge_count=self.ensemble.count)
        row.update(_skipped("test_skipped", self.test_loader, world))

    def _collect(self, epoch: int, step: int | None = None) -> None:
        """The iterate joins the average (SWA) or the ensemble (FGE): after the epoch, or after `step`
        steps of it when the cycle is counted in steps."""
        if self.average is not None:
            self.average.update(self.model)
        if self.ensemble is not None:
            self._collect_member(epoch, step)

    def _collect_member(self, epoch: int, step: int | None = None) -> None:
        """FGE: evaluate the iterate on the test set once, add its probabilities to the ensemble, and
        keep its weights (the first fge.keep_models of them) for figures."""
        probabilities, targets = predict(self.run_model, self.test_loader, self.execution)
        member = self.ensemble.add(probabilities, targets, epoch + 1)
        if step is not None:
            member["step"] = (epoch - self.proto.first_epoch) * self.steps + step  # since the start point
        keep = self.cfg.fge.keep_models
        if self.world.is_main and (keep is None or self.ensemble.count <= keep):
            self.records.save_weights(
                {
                    "epoch": epoch + 1,
                    "column": "fge_member",
                    "index": self.ensemble.count,
                    "step": member.get("step"),
                    "identity": self.identity,
                    "model": self.model.state_dict(),
                },
                member_name(self.ensemble.count),
            )

    def _record(self, done: int, row: dict, reported: list[str]) -> None:
        """Metrics, then the weights behind each table cell, then the checkpoint: on resume, rows
        past the checkpoint are dropped and their epochs re-run (rewriting their weights files), so
        no row is lost or doubled and no reported cell is left without its weights."""
        self.records.append_metrics(row)
        for col in reported:
            column = Column(col)
            self.reported[col] = {"acc": row[column.metrics_prefix + "acc"], "nll": row[column.metrics_prefix + "loss"]}
            self.records.save_weights(self._cell_weights(column, done), col)
        for kept in (e for e in self.proto.keep_states if e == done):  # the state an FGE run continues from
            self.records.save_weights(self._state(done), kept_state_name(kept))
        last = done == self.proto.epochs
        if reported or last or self._checkpoint_due(done):
            self._save(done, wait=bool(reported) or last)  # budget points and the end: on disk now
        if self.progress:
            self.say(_epoch_line(row, self.proto, self.epoch_times))

    def _cell_weights(self, column: Column, done: int) -> dict:
        """The weights file of a table cell: the model it reports (the SGD iterate, or the averaged
        model); for an ensemble (FGE), the iterate at the end and the names of its kept members' files."""
        if column.ensemble:
            kept = min(self.ensemble.count, self.cfg.fge.keep_models or self.ensemble.count)
            return {
                "epoch": done,
                "column": column.name,
                "model": self.model.state_dict(),
                "members": [member_name(i) for i in range(1, kept + 1)],
                "ensembled": self.ensemble.count,
                "identity": self.identity,
            }
        weights = self.average.module if column.averaged else self.model
        return {"epoch": done, "column": column.name, "model": weights.state_dict(), "identity": self.identity}

    def _state(self, done_epochs: int, partial_state: dict | None = None) -> dict:
        """Everything a resume needs after `done_epochs` epochs (and `partial_state` steps of the next)."""
        return {
            "epoch": done_epochs,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "average": self.average.state_dict() if self.average is not None else None,
            "ensemble": self.ensemble.state_dict() if self.ensemble is not None else None,
            "start_point": self.start_point,
            "partial": partial_state,
            "reported": dict(self.reported),
            "identity": self.identity,
        }

    def _save(self, done_epochs: int, partial_state: dict | None = None, wait: bool = False) -> None:
        """Hand the state to the background writer; `wait` returns only once it is on disk."""
        self.writer.save(self._state(done_epochs, partial_state), wait=wait or partial_state is not None)

    def _checkpoint_due(self, done_epochs: int) -> bool:
        """The epoch cadence (run.checkpoint_every) or the wall-time one (run.checkpoint_minutes)."""
        every, minutes = self.cfg.run.checkpoint_every, self.cfg.run.checkpoint_minutes
        if every and done_epochs % every == 0:
            return True
        return minutes is not None and time.monotonic() - self.writer.last_saved >= 60 * minutes

    # -- the end -----------------------------------------------------------------------------------

    def _summary(self, reported: dict | None) -> dict:
        return build_summary(
            self.cfg,
            self.proto,
            self.records,
            self.data,
            self.device,
            self.start_point,
            self.world,
            reported,
            self.overrides,
        )

    def _finish(self, start: int) -> RunOutcome:
        records = self.records
        if not self.world.is_main:
            return RunOutcome(records.dir, None, "trained")
        self.writer.wait()
        summary = self._summary(self.reported)
        summary["startup_seconds"] = self.startup_seconds  # of the process that finished the run
        if self.ensemble is not None:  # each collected model's own test accuracy and NLL
            summary["fge_members"] = self.ensemble.members
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
        records.append_metrics(row)
        summary = self._summary(None)
        summary.update(
            status="diverged",
            diverged_epoch=row["epoch"],
            results={},
            results_nll={},
            columns=list(self.proto.report_points),
        )
        records.write_summary(summary)
        self.say(
            f"{records.dir}: diverged: training loss {row['train_loss']} in epoch {row['epoch']}; "
            f"recorded in summary.json, no results"
        )
        return RunOutcome(records.dir, summary, "diverged")


def build_summary(
    cfg: Config,
    proto: Protocol,
    records: RunRecords,
    data,
    device,
    start_point=None,
    world: World = World(),
    reported: dict | None = None,
    overrides: dict | None = None,
) -> dict:
    """The run's summary. Its results are `reported` (the run's own state); metrics rows fill in only
    columns it lacks (checkpoints of earlier versions kept none)."""
    rows = records.read_metrics()
    results, results_nll = {}, {}
    for row in rows:
        for col in row.get("report", []):
            prefix = Column(col).metrics_prefix
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
        "overrides": dict(overrides or {}),
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
