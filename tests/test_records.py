"""A finished run's files as others see them: modes that follow the umask (colleagues on a shared
filesystem read the runs) and rolling checkpoints that torch.load reads."""

import hashlib
import os
import stat

import pytest
import torch
from click.testing import CliRunner
from conftest import digits_args

from swa_bench.cli import main

RUN = "digits/digits_cnn/swa/seed0-scale0.25-subset300"


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory):
    """umask -> the directory of a tiny SWA run trained under it (the umask restored after each)."""
    runs = {}
    for umask in (0o022, 0o077):
        out = tmp_path_factory.mktemp(f"umask{umask:03o}")
        old = os.umask(umask)
        try:
            result = CliRunner().invoke(
                main,
                digits_args(out),
            )
        finally:
            os.umask(old)
        assert result.exit_code == 0, result.output
        runs[umask] = out / RUN
    return runs


@pytest.mark.parametrize("umask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_files_and_directories_follow_the_umask(finished_runs, umask, file_mode, dir_mode):
    run = finished_runs[umask]
    files = [
        run / "config.yaml",
        run / "metrics.jsonl",
        run / "summary.json",
        *(run / "checkpoints").glob("*.pt"),
        *(run / "checkpoints").glob("*.sha256"),
    ]
    names = {f.name for f in files}
    assert {"last.pt", "previous.pt", "last.pt.sha256", "previous.pt.sha256", "swa_1.5.pt.sha256"} <= names
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {f.name: oct(file_mode) for f in files}
    assert oct(stat.S_IMODE((run / "checkpoints").stat().st_mode)) == oct(dir_mode)


def test_rolling_checkpoints_are_plain_torch_files_with_sidecars(finished_runs):
    checkpoints = finished_runs[0o022] / "checkpoints"
    last = torch.load(checkpoints / "last.pt", weights_only=True)
    previous = torch.load(checkpoints / "previous.pt", weights_only=True)
    assert last["epoch"] == 8 and previous["epoch"] < last["epoch"] and "model" in last
    for name in ("last.pt", "previous.pt"):  # what `sha256sum -c` checks
        digest = hashlib.sha256((checkpoints / name).read_bytes()).hexdigest()
        assert (checkpoints / f"{name}.sha256").read_text() == f"{digest}  {name}\n"
