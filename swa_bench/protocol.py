"""The epoch-level protocol a config implies: which epochs a run trains, its learning-rate schedule,
when it collects, evaluates and reports, with `run.budget_scale` applied to every epoch count
(docs/PROTOCOL.md §2). Each method makes its own (`Method.protocol`, swa_bench/methods); this module
holds the type they make and what they share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from swa_bench.schedules import Cosine, PiecewiseLinear, Schedule, StepDecay

if TYPE_CHECKING:  # the config imports the methods, which import this module
    from swa_bench.config import Config


def scale_epochs(epochs: float, scale: float) -> int:
    """Round half up, never below one epoch (1.25 * 150 = 187.5 -> 188, as docs/PROTOCOL.md §2 says)."""
    return max(1, math.floor(epochs * scale + 0.5))


@dataclass(frozen=True)
class Protocol:
    method: str
    first_epoch: int  # 0-based epoch the run starts at: B for an SWA run continuing an SGD run
    epochs: int  # the run ends after this many epochs (counted from 0, continuation included); 0: evaluate only
    schedule: Schedule
    eval_every: int
    first_collection: int | None  # epochs after which the first model is collected (SWA, FGE); None: none
    collect_every: int  # ...and every this many epochs after it
    start_from: str  # "scratch", "sgd_run" or "pretrained"
    # table column -> epoch count after which the reported model is evaluated
    report_points: dict[str, int]
    # epoch counts after which the whole state is kept apart from the rolling checkpoints: an SGD run
    # of a row with FGE keeps the state its FGE run continues from
    keep_states: tuple[int, ...] = ()
    # Collections counted in optimizer steps instead of epochs (a cycle given in steps): (first, every),
    # after the first-th step since the start of first_epoch and every every-th after it. None: by epoch.
    collect_steps: tuple[int, int] | None = None

    def lr(self, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
        """Learning rate at `step` (0-based) of 0-based epoch `epoch`."""
        return self.schedule.lr(epoch, step, steps_per_epoch)

    def collects_after(self, epoch: int) -> bool:
        """Whether the weights join the average after the training pass of 0-based `epoch`."""
        if self.first_collection is None or self.collect_steps is not None:
            return False
        done = epoch + 1
        return done >= self.first_collection and (done - self.first_collection) % self.collect_every == 0

    def collects_at_step(self, epoch: int, steps_done: int, steps_per_epoch: int) -> bool:
        """With collect_steps: whether the weights are collected after `steps_done` steps of 0-based `epoch`."""
        if self.collect_steps is None:
            return False
        first, every = self.collect_steps
        k = (epoch - self.first_epoch) * steps_per_epoch + steps_done
        return k >= first and (k - first) % every == 0

    def first_collection_problem(self, steps_per_epoch: int) -> str | None:
        """Why a cycle in steps cannot work with `steps_per_epoch` (None if it can): the first collection
        must come before the first report point."""
        if self.collect_steps is None or not self.report_points:
            return None
        first, _ = self.collect_steps
        room = (min(self.report_points.values()) - self.first_epoch) * steps_per_epoch
        if first > room:
            return (
                f"the first model is collected after {first} steps, but the first report point comes after "
                f"{room} ({steps_per_epoch} steps per epoch)"
            )
        return None

    def evaluates_after(self, epoch: int) -> bool:
        """The reference's cadence (first epoch, every eval_every-th, last) plus every report point."""
        done = epoch + 1
        return (
            epoch == self.first_epoch
            or done % self.eval_every == 0
            or done == self.epochs
            or done in self.report_points.values()
        )

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "first_epoch": self.first_epoch,
            "epochs": self.epochs,
            "schedule": self.schedule.to_dict(),
            "eval_every": self.eval_every,
            # the names every recorded config.yaml gives them
            "swa_start": self.first_collection,
            "swa_c_epochs": self.collect_every,
            "start_from": self.start_from,
            "report_points": dict(self.report_points),
            "keep_states": list(self.keep_states),
            # left out when unset, as recorded before cycles in steps existed
            **({"collect_steps": list(self.collect_steps)} if self.collect_steps is not None else {}),
        }


def sgd_schedule(cfg: Config, budget: int) -> Schedule:
    """The SGD baseline's schedule over `budget` (already scaled) epochs."""
    s, lr_init = cfg.schedule, cfg.optim.lr_init
    if s.type == "linear":
        return PiecewiseLinear(lr_init, budget, s.sgd_final_ratio)
    if s.type == "step":
        milestones = tuple(scale_epochs(m, cfg.run.budget_scale) for m in s.milestones)
        return StepDecay(lr_init, milestones, s.gamma)
    return Cosine(lr_init, s.final_lr, budget)


def budget_epochs(cfg: Config) -> int:
    """B under the budget scale."""
    return scale_epochs(cfg.schedule.budget, cfg.run.budget_scale)


def eval_every(cfg: Config) -> int:
    """The evaluation cadence under the budget scale."""
    return scale_epochs(cfg.schedule.eval_every, cfg.run.budget_scale)


def resolve_protocol(cfg: Config) -> Protocol:
    """The protocol of the config's run: its method's."""
    from swa_bench.methods import get_method

    return get_method(cfg.run.method).protocol(cfg)
