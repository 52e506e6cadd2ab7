"""SWA (the paper's method): the equal average of the weights SGD visits under a high constant or
cyclical rate, its BatchNorm statistics recomputed before each evaluation; reported at 1, 1.25 and
1.5 budgets. A run starts from scratch (the reference's schedule turning into the SWA rate at
swa.start), continues the row's finished SGD run (sgd_run), or starts from pretrained weights."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from swa_bench.columns import Column
from swa_bench.methods.base import Method, Series, register_method
from swa_bench.protocol import Protocol, scale_epochs
from swa_bench.schedules import Constant, Cyclical, PiecewiseLinear, Then
from swa_bench.yaml_input import shown

# Distinct shades for figures with several SWA settings (variants) of one row.
SWA_SHADES = ("#1f5fa8", "#27ae60", "#8e44ad", "#d68910", "#17a2b8", "#6d4c41", "#e84393", "#2c3e50")
SWA_SGD_SHADES = ("#7f8c8d", "#a3c9a8", "#b9a3c9", "#e0c08a", "#9fd8e0", "#bcaaa4", "#f5a6c9", "#95a5a6")
VARIANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


@dataclass(frozen=True)
class SWAConfig:
    # scratch: the reference protocol, one run from initial weights whose schedule turns into the SWA
    # rate at `start`. sgd_run: continue from the final checkpoint of the finished SGD run with the same
    # seed (PyramidNet and Shake-Shake rows), collecting from the end of the first cycle on.
    # pretrained: start from model.weights (ImageNet rows); the "SGD" run only evaluates those weights.
    start_from: Literal["scratch", "sgd_run", "pretrained"] = "scratch"
    include_start: bool = False  # the start point is the average's first member (Algorithm 1)
    # constant: swa_lr (`lr`). cyclical: per iteration from alpha1 down to alpha2 within each cycle of
    # `c_epochs` epochs, a model collected at each cycle end (docs/PROTOCOL.md §2).
    lr_schedule: Literal["constant", "cyclical"] = "constant"
    lr: float | None = None  # swa_lr
    alpha1: float | None = None
    alpha2: float | None = None
    start: int | None = None  # swa_start (scratch): first collection after this many epochs
    c_epochs: int = 1  # collect every c epochs; with a cyclical rate, the cycle length
    budgets: tuple[float, ...] = (1.0, 1.25, 1.5)  # where the averaged model is reported, in units of B
    report_epochs: tuple[int, ...] = ()  # instead of budgets: report after these epochs (ImageNet: 5, 10)
    # sgd_run only: continue from the state the SGD run kept after this many epochs (its FGE start,
    # fge.start x B) instead of its end; budgets then count the SGD epochs before it, as FGE's do
    # (the learning-rate schedule comparison, docs/PROTOCOL.md §10). None: from the end, epoch B.
    from_epoch: int | None = None
    # Shown beside the row in tables, for settings that are not the paper's (see configs/*/pyramidnet272.yaml).
    note: str | None = None
    # sgd_run and pretrained only: the cycle (and the interval between collections) in optimizer steps
    # instead of c_epochs, counted from the start point, for budgets too short for whole-epoch cycles
    # (a cycle scaled to a few-epoch budget). None: c_epochs.
    cycle_steps: int | None = field(default=None, metadata={"later": True})
    # Names one of several SWA settings compared against the same SGD runs (e.g. two swa_lr rules):
    # its runs go to <model>/swa-<variant>/ and it is a table row of its own, while the SGD runs,
    # which no swa key affects, stay shared in <model>/sgd/. None: the row's only SWA setting.
    variant: str | None = None


@register_method
class SWA(Method):
    name = "swa"
    label = "SWA"
    order = 2
    reports = "weights"
    section, section_type = "swa", SWAConfig
    checkpoint_key = "average"
    variants = True
    cycle_key = "swa.cycle_steps"
    series = (
        Series("swa_sgd", "test_acc", "SWA run, SGD iterate", "#7f8c8d", SWA_SGD_SHADES, dashed=True),
        Series("swa", "swa_test_acc", "SWA (averaged, BN recomputed)", "#1f5fa8", SWA_SHADES, marked=True),
    )
    rate_series = "swa"

    def check_section(self, cfg, c) -> None:
        """The SWA section, by where the run starts from (it says what kind of row this is)."""
        m, s, w = cfg.model, cfg.schedule, cfg.swa
        if w.lr_schedule == "constant":
            if w.lr is None:
                c.fail("swa.lr", "missing value (the SWA learning rate of a constant schedule)")
            c.positive("swa.lr", w.lr)
        else:
            for key, value in (("swa.alpha1", w.alpha1), ("swa.alpha2", w.alpha2)):
                if value is None:
                    c.fail(key, "missing value (a cyclical schedule needs alpha1 and alpha2)")
                c.positive(key, value)
            if w.alpha2 > w.alpha1:
                c.fail("swa.alpha2", f"must not exceed swa.alpha1 ({w.alpha1}), got {w.alpha2}")
        c.positive("swa.c_epochs", w.c_epochs)
        if w.cycle_steps is not None:
            c.positive("swa.cycle_steps", w.cycle_steps)
            if w.start_from == "scratch":
                c.fail(
                    "swa.cycle_steps",
                    "only for runs continuing the SGD run or from pretrained weights; "
                    "from scratch the cycle is swa.c_epochs",
                )
        if w.variant is not None and not VARIANT.match(w.variant):
            c.fail(
                "swa.variant",
                f"must be a short folder name (letters, digits, '.', '_', '-'; up to 40), got {shown(w.variant)}",
            )
        if not w.budgets:
            c.fail("swa.budgets", "needs at least one budget")
        if any(b <= 0 for b in w.budgets) or list(w.budgets) != sorted(set(w.budgets)):
            c.fail("swa.budgets", f"must be positive and increasing, got {shown(list(w.budgets))}")
        if w.report_epochs and (w.report_epochs[0] <= 0 or list(w.report_epochs) != sorted(set(w.report_epochs))):
            c.fail("swa.report_epochs", f"must be positive and increasing, got {shown(list(w.report_epochs))}")
        if w.report_epochs and w.start_from == "scratch":
            c.fail(
                "swa.report_epochs",
                "only for runs from pretrained weights or the SGD run; others report at swa.budgets",
            )
        if w.from_epoch is not None and w.start_from != "sgd_run":
            c.fail(
                "swa.from_epoch", f"only when continuing the SGD run (swa.start_from: sgd_run), not from {w.start_from}"
            )
        if w.start_from == "pretrained":
            if m.weights is None:
                c.fail("swa.start_from", "pretrained needs model.weights (e.g. IMAGENET1K_V1)")
            if not w.report_epochs:
                c.fail("swa.report_epochs", "a run from pretrained weights reports after given epochs, e.g. [5, 10]")
            if w.start is not None:
                c.fail(
                    "swa.start",
                    "not used when starting from pretrained weights (averaging starts with the first cycle)",
                )
        elif w.start_from == "scratch":
            if w.include_start:  # the start point of a run from scratch is its random initialisation
                c.fail(
                    "swa.include_start",
                    "only for runs continuing the SGD run or from pretrained weights; from "
                    "scratch the start point is the random initial weights",
                )
            if w.start is None:
                c.fail("swa.start", "missing value (the epoch count after which averaging starts)")
            c.positive("swa.start", w.start)
            if w.start > s.budget * w.budgets[0]:
                c.fail(
                    "swa.start", f"{w.start} is beyond the first SWA budget point ({s.budget * w.budgets[0]:g} epochs)"
                )
            if w.lr_schedule == "cyclical" and w.c_epochs > w.start:
                c.fail(
                    "swa.c_epochs",
                    f"the first cycle must end at swa.start ({w.start}), so at most that, got {w.c_epochs}",
                )
        else:
            if w.start is not None:
                c.fail("swa.start", "not used when continuing from the SGD run (averaging starts with the first cycle)")
            if w.from_epoch is not None:
                # The only state an SGD run keeps before its end is the one its FGE run starts from.
                kept = s.budget * cfg.fge.start if cfg.fge.alpha1 is not None else None
                if kept is None or w.from_epoch != kept:
                    where = (
                        f"its only state before the end is the one kept for FGE, after fge.start x B = {kept:g} epochs"
                        if kept is not None
                        else "it keeps a state before its end only for rows with fge settings"
                    )
                    c.fail("swa.from_epoch", f"the SGD run has no state after {w.from_epoch} epochs: {where}")
            first = s.budget if w.from_epoch is None else w.from_epoch
            if w.cycle_steps is not None:
                pass  # a cycle in steps: the trainer checks it against the first report point once it knows the steps
            elif w.report_epochs:
                if w.report_epochs[0] < w.c_epochs:
                    c.fail(
                        "swa.c_epochs", f"the first cycle ({w.c_epochs} epochs) would end after the first report point"
                    )
            elif s.budget * w.budgets[0] - first < w.c_epochs:
                if w.from_epoch is None and w.budgets[0] <= 1:
                    c.fail(
                        "swa.budgets",
                        "a continuation of the B-epoch SGD run reports after it, so budgets must exceed 1, "
                        f"got {shown(list(w.budgets))}",
                    )
                c.fail(
                    "swa.c_epochs",
                    f"the first cycle ({w.c_epochs} epochs from epoch {first:g}) would end after the first "
                    "budget point",
                )

    def continues_sgd(self, cfg) -> bool:
        return cfg.swa.start_from == "sgd_run"

    def folder(self, cfg) -> str:
        """SWA variants of one row get folders of their own (swa-<variant>); the SGD runs they share do not."""
        return f"{self.name}-{cfg.swa.variant}" if cfg.swa.variant else self.name

    def summary_fields(self, cfg) -> dict:
        return {"note": cfg.swa.note, "variant": cfg.swa.variant}

    def tracker(self, ctx):
        from swa_bench.methods.tracking import AverageTracker

        return AverageTracker(ctx, include_start=ctx.cfg.swa.include_start)

    def protocol(self, cfg) -> Protocol:
        scale = cfg.run.budget_scale
        budget = scale_epochs(cfg.schedule.budget, scale)
        eval_every = scale_epochs(cfg.schedule.eval_every, scale)
        w = cfg.swa
        c_epochs = scale_epochs(w.c_epochs, scale)
        if w.start_from == "pretrained":
            points = {Column.at_epochs(self.name, k).name: scale_epochs(k, scale) for k in w.report_epochs}
            first_epoch, first = 0, c_epochs
            before = None
        elif w.start_from == "sgd_run":
            # Continuing the SGD run, after its B epochs or from the state it kept at swa.from_epoch: the
            # first model is collected at the end of the first cycle (the SGD point itself joins the
            # average only with include_start). From B, each budget point is B plus its own scaled extra
            # epochs, so no point falls inside the SGD run at small scales; from an earlier state, budgets
            # count every epoch, as FGE's do. report_epochs count from the start point (Table 2's shape).
            first_epoch = budget if w.from_epoch is None else scale_epochs(w.from_epoch, scale)
            if w.report_epochs:
                points = {
                    Column.at_epochs(self.name, k).name: first_epoch + scale_epochs(k, scale) for k in w.report_epochs
                }
            elif w.from_epoch is None:
                points = {
                    Column.at_budget(self.name, b).name: budget + scale_epochs(cfg.schedule.budget * (b - 1), scale)
                    for b in w.budgets
                }
            else:
                points = {
                    Column.at_budget(self.name, b).name: scale_epochs(cfg.schedule.budget * b, scale) for b in w.budgets
                }
            first = first_epoch + c_epochs
            before = None
        else:
            points = {
                Column.at_budget(self.name, b).name: scale_epochs(cfg.schedule.budget * b, scale) for b in w.budgets
            }
            first_epoch, first = 0, scale_epochs(w.start, scale)
            # The reference's schedule with D = first, ending at the SWA rate (the cycle's top).
            top = w.lr if w.lr_schedule == "constant" else w.alpha1
            before = PiecewiseLinear(cfg.optim.lr_init, first, top / cfg.optim.lr_init)

        cycle_start = first - c_epochs
        # A cycle in steps (continuations only, check_section): cycles from the start point, a collection at each end.
        c_steps = None if w.cycle_steps is None else scale_epochs(w.cycle_steps, scale)
        if c_steps is not None:
            first, cycle_start = first_epoch, first_epoch
        if w.lr_schedule == "constant":
            schedule = before if before is not None else Constant(w.lr)
        else:
            cyclical = Cyclical(w.alpha1, w.alpha2, c_epochs, cycle_start, cycle_steps=c_steps)
            schedule = cyclical if before is None else Then(before, cyclical, cycle_start)
        return Protocol(
            method=self.name,
            first_epoch=first_epoch,
            epochs=max(points.values()),
            schedule=schedule,
            eval_every=eval_every,
            first_collection=first,
            collect_every=c_epochs,
            start_from=w.start_from,
            report_points=points,
            collect_steps=None if c_steps is None else (c_steps, c_steps),
        )
