"""The trainer's hooks for what a method keeps beside the SGD iterate: nothing (SGD), an average of
the weights (SWA, EMA), or an ensemble of collected models' predictions (FGE). A method's `tracker`
builds one for each run; the trainer calls it at fixed points of the protocol and never asks which
method it serves.

A tracker reads what the run's steps share through `ctx` (swa_bench/training/setup.py): its config
and protocol, the model, the execution, the loaders, the world of processes, its records and identity."""

from __future__ import annotations

from swa_bench.averaging import WeightAverage, has_batchnorm, recompute_bn
from swa_bench.engine import STREAM_BN, evaluate, predict, seed_epoch
from swa_bench.ensembling import PredictionEnsemble
from swa_bench.errors import ConfigError
from swa_bench.records import member_name


class Tracker:
    """Nothing beside the iterate: the base of every tracker, and SGD's."""

    def __init__(self, ctx):
        self.ctx = ctx

    # -- set up and state ------------------------------------------------------------------------

    def attach(self) -> None:
        """The model exists: build what is kept beside it."""

    def prepare(self) -> None:
        """The loaders exist: compile what is evaluated."""

    def start(self) -> None:
        """The run starts fresh (no checkpoint of its own)."""

    def state_dict(self) -> dict | None:
        """What a checkpoint keeps of it, under its method's checkpoint_key (None: nothing)."""
        return None

    def load_state_dict(self, state: dict) -> None:
        pass

    # -- the epoch -------------------------------------------------------------------------------

    def after_step(self, epoch: int, step: int) -> None:
        """After each optimizer step (`step` steps of 0-based `epoch` done)."""

    def collect(self, epoch: int, step: int | None = None) -> None:
        """The protocol's collection point: after the epoch, or after `step` steps of it."""

    def epoch_fields(self, epoch: int) -> dict:
        """Metrics row fields of every epoch, evaluated or not."""
        return {}

    def evaluate(self, epoch: int) -> dict:
        """Metrics row fields of its model at an evaluation point ({} while it has none)."""
        return {}

    # -- records ---------------------------------------------------------------------------------

    def cell_weights(self, column, done: int) -> dict:
        """The weights file of one of its table cells after `done` epochs."""
        raise NotImplementedError

    def implied_files(self, state: dict) -> dict[str, dict]:
        """Weights files (name -> fields they must carry) that a checkpoint's `state` implies beyond
        the table cells': checked before that checkpoint is resumed from."""
        return {}

    def summary_fields(self) -> dict:
        return {}


class AverageTracker(Tracker):
    """An average of the weights (SWA: equal; EMA: exponential, updated every `every` steps), its BN
    statistics recomputed on the training images before each evaluation."""

    def __init__(self, ctx, decay: float | None = None, every: int | None = None, include_start: bool = False):
        super().__init__(ctx)
        self.decay, self.every, self.include_start = decay, every, include_start
        self.average = None

    def attach(self) -> None:
        self.average = WeightAverage(self.ctx.model, decay=self.decay)

    def prepare(self) -> None:
        self.forward = self.ctx.execution.compiled(self.average.module)
        self.bn_needed = has_batchnorm(self.average.module)

    def start(self) -> None:
        if self.include_start:  # Algorithm 1: the average starts at the start point
            self.average.update(self.ctx.model)

    def state_dict(self) -> dict:
        return self.average.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.average.load_state_dict(state)

    def after_step(self, epoch: int, step: int) -> None:
        if self.every is not None and (epoch * self.ctx.steps + step) % self.every == 0:
            self.average.update(self.ctx.model)

    def collect(self, epoch: int, step: int | None = None) -> None:
        self.average.update(self.ctx.model)

    def evaluate(self, epoch: int) -> dict:
        ctx, average = self.ctx, self.average
        if not average.count:
            return {}
        if self.bn_needed:
            seed_epoch(ctx.cfg.run.seed, epoch, STREAM_BN, ctx.generator, ctx.world.rank)
            with ctx.execution.autocast():
                recompute_bn(
                    average.module,
                    ctx.execution.batches(ctx.bn_loader),
                    ctx.device,
                    forward=self.forward,
                    world=ctx.world,
                )
        name = ctx.proto.method
        metrics = evaluate(self.forward, ctx.test_loader, ctx.execution, ctx.world)
        return {**{f"{name}_test_{k}": v for k, v in metrics.items()}, f"{name}_count": average.count}

    def cell_weights(self, column, done: int) -> dict:
        return {
            "epoch": done,
            "column": column.name,
            "model": self.average.module.state_dict(),
            "identity": self.ctx.identity,
        }


