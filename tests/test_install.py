"""The package as a user installs it: a wheel in a fresh virtualenv, used from a directory that is
not the checkout. Its configs and the paper's numbers must come from inside the package."""

import json
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import REPO


def _run(args, cwd, **kwargs):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """bin/ of a fresh virtualenv with the wheel installed. Its dependencies (torch & co) come from
    this environment's site-packages through a .pth line, so nothing is downloaded; the checkout
    itself is not on its path."""
    root = tmp_path_factory.mktemp("install")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(root / "dist"),
            str(REPO),
        ],
        cwd=root,
    )
    (wheel,) = (root / "dist").glob("swa_bench-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=root)
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "deps-from-the-test-environment.pth").write_text(
        "\n".join(dict.fromkeys([ours, *site.getsitepackages()])) + "\n"
    )
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], cwd=root)
    return venv / "bin"


def test_wheel_works_from_another_directory(installed, tmp_path):
    where = _run([str(installed / "python"), "-c", "import swa_bench; print(swa_bench.__file__)"], cwd=tmp_path)
    assert not where.startswith(str(REPO)), where  # the installed copy, not the checkout

    listing = _run([str(installed / "swa-bench"), "list"], cwd=tmp_path)
    assert "cifar10/vgg16" in listing and "demo/digits" in listing and "imagenet/resnet50" in listing

    for method in ("sgd", "swa", "ema"):  # a shipped config by name
        _run(
            [
                str(installed / "swa-bench"),
                "train",
                "--config",
                "demo/digits",
                "--method",
                method,
                "--out",
                "runs",
                "--budget-scale",
                "0.25",
                "--quiet",
            ],
            cwd=tmp_path,
        )
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("summary.json")]
    assert sorted(s["method"] for s in summaries) == ["ema", "sgd", "swa"]

    table = _run([str(installed / "swa-bench"), "table", "runs"], cwd=tmp_path)
    assert "SWA 1.5 B" in table and "EMA" in table
    paper = _run(
        [
            str(installed / "python"),
            "-c",
            "from swa_bench.tables import PAPER_DIR, load_paper; print(PAPER_DIR); print(len(load_paper()))",
        ],
        cwd=tmp_path,
    ).split()
    assert not paper[0].startswith(str(REPO)) and int(paper[1]) > 20  # the paper's numbers, shipped
