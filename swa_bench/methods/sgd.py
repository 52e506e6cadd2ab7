"""SGD: the baseline every other method is compared with, paired by seed. It trains B epochs under the
row's schedule (the reference's flat / linear / flat one, or step or cosine) and reports its iterate at
the end. On a row that starts from pretrained weights (ImageNet) it trains nothing: the pretrained
model, evaluated, is the baseline. It keeps the state each continuing method starts from (FGE's)."""

from __future__ import annotations

import dataclasses

from swa_bench.methods.base import Method, Series, methods, register_method
from swa_bench.protocol import Protocol, budget_epochs, eval_every, sgd_schedule
from swa_bench.schedules import Constant

BASELINE = "sgd"  # the column every other is paired with


def iterate_protocol(cfg, method: str, column: str) -> Protocol:
    """B epochs of the SGD schedule from scratch, `column` reported at the end (SGD; EMA follows it
    step for step and reports where it does)."""
    budget = budget_epochs(cfg)
    return Protocol(
        method=method,
        first_epoch=0,
        epochs=budget,
        schedule=sgd_schedule(cfg, budget),
        eval_every=eval_every(cfg),
        first_collection=None,
        collect_every=1,
        start_from="scratch",
        report_points={column: budget},
    )


@register_method
class SGD(Method):
    name = BASELINE
    label = "SGD"
    order = 0
    reports = "iterate"
    series = (Series("sgd", "test_acc", "SGD", "#c0392b"),)
    rate_series = "sgd"

    def protocol(self, cfg) -> Protocol:
        if cfg.swa.start_from == "pretrained":
            # The baseline of a fine-tuning row is the pretrained model itself: evaluated, not trained.
            return Protocol(
                method=self.name,
                first_epoch=0,
                epochs=0,
                schedule=Constant(0.0),
                eval_every=eval_every(cfg),
                first_collection=None,
                collect_every=1,
                start_from="pretrained",
                report_points={BASELINE: 0},
            )
        proto = iterate_protocol(cfg, self.name, BASELINE)
        # The states the row's continuing methods start from, kept apart from the rolling checkpoints.
        kept = sorted({e for m in methods() if m.available(cfg) and (e := m.kept_sgd_state(cfg)) is not None})
        return dataclasses.replace(proto, keep_states=tuple(kept))
