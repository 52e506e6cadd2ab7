"""Shared fixtures: tiny datasets written in the real on-disk formats."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from swa_bench.cli import main

# The writers of the real formats, imported here so that tests take them with the fixtures.
from swa_bench.data.synthetic import (  # noqa: F401
    CIFAR10_CLASSES,
    IMAGENET_CLASSES,
    N_PER_BATCH,
    N_TEST,
    write_cifar10,
    write_cifar100,
    write_imagefolder,
    write_imagenet,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tiny_cifar10(tmp_path) -> Path:
    """A data path holding a 100-train / 30-test CIFAR-10 in torchvision's pickle format."""
    root = tmp_path / "cifar10"
    write_cifar10(root)
    return root


@pytest.fixture
def tiny_cifar100(tmp_path) -> Path:
    root = tmp_path / "cifar100"
    write_cifar100(root)
    return root


@pytest.fixture
def tiny_imagenet(tmp_path) -> Path:
    return write_imagenet(tmp_path / "imagenet")


@pytest.fixture
def tiny_imagefolder(tmp_path) -> Path:
    root = tmp_path / "folder"
    write_imagefolder(root, CIFAR10_CLASSES, n_train=4, n_test=2)
    return root


def process_children() -> dict[int, list[int]]:
    """pid -> its child pids, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def kill_process_tree(pid: int) -> None:
    """SIGKILL `pid` and every process below it, as a lost node would (torchrun and the grid start
    their children in sessions of their own, so a process group kill would miss them)."""
    import os
    import signal

    children = process_children()
    todo = [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def signal_when(condition):
    """A StopSignals class (for monkeypatching the trainer's) whose stop signal 'arrives' in this
    process once `condition(reads)` holds, `reads` counting the trainer's reads of it."""
    from swa_bench.stopping import StopSignals

    class Scripted(StopSignals):
        reads = 0

        @property
        def requested(self):
            self.reads += 1
            if condition(self.reads):
                self.signal_name = "SIGTERM"
                return True
            return False

        @requested.setter
        def requested(self, value):
            pass

    return Scripted


# --------------------------------------------------------------------------------------------------
# The ImageNet row's small stand-in, for the ImageNet, pretrained-weights and distributed tests

IMAGENET_CONFIG = REPO / "configs/imagenet/resnet50.yaml"
# A small stand-in of the same family: ResNet-18 at 32x32 over a 4-class tree.
SMALL = [
    "--set",
    "model.name=resnet18",
    "--set",
    "data.num_classes=4",
    "--set",
    "data.image_size=32",
    "--set",
    "data.test_resize=36",
    "--set",
    "data.workers=0",
    "--set",
    "optim.batch_size=8",
    "--set",
    "model.verify_weights=false",
    "--device",
    "cpu",
    "--quiet",
]


@pytest.fixture
def weights_file(tmp_path) -> Path:
    """Weights of the stand-in (ResNet-18, 4 classes) saved as a local torchvision-style file."""
    import torch
    import torchvision

    torch.manual_seed(1)
    path = tmp_path / "resnet18-local.pth"
    torch.save(torchvision.models.resnet18(num_classes=4).state_dict(), path)
    return path


def imagenet_cli(data, weights, out, method, *extra):
    """`train` of the ImageNet row's small stand-in, in this process."""
    args = [
        "train",
        "--config",
        str(IMAGENET_CONFIG),
        "--method",
        method,
        "--data-path",
        str(data),
        "--weights",
        str(weights),
        "--out",
        str(out),
        *SMALL,
        *extra,
    ]
    return CliRunner().invoke(main, args)


def imagenet_run_dir(out, method):
    """The seed-0 run of `method` (its folder name also carries the budget scale the test gave)."""
    (found,) = (Path(out) / "imagenet/resnet18" / method).glob("seed0*")
    return found


DIGITS = REPO / "configs/demo/digits.yaml"


def digits_args(out, method="swa", *extra):
    """`train` arguments of the demo's quarter-budget digits run, the tests' smallest real training run."""
    return [
        "train",
        "--config",
        str(DIGITS),
        "--method",
        method,
        "--out",
        str(out),
        "--budget-scale",
        "0.25",
        "--quiet",
        *extra,
    ]


def without_seconds(rows):
    """Metrics rows without their timings, to compare runs."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


# Modules whose tests train, run the CLI end to end, kill processes or build packages: the
# integration tier. `pytest -m "not integration"` leaves the unit tests, a loop of seconds.
_INTEGRATION = {
    "test_api_doc",
    "test_bench",
    "test_checkpointing",
    "test_continuation",
    "test_dashboards",
    "test_distributed",
    "test_ema",
    "test_figures",
    "test_grid",
    "test_hostile",
    "test_imagenet",
    "test_install",
    "test_real_data",
    "test_records",
    "test_reliability",
    "test_run_dirs",
    "test_train",
    "test_variants",
}


def pytest_collection_modifyitems(config, items):
    """Marks the integration tier; skips the real-data runs (marker `slow`, minutes each) unless
    SWA_BENCH_SLOW=1 (`make test-slow`)."""
    import os

    skip = pytest.mark.skip(reason="slow (minutes): set SWA_BENCH_SLOW=1 (make test-slow)")
    for item in items:
        if item.module.__name__ in _INTEGRATION:
            item.add_marker(pytest.mark.integration)
        if "slow" in item.keywords and os.environ.get("SWA_BENCH_SLOW") != "1":
            item.add_marker(skip)
