"""Real-data checks on the JPEG copy of CIFAR-10 (../shared/data/cifar10-jpg.tar.gz). Minutes on a
CPU, so they carry the `slow` marker and run only with `make test-slow`."""

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO

from swa_bench.cli import main
from swa_bench.config import DataConfig
from swa_bench.data import build_datasets

pytestmark = pytest.mark.slow
TARBALL = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"


@pytest.fixture(scope="module")
def cifar10_jpg(tmp_path_factory) -> Path:
    extracted = REPO / "data" / "cifar10-jpg"
    if (extracted / "train").is_dir():
        return extracted
    if not TARBALL.exists():
        pytest.skip(f"{TARBALL} not found")
    target = tmp_path_factory.mktemp("real")
    with tarfile.open(TARBALL) as tar:
        tar.extractall(target, filter="data")
    return target / "cifar10-jpg"


def test_jpeg_copy_is_the_full_standard_split(cifar10_jpg):
    cfg = DataConfig(dataset="cifar10", mean=(0.5,) * 3, std=(0.25,) * 3, path=str(cifar10_jpg), workers=0)
    data = build_datasets(cfg, progress=False)
    assert data.source["format"] == "imagefolder"
    assert len(data.train) == 50_000 and len(data.test) == 10_000
    assert np.bincount(data.train.targets).tolist() == [5000] * 10
    assert np.bincount(data.test.targets).tolist() == [1000] * 10
    assert data.train.images.shape == (50_000, 32, 32, 3)


def test_preresnet_learns_from_real_images(cifar10_jpg, tmp_path):
    # 3 epochs on 2000 images: 23-27% test accuracy in the runs of docs/PERFORMANCE.md; chance is 10%.
    args = [
        "train",
        "--config",
        str(REPO / "configs/cifar10/preresnet164.yaml"),
        "--method",
        "sgd",
        "--data-path",
        str(cifar10_jpg),
        "--out",
        str(tmp_path),
        "--budget-scale",
        "0.02",
        "--set",
        "data.train_subset=2000",
        "--set",
        "data.workers=0",
        "--device",
        "cpu",
        "--quiet",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "cifar10/preresnet164/sgd/seed0-scale0.02-subset2000/summary.json").read_text())
    assert summary["train_images"] == 2000 and summary["test_images"] == 10_000
    assert summary["results"]["sgd"] > 18.0, summary["results"]
    table = CliRunner().invoke(main, ["table", str(tmp_path)])
    assert "ImageFolder copy; budget x0.02; 2000 train images" in table.stdout
