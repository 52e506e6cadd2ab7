"""FGE: Fast Geometric Ensembling (Garipov et al. 2018), the paper's Table 1 column beside SWA. A run
continues the row's SGD run from its state after fge.start x B epochs for the rest of the budget at a
triangular rate, collects a model at each mid-cycle point, and reports the ensemble: the mean of the
collected models' softmax outputs (docs/PROTOCOL.md §8). Rows without fge settings have no FGE."""

from __future__ import annotations

from dataclasses import dataclass, field

from swa_bench.columns import Column
from swa_bench.errors import ConfigError
from swa_bench.methods.base import Method, Series, register_method
from swa_bench.protocol import Protocol, budget_epochs, eval_every, scale_epochs
from swa_bench.schedules import Triangular


@dataclass(frozen=True)
class FGEConfig:
    # It continues the row's SGD run from its state after `start` x B epochs (weights and momentum),
    # which the SGD run keeps when the row has this section, for the rest of the budget at a triangular
    # per-iteration rate: alpha1 at each cycle's start, alpha2 at mid-cycle, alpha1 again at its end
    # (a cycle of `cycle` epochs). A model is collected at each mid-cycle point and the ensemble's
    # prediction is the mean of their softmax outputs; each keeps the BN statistics it trained with.
    # The values per row and their sources: docs/PROTOCOL.md §8. alpha1 unset: the row has no FGE.
    alpha1: float | None = None
    alpha2: float | None = None
    cycle: int = 2
    start: float = 0.8
    keep_models: int | None = None  # collected models whose weights are kept on disk (None: all)
    # The cycle in optimizer steps instead of `cycle` epochs (even: a model is collected at mid-cycle),
    # counted from the start point, for budgets too short for whole-epoch cycles. None: `cycle`.
    cycle_steps: int | None = field(default=None, metadata={"later": True})


def fge_cycle(cfg) -> int:
    """FGE's cycle in epochs under the budget scale: scaled like SWA's cycle, and kept even, since
    a model is collected at mid-cycle."""
    return 2 * scale_epochs(cfg.fge.cycle / 2, cfg.run.budget_scale)


def fge_cycle_steps(cfg) -> int | None:
    """FGE's cycle in steps (fge.cycle_steps) under the budget scale, kept even; None: in epochs."""
    c = cfg.fge.cycle_steps
    return None if c is None else 2 * scale_epochs(c / 2, cfg.run.budget_scale)


def fge_start(cfg) -> int | None:
    """The epoch count of the SGD run an FGE run continues from (None for a row without FGE)."""
    if cfg.fge.alpha1 is None:
        return None
    return scale_epochs(cfg.schedule.budget * cfg.fge.start, cfg.run.budget_scale)


@register_method
class FGE(Method):
    name = "fge"
    label = "FGE"
    order = 1
    reports = "ensemble"
    section, section_type = "fge", FGEConfig
    checkpoint_key = "ensemble"
    optional = True
    cycle_key = "fge.cycle_steps"
    series = (
        Series("fge", "fge_test_acc", "FGE ensemble", "#e67e22", ("#e67e22",), marked=True),
        Series("fge_member", "fge_member_acc", "FGE, each collected model", "#f0b27a", ("#f0b27a",), True, True),
    )
    rate_series = "fge"

    def check_section(self, cfg, c) -> None:
        """Absent (alpha1 unset), or a schedule that collects at least one model."""
        f, s = cfg.fge, cfg.schedule
        if f.alpha1 is None:
            return
        if f.alpha2 is None:
            c.fail("fge.alpha2", "missing value (the rate at mid-cycle, where models are collected)")
        c.positive("fge.alpha1", f.alpha1)
        c.positive("fge.alpha2", f.alpha2)
        if f.cycle < 2 or f.cycle % 2:
            c.fail("fge.cycle", f"must be an even number of epochs (a model is collected at mid-cycle), got {f.cycle}")
        if f.cycle_steps is not None and (f.cycle_steps < 2 or f.cycle_steps % 2):
            c.fail(
                "fge.cycle_steps",
                f"must be an even number of steps (a model is collected at mid-cycle), got {f.cycle_steps}",
            )
        if not 0 < f.start < 1:
            c.fail("fge.start", f"must be a fraction of the budget in (0, 1), got {f.start}")
        if f.keep_models is not None:
            c.positive("fge.keep_models", f.keep_models)
        if cfg.swa.start_from == "pretrained":
            c.fail(
                "fge.alpha1", "FGE continues an SGD run trained from scratch; this row starts from pretrained weights"
            )
        if f.cycle_steps is None and s.budget * (1 - f.start) < f.cycle // 2:
            c.fail(
                "fge.start",
                f"leaves {s.budget * (1 - f.start):g} epochs, fewer than the {f.cycle // 2} before the first "
                "collection",
            )

    def check_run(self, cfg, c) -> None:
        if cfg.fge.alpha1 is None:
            c.fail("fge.alpha1", "missing value: this row has no FGE settings (set fge.alpha1 and fge.alpha2)")

    def available(self, cfg) -> bool:
        return cfg.fge.alpha1 is not None

    def continues_sgd(self, cfg) -> bool:
        return True

    def kept_sgd_state(self, cfg) -> int | None:
        return fge_start(cfg)

    def tracker(self, ctx):
        from swa_bench.methods.tracking import EnsembleTracker

        return EnsembleTracker(ctx, keep_models=ctx.cfg.fge.keep_models)

    def protocol(self, cfg) -> Protocol:
        """The rest of the SGD run's budget from its state at fge.start, at FGE's triangular rate; a model
        collected at each mid-cycle point (the end of epoch c/2 of each cycle), the ensemble reported at
        the end of the budget."""
        budget = budget_epochs(cfg)
        f, first, cycle, steps = cfg.fge, fge_start(cfg), fge_cycle(cfg), fge_cycle_steps(cfg)
        if steps is None and budget - first < cycle // 2:
            raise ConfigError(
                f"run.budget_scale: at {cfg.run.budget_scale:g} the FGE phase ({budget - first} epochs from "
                f"epoch {first} of {budget}) ends before its first collection ({cycle // 2} epochs in)"
            )
        return Protocol(
            method=self.name,
            first_epoch=first,
            epochs=budget,
            schedule=Triangular(f.alpha1, f.alpha2, cycle, first, cycle_steps=steps),
            eval_every=eval_every(cfg),
            first_collection=first + cycle // 2 if steps is None else first,
            collect_every=cycle,
            start_from="sgd_run",
            report_points={Column.at_budget(self.name, 1).name: budget},
            collect_steps=None if steps is None else (steps // 2, steps),
        )
