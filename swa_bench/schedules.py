"""Learning-rate schedules (docs/PROTOCOL.md §2), as small values the protocol composes.

Every schedule answers `lr(epoch, step, steps_per_epoch)` for the 0-based epoch and the 0-based step
within it; `per_iteration` says whether the answer changes within an epoch. The trainer asks before
every step, so per-epoch and per-iteration schedules go through one code path.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


def piecewise_linear_lr(epoch: int, lr_init: float, length: int, final_ratio: float) -> float:
    """The reference schedule, set once per epoch from the 0-based `epoch`.

    Flat at lr_init for the first half of `length`, linear down to final_ratio * lr_init by 90%,
    flat after. The SGD baseline uses length = epochs, final_ratio = 0.01; an SWA run uses
    length = swa_start, final_ratio = swa_lr / lr_init, so its schedule ignores the total epochs.
    """
    t = epoch / length
    if t <= 0.5:
        factor = 1.0
    elif t <= 0.9:
        factor = 1.0 - (1.0 - final_ratio) * (t - 0.5) / 0.4
    else:
        factor = final_ratio
    return lr_init * factor


def cyclical_lr(i: int, alpha1: float, alpha2: float, cycle: int) -> float:
    """docs/PROTOCOL.md §2's cyclical rate at iteration i = 1, 2, ...: within each cycle of `cycle` iterations it
    falls linearly from alpha1 towards alpha2, reaching alpha2 at the cycle's last iteration."""
    t = ((i - 1) % cycle + 1) / cycle
    return (1 - t) * alpha1 + t * alpha2


def triangular_lr(t: float, alpha1: float, alpha2: float) -> float:
    """FGE's rate at cycle position t in [0, 1): alpha1 at t = 0, linear to alpha2 at t = 1/2, linear
    back towards alpha1 as t approaches 1 (docs/PROTOCOL.md §8)."""
    if t <= 0.5:
        return (1 - 2 * t) * alpha1 + 2 * t * alpha2
    return (2 - 2 * t) * alpha2 + (2 * t - 1) * alpha1


class Schedule:
    per_iteration = False

    def lr(self, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
        raise NotImplementedError

    def to_dict(self) -> dict:
        out = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "cycle_steps" and value is None:
                continue  # as recorded before cycles in steps existed: the same run, the same record
            out[f.name] = value.to_dict() if isinstance(value, Schedule) else value
        return out


@dataclass(frozen=True)
class PiecewiseLinear(Schedule):
    lr_init: float
    length: int
    final_ratio: float

    def lr(self, epoch, step=0, steps_per_epoch=1):
        return piecewise_linear_lr(epoch, self.lr_init, self.length, self.final_ratio)


@dataclass(frozen=True)
class StepDecay(Schedule):
    """x gamma at each milestone epoch: epochs [0, m1) at lr_init, [m1, m2) at lr_init * gamma, ..."""

    lr_init: float
    milestones: tuple[int, ...]
    gamma: float

    def lr(self, epoch, step=0, steps_per_epoch=1):
        return self.lr_init * self.gamma ** sum(epoch >= m for m in self.milestones)


@dataclass(frozen=True)
class Cosine(Schedule):
    """Per iteration, half a cosine from lr_init at the first step to final_lr after the last one."""

    lr_init: float
    final_lr: float
    epochs: int
    per_iteration = True

    def lr(self, epoch, step=0, steps_per_epoch=1):
        progress = (epoch * steps_per_epoch + step) / (self.epochs * steps_per_epoch)
        return self.final_lr + (self.lr_init - self.final_lr) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class Constant(Schedule):
    value: float

    def lr(self, epoch, step=0, steps_per_epoch=1):
        return self.value


@dataclass(frozen=True)
class Cyclical(Schedule):
    """`cyclical_lr` counted from the first step of epoch `first_epoch`, a cycle lasting
    `cycle_epochs` epochs, so cycles end (and models are collected) at epoch ends; or, with
    `cycle_steps`, that many steps, wherever they end."""

    alpha1: float
    alpha2: float
    cycle_epochs: int
    first_epoch: int
    cycle_steps: int | None = None
    per_iteration = True

    def lr(self, epoch, step=0, steps_per_epoch=1):
        i = (epoch - self.first_epoch) * steps_per_epoch + step + 1
        return cyclical_lr(i, self.alpha1, self.alpha2, self.cycle_steps or self.cycle_epochs * steps_per_epoch)


@dataclass(frozen=True)
class Triangular(Schedule):
    """`triangular_lr` at t = ((e mod c) + step / steps) / c, with e the epoch counted from
    `first_epoch` and c = `cycle_epochs`: mid-cycle (alpha2) falls on the end of epoch c/2 - 1 of
    each cycle, where FGE collects a model. With `cycle_steps`, t = (k mod c) / c at the k-th step
    (from 0) since `first_epoch` began, c = cycle_steps: mid-cycle falls after c/2 steps of each cycle."""

    alpha1: float
    alpha2: float
    cycle_epochs: int
    first_epoch: int
    cycle_steps: int | None = None
    per_iteration = True

    def lr(self, epoch, step=0, steps_per_epoch=1):
        e = epoch - self.first_epoch
        if self.cycle_steps:
            t = ((e * steps_per_epoch + step) % self.cycle_steps) / self.cycle_steps
        else:
            t = ((e % self.cycle_epochs) + step / steps_per_epoch) / self.cycle_epochs
        return triangular_lr(t, self.alpha1, self.alpha2)


@dataclass(frozen=True)
class Then(Schedule):
    """`first` before epoch `switch_epoch`, `then` from it on."""

    first: Schedule
    then: Schedule
    switch_epoch: int

    @property
    def per_iteration(self):
        return self.first.per_iteration or self.then.per_iteration

    def lr(self, epoch, step=0, steps_per_epoch=1):
        active = self.first if epoch < self.switch_epoch else self.then
        return active.lr(epoch, step, steps_per_epoch)
