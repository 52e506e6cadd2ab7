"""EMA (beyond the paper): an exponential moving average of the SGD run's weights,
w_ema <- decay * w_ema + (1 - decay) * w after every `every`-th optimizer step (the first update
copies the weights), its BN statistics recomputed as SWA's, reported at the end of the budget. The
run follows the SGD run step for step (same seed, same schedule), so only its average is its own."""

from __future__ import annotations

from dataclasses import dataclass

from swa_bench.columns import Column
from swa_bench.methods.base import Method, Series, register_method
from swa_bench.methods.sgd import iterate_protocol
from swa_bench.protocol import Protocol


@dataclass(frozen=True)
class EMAConfig:
    # 0.9998 per step is timm's default (a horizon of ~5,000 steps: ~13 CIFAR epochs at batch 128);
    # runs of few steps per epoch need a smaller decay (configs/demo, configs/mini).
    decay: float = 0.9998
    every: int = 1


@register_method
class EMA(Method):
    name = "ema"
    label = "EMA"
    order = 3
    beyond_paper = "exponential moving average of the weights"
    reports = "weights"
    section, section_type = "ema", EMAConfig
    checkpoint_key = "average"
    series = (
        Series(
            "ema",
            "ema_test_acc",
            "EMA of the SGD run (BN recomputed; beyond the paper)",
            "#d6338a",
            ("#d6338a", "#f07cb8", "#9c1f5e", "#f5a9d0"),
            marked=True,
        ),
    )

    def check_section(self, cfg, c) -> None:
        e = cfg.ema
        if not 0 < e.decay < 1:
            c.fail("ema.decay", f"must be in (0, 1), got {e.decay}")
        c.positive("ema.every", e.every)

    def check_run(self, cfg, c) -> None:
        if cfg.swa.start_from == "pretrained":
            c.fail(
                "run.method", "ema trains from scratch under the SGD schedule; this row starts from pretrained weights"
            )

    def protocol(self, cfg) -> Protocol:
        return iterate_protocol(cfg, self.name, Column.at_budget(self.name, 1).name)

    def tracker(self, ctx):
        from swa_bench.methods.tracking import AverageTracker

        return AverageTracker(ctx, decay=ctx.cfg.ema.decay, every=ctx.cfg.ema.every)
