#!/usr/bin/env python3
"""Estimated GPU-hours of each table's full reproduction, from what the code measures, not from a
guess per model: for every planned run, training epochs x training images x 3 x forward
multiply-accumulates (counted by swa_bench.models.macs) x 2 FLOP, plus one forward pass over the
training set (BN) and the test set at each of the averaged model's evaluations, divided by a
sustained rate you give (default 25 TFLOP/s, about 40% of a recent data-centre GPU's fp32 peak;
small CIFAR models reach less, so their share is underestimated).

    python scripts/gpu_hours.py [--tflops 25] [--seeds 3]
"""

import argparse
from pathlib import Path

from swa_bench.config import DATASETS, load_config
from swa_bench.grid.plan import build_plan
from swa_bench.models import get_model_entry
from swa_bench.protocol import resolve_protocol

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflops", type=float, default=25.0, help="sustained TFLOP/s of one GPU")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    grand = 0.0
    for table in ("cifar10", "cifar100", "imagenet"):
        total = 0.0
        plan = build_plan(table, REPO / "configs", "/tmp/unused", seeds=args.seeds)
        runs = len(plan.runs)
        for spec in plan.runs:
            cfg = load_config(spec.config, {"run.method": spec.method})
            forward = get_model_entry(cfg.model.name).macs  # at the model's input size, kept with it
            facts = DATASETS[cfg.data.dataset]
            train, test = facts.train_images, facts.test_images
            proto = resolve_protocol(cfg)
            epochs = proto.epochs - proto.first_epoch
            evals = sum(1 for e in range(proto.first_epoch, proto.epochs) if proto.evaluates_after(e)) or 1
            averaged_evals = evals if spec.method == "swa" else 0
            macs = forward * (3 * epochs * train + evals * test + averaged_evals * (train + test))
            total += 2 * macs / (args.tflops * 1e12) / 3600
        grand += total
        print(f"{table:9s} {total:8.0f} GPU-hours ({runs} runs: {args.seeds} seeds, at {args.tflops:g} TFLOP/s)")
    print(f"{'all':9s} {grand:8.0f} GPU-hours")


if __name__ == "__main__":
    main()