class EnsembleTracker(Tracker):
    """FGE's: models collected along the run: each evaluated on the test set once, its probabilities joining
    the ensemble's, its weights kept (the first `keep_models`) for figures."""

    def __init__(self, ctx, keep_models: int | None = None):
        super().__init__(ctx)
        self.keep_models = keep_models
        self.ensemble = PredictionEnsemble()

    def attach(self) -> None:
        if self.ctx.world.distributed:
            # Each process would hold the probabilities of its share of the test set only.
            raise ConfigError(
                "run.method: fge runs in one process (the CIFAR rows need no more); start it without torchrun"
            )

    def state_dict(self) -> dict:
        return self.ensemble.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.ensemble.load_state_dict(state)
        self.ensemble.to(self.ctx.device)

    def collect(self, epoch: int, step: int | None = None) -> None:
        ctx = self.ctx
        probabilities, targets = predict(ctx.run_model, ctx.test_loader, ctx.execution)
        member = self.ensemble.add(probabilities, targets, epoch + 1)
        if step is not None:
            member["step"] = (epoch - ctx.proto.first_epoch) * ctx.steps + step  # since the start point
        if ctx.world.is_main and (self.keep_models is None or self.ensemble.count <= self.keep_models):
            weights = {
                "epoch": epoch + 1,
                "column": "fge_member",
                "index": self.ensemble.count,
                "step": member.get("step"),
                "identity": ctx.identity,
                "model": ctx.model.state_dict(),
            }
            ctx.records.save_weights(weights, member_name(self.ensemble.count))

    def epoch_fields(self, epoch: int) -> dict:
        members = self.ensemble.members
        if members and members[-1]["epoch"] == epoch + 1:
            # The epoch's last collected model, from the ensemble's state (kept by a stop within the epoch)
            return {"fge_member_acc": members[-1]["acc"], "fge_member_loss": members[-1]["loss"]}
        return {}

    def evaluate(self, epoch: int) -> dict:
        if not self.ensemble.count:
            return {}
        name = self.ctx.proto.method
        metrics = self.ensemble.metrics()
        return {**{f"{name}_test_{k}": v for k, v in metrics.items()}, f"{name}_count": self.ensemble.count}

    def _kept(self, count: int) -> int:
        return min(count, self.keep_models or count)

    def cell_weights(self, column, done: int) -> dict:
        """No single set of weights is the ensemble's model: the iterate at the end, and the names of
        its kept members' files."""
        return {
            "epoch": done,
            "column": column.name,
            "model": self.ctx.model.state_dict(),
            "members": [member_name(i) for i in range(1, self._kept(self.ensemble.count) + 1)],
            "ensembled": self.ensemble.count,
            "identity": self.ctx.identity,
        }

    def implied_files(self, state: dict) -> dict[str, dict]:
        members = (state.get("ensemble") or {}).get("members") or []
        return {
            member_name(i): {"column": "fge_member", "index": i, "epoch": members[i - 1].get("epoch")}
            for i in range(1, self._kept(len(members)) + 1)
        }

    def summary_fields(self) -> dict:
        return {"fge_members": self.ensemble.members}  # each collected model's own test accuracy and NLL
