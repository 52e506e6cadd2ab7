"""The epoch-level protocol a config implies: which epochs a run trains, its learning-rate schedule,
when it collects, evaluates and reports, with `run.budget_scale` applied to every epoch count
(docs/PROTOCOL.md §2)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from swa_bench.columns import Column
from swa_bench.config import Config, ConfigError
from swa_bench.schedules import Constant, Cosine, Cyclical, PiecewiseLinear, Schedule, StepDecay, Then, Triangular


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
    swa_start: int | None  # epochs after which the first model is collected (SWA, FGE); None for SGD and EMA
    swa_c_epochs: int  # ...and every this many epochs after it
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
        if self.swa_start is None or self.collect_steps is not None:
            return False
        done = epoch + 1
        return done >= self.swa_start and (done - self.swa_start) % self.swa_c_epochs == 0

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
            "swa_start": self.swa_start,
            "swa_c_epochs": self.swa_c_epochs,
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


def fge_cycle(cfg: Config) -> int:
    """FGE's cycle in epochs under the budget scale: scaled like SWA's cycle, and kept even, since
    a model is collected at mid-cycle."""
    return 2 * scale_epochs(cfg.fge.cycle / 2, cfg.run.budget_scale)


def fge_cycle_steps(cfg: Config) -> int | None:
    """FGE's cycle in steps (fge.cycle_steps) under the budget scale, kept even; None: in epochs."""
    c = cfg.fge.cycle_steps
    return None if c is None else 2 * scale_epochs(c / 2, cfg.run.budget_scale)


def fge_start(cfg: Config) -> int | None:
    """The epoch count of the SGD run an FGE run continues from (None for a row without FGE)."""
    if cfg.fge.alpha1 is None:
        return None
    return scale_epochs(cfg.schedule.budget * cfg.fge.start, cfg.run.budget_scale)


def _fge_protocol(cfg: Config, budget: int, eval_every: int) -> Protocol:
    """The rest of the SGD run's budget from its state at fge.start, at FGE's triangular rate; a model
    collected at each mid-cycle point (the end of epoch c/2 of each cycle), the ensemble reported at
    the end of the budget (docs/PROTOCOL.md §8)."""
    f, first, cycle, steps = cfg.fge, fge_start(cfg), fge_cycle(cfg), fge_cycle_steps(cfg)
    if steps is None and budget - first < cycle // 2:
        raise ConfigError(
            f"run.budget_scale: at {cfg.run.budget_scale:g} the FGE phase ({budget - first} epochs from "
            f"epoch {first} of {budget}) ends before its first collection ({cycle // 2} epochs in)"
        )
    return Protocol(
        method="fge",
        first_epoch=first,
        epochs=budget,
        schedule=Triangular(f.alpha1, f.alpha2, cycle, first, cycle_steps=steps),
        eval_every=eval_every,
        swa_start=first + cycle // 2 if steps is None else first,
        swa_c_epochs=cycle,
        start_from="sgd_run",
        report_points={Column.at_budget("fge", 1).name: budget},
        collect_steps=None if steps is None else (steps // 2, steps),
    )


def resolve_protocol(cfg: Config) -> Protocol:
    scale = cfg.run.budget_scale
    budget = scale_epochs(cfg.schedule.budget, scale)
    eval_every = scale_epochs(cfg.schedule.eval_every, scale)
    w = cfg.swa
    if cfg.run.method == "sgd" and w.start_from == "pretrained":
        # The baseline of a fine-tuning row is the pretrained model itself: evaluated, not trained.
        return Protocol(
            method="sgd",
            first_epoch=0,
            epochs=0,
            schedule=Constant(0.0),
            eval_every=eval_every,
            swa_start=None,
            swa_c_epochs=1,
            start_from="pretrained",
            report_points={"sgd": 0},
        )
    if cfg.run.method == "fge":
        return _fge_protocol(cfg, budget, eval_every)
    if cfg.run.method in ("sgd", "ema"):
        # EMA follows the SGD run step for step (same seed, same schedule) and reports where it does.
        return Protocol(
            method=cfg.run.method,
            first_epoch=0,
            epochs=budget,
            schedule=sgd_schedule(cfg, budget),
            eval_every=eval_every,
            swa_start=None,
            swa_c_epochs=1,
            start_from="scratch",
            report_points={"sgd" if cfg.run.method == "sgd" else Column.at_budget("ema", 1).name: budget},
            keep_states=(fge_start(cfg),) if cfg.run.method == "sgd" and cfg.fge.alpha1 is not None else (),
        )

    c_epochs = scale_epochs(w.c_epochs, scale)
    if w.start_from == "pretrained":
        points = {Column.at_epochs("swa", k).name: scale_epochs(k, scale) for k in w.report_epochs}
        first_epoch, swa_start = 0, c_epochs
        before = None
    elif w.start_from == "sgd_run":
        # Continuing the SGD run, after its B epochs or from the state it kept at swa.from_epoch: the
        # first model is collected at the end of the first cycle (the SGD point itself joins the
        # average only with include_start). From B, each budget point is B plus its own scaled extra
        # epochs, so no point falls inside the SGD run at small scales; from an earlier state, budgets
        # count every epoch, as FGE's do. report_epochs count from the start point (Table 2's shape).
        first_epoch = budget if w.from_epoch is None else scale_epochs(w.from_epoch, scale)
        if w.report_epochs:
            points = {Column.at_epochs("swa", k).name: first_epoch + scale_epochs(k, scale) for k in w.report_epochs}
        elif w.from_epoch is None:
            points = {
                Column.at_budget("swa", b).name: budget + scale_epochs(cfg.schedule.budget * (b - 1), scale)
                for b in w.budgets
            }
        else:
            points = {Column.at_budget("swa", b).name: scale_epochs(cfg.schedule.budget * b, scale) for b in w.budgets}
        swa_start = first_epoch + c_epochs
        before = None
    else:
        points = {Column.at_budget("swa", b).name: scale_epochs(cfg.schedule.budget * b, scale) for b in w.budgets}
        first_epoch, swa_start = 0, scale_epochs(w.start, scale)
        # The reference's schedule with D = swa_start, ending at the SWA rate (the cycle's top).
        top = w.lr if w.lr_schedule == "constant" else w.alpha1
        before = PiecewiseLinear(cfg.optim.lr_init, swa_start, top / cfg.optim.lr_init)

    cycle_start = swa_start - c_epochs
    # A cycle in steps (continuations only, config.py): cycles from the start point, a collection at each end.
    c_steps = None if w.cycle_steps is None else scale_epochs(w.cycle_steps, scale)
    if c_steps is not None:
        swa_start, cycle_start = first_epoch, first_epoch
    if w.lr_schedule == "constant":
        schedule = before if before is not None else Constant(w.lr)
    else:
        cyclical = Cyclical(w.alpha1, w.alpha2, c_epochs, cycle_start, cycle_steps=c_steps)
        schedule = cyclical if before is None else Then(before, cyclical, cycle_start)
    return Protocol(
        method="swa",
        first_epoch=first_epoch,
        epochs=max(points.values()),
        schedule=schedule,
        eval_every=eval_every,
        swa_start=swa_start,
        swa_c_epochs=c_epochs,
        start_from=w.start_from,
        report_points=points,
        collect_steps=None if c_steps is None else (c_steps, c_steps),
    )
