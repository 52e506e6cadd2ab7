"""The epoch-level protocol a config implies: how long a run is, when it collects, evaluates and
reports, with `run.budget_scale` applied to every epoch count (SPEC §2)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from swa_bench.config import Config
from swa_bench.schedules import piecewise_linear_lr


def scale_epochs(epochs: float, scale: float) -> int:
    """Round half up, never below one epoch (1.25 * 150 = 187.5 -> 188, as SPEC says)."""
    return max(1, math.floor(epochs * scale + 0.5))


def budget_column(budget: float) -> str:
    return f"swa_{budget:g}"


@dataclass(frozen=True)
class Protocol:
    method: str
    epochs: int  # total epochs of this run
    lr_init: float
    schedule_length: int  # D of the schedule
    final_ratio: float  # r of the schedule
    eval_every: int
    swa_start: int | None  # None for SGD
    swa_c_epochs: int
    # table column -> epoch count after which the reported model is evaluated
    report_points: dict[str, int]

    def lr(self, epoch: int) -> float:
        """Learning rate of 0-based epoch `epoch`."""
        return piecewise_linear_lr(epoch, self.lr_init, self.schedule_length, self.final_ratio)

    def collects_after(self, epoch: int) -> bool:
        """Whether the weights join the average after the training pass of 0-based `epoch`."""
        if self.swa_start is None:
            return False
        done = epoch + 1
        return done >= self.swa_start and (done - self.swa_start) % self.swa_c_epochs == 0

    def evaluates_after(self, epoch: int) -> bool:
        """The reference's cadence (first epoch, every eval_every-th, last) plus every report point."""
        done = epoch + 1
        return (
            epoch == 0
            or done % self.eval_every == 0
            or done == self.epochs
            or done in self.report_points.values()
        )

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "epochs": self.epochs,
            "lr_init": self.lr_init,
            "schedule_length": self.schedule_length,
            "final_ratio": self.final_ratio,
            "eval_every": self.eval_every,
            "swa_start": self.swa_start,
            "swa_c_epochs": self.swa_c_epochs,
            "report_points": dict(self.report_points),
        }


def resolve_protocol(cfg: Config) -> Protocol:
    scale = cfg.run.budget_scale
    budget = scale_epochs(cfg.schedule.budget, scale)
    eval_every = scale_epochs(cfg.schedule.eval_every, scale)
    if cfg.run.method == "sgd":
        return Protocol(
            method="sgd",
            epochs=budget,
            lr_init=cfg.optim.lr_init,
            schedule_length=budget,
            final_ratio=cfg.schedule.sgd_final_ratio,
            eval_every=eval_every,
            swa_start=None,
            swa_c_epochs=1,
            report_points={"sgd": budget},
        )
    points = {budget_column(b): scale_epochs(cfg.schedule.budget * b, scale) for b in cfg.swa.budgets}
    swa_start = scale_epochs(cfg.swa.start, scale)
    return Protocol(
        method="swa",
        epochs=max(points.values()),
        lr_init=cfg.optim.lr_init,
        schedule_length=swa_start,
        final_ratio=cfg.swa.lr / cfg.optim.lr_init,
        eval_every=eval_every,
        swa_start=swa_start,
        swa_c_epochs=cfg.swa.c_epochs,
        report_points=points,
    )
