"""Sizes: the only thing that differs between the GPU run and its rehearsal."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    device: str
    minutes: float  # default total budget
    smoke_per_class: tuple[int, int]  # (train, test) images per class of the smoke tree
    smoke_subset: int  # data.train_subset of the smoke runs
    smoke_batch: int  # optim.batch_size of the smoke runs: several steps per epoch, so a signal lands mid-epoch
    smoke_scale: float  # budget scale of the smoke runs (the mini config's B = 120 epochs)
    resume_scale: float  # the stopped run's: more epochs, so the signal lands before the end
    smoke_jobs: int  # smoke items at once
    compile: str  # run.compile of the compile item, the benches and the fast path
    precision: str  # run.precision of the fast path (grid and the pair)
    channels_last: bool  # of the fast path
    bench: tuple[str, ...]  # sizes of `swa-bench bench` (precision bf16 always: its two references)
    bench_channels_last: bool
    grid_scale: float  # VGG-16's SGD run at this scale: 4 epochs, two of them (2, 3) without evaluation
    full_data: bool  # grid and pair on all of CIFAR-10 (else on the smoke tree)
    subset: int | None  # data.train_subset of the grid and the pair
    pair_max_scale: float
    item_timeout: float  # seconds, any one subprocess


GPU = Sizes(
    device="cuda",
    minutes=9.0,
    smoke_per_class=(50, 20),
    smoke_subset=400,
    smoke_batch=128,
    smoke_scale=0.05,
    resume_scale=0.1,
    smoke_jobs=7,
    compile="reduce-overhead",
    precision="bf16",
    channels_last=True,
    bench=("--steps", "30", "--warmup", "5", "--rounds", "3", "--workers", "8"),
    bench_channels_last=True,
    grid_scale=0.02,
    full_data=True,
    subset=None,
    pair_max_scale=1.0,
    item_timeout=300,
)
# On this 2-core CPU a cold compilation costs ~40 s a model (`--compile default` rehearses it anyway) and
# bf16 runs 2x and more slower than fp32: the grid and the pair run fp32 without compilation there. The
# budget is a cap (the sizes set the length: ~2-3 minutes), generous so a busy machine does not cut stage (c).
REHEARSAL = Sizes(
    device="cpu",
    minutes=8.0,
    smoke_per_class=(8, 3),
    smoke_subset=64,
    smoke_batch=16,
    smoke_scale=0.02,
    resume_scale=0.04,
    smoke_jobs=2,
    compile="none",
    precision="fp32",
    channels_last=False,
    bench=("--batch-size", "4", "--steps", "1", "--warmup", "0", "--rounds", "1", "--workers", "1"),
    bench_channels_last=False,
    grid_scale=0.02,
    full_data=False,
    subset=16,
    pair_max_scale=0.01,
    item_timeout=120,
)
