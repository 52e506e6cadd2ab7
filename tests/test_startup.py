"""Read-only commands start fast: `table`, `status` and `--help` read JSON and YAML and never
import torch (importing it takes seconds); `list` builds no model. The model catalog itself is
torch-free: a builder's module is imported when a model is built."""

import subprocess
import sys

import pytest
from conftest import REPO

PROBE = """
import sys
from click.testing import CliRunner
from swa_bench.cli import main
result = CliRunner().invoke(main, {args!r})
assert result.exit_code == {code}, result.output
print("torch" in sys.modules, "torchvision" in sys.modules)
"""


@pytest.mark.parametrize(
    "args,code",
    [
        (["--help"], 0),
        (["table", str(REPO / "results/cifar10-jpg-quick")], 0),
        (["status", str(REPO / "results/cifar10-jpg-quick")], 0),
        (["table", str(REPO / "no-such-runs")], 2),
    ],
)
def test_read_only_commands_do_not_import_torch(args, code):
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, code=code)], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_list_builds_no_model(monkeypatch):
    import torch
    from click.testing import CliRunner

    from swa_bench.cli import main

    def refuse(*args, **kwargs):
        raise AssertionError("list built a model")

    monkeypatch.setattr(torch.nn.Module, "__init__", refuse)
    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == 0, result.output
    assert "15,245,130" in result.output and "0.314 G" in result.output and "mini/preresnet20" in result.output
