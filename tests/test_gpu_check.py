"""scripts/gpu_check (a package: python -m scripts.gpu_check): its arithmetic on made-up metrics rows, its
readers on made-up run records, the tqdm stand-in, and its CPU rehearsal end to end (the same stages and
code as on the GPU, tiny sizes), which must leave only small flat files behind."""

import importlib
import json
import os
import subprocess
import sys
import time

import pytest
from conftest import REPO


def _gpu_check(module: str = "arithmetic"):
    """scripts.gpu_check.<module>, imported from the source tree, leaving no bytecode in scripts/."""
    added = str(REPO) not in sys.path
    if added:
        sys.path.insert(0, str(REPO))
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        return importlib.import_module(f"scripts.gpu_check.{module}")
    finally:
        sys.dont_write_bytecode = writes
        if added:
            sys.path.remove(str(REPO))


def _rows(seconds: dict[int, float], evaluated=(), averaged=()) -> list[dict]:
    return [
        {
            "epoch": e,
            "seconds": s,
            **({"test_acc": 50.0} if e in evaluated else {}),
            **({"swa_test_acc": 51.0} if e in averaged else {}),
        }
        for e, s in seconds.items()
    ]


def test_time_shares_keep_the_compile_epochs_apart():
    g = _gpu_check()
    # Epoch 1 compiles; epoch 4 is the first to evaluate the average (compiles again); 2, 3 and 6 are
    # steps alone (1 s), 5 evaluates the model and the average (0.25 s each).
    rows = _rows({1: 30.0, 2: 1.0, 3: 1.0, 4: 9.0, 5: 1.5, 6: 1.0}, evaluated=(1, 4, 5), averaged=(4, 5))
    shares = g.time_shares(rows, "swa")
    assert shares["step_s"] == 1.0 and shares["eval_s"] == 0.25 and shares["steady_epochs"] == 4
    assert shares["outside_steps_pct"] == pytest.approx(100 * 0.5 / 4.5)
    first, average = shares["compile_epochs"]
    assert (first["epoch"], first["beyond_steady_s"]) == (1, 30.0 - 1.0 - 0.25)
    assert (average["epoch"], average["beyond_steady_s"]) == (4, 9.0 - 1.0 - 0.5)
    # Every steady epoch evaluates (small budget scales): nothing to tell the steps from the rest.
    unmeasurable = g.time_shares(_rows({1: 3.0, 2: 1.2}, evaluated=(1, 2)), "sgd")
    assert unmeasurable["step_s"] is None and unmeasurable["outside_steps_pct"] is None


def test_the_pair_is_the_full_budget_when_it_fits_else_the_largest_scale_that_does():
    g = _gpu_check()
    costs = {"step_s": 0.4, "eval_s": 0.05, "startup_s": 10.0, "compile_s": 20.0}
    full = g.choose_scale(costs, 10_000, 1.0)
    assert full["scale"] == 1.0 and full["epochs"] == {"sgd": 200, "swa": 300}
    assert full["predicted_s"] == pytest.approx(full["full_budget_s"]) and full["predicted_s"] > 1.1 * 500 * 0.4
    half = g.choose_scale(costs, full["predicted_s"] / 2, 1.0)
    assert 0.1 < half["scale"] < 0.6 and half["predicted_s"] <= full["predicted_s"] / 2
    assert g.choose_scale(costs, half["predicted_s"] - 1, 1.0)["scale"] < half["scale"]  # it was the largest
    assert g.choose_scale(costs, full["predicted_s"] / 2, 0.1)["scale"] == 0.1  # capped (the rehearsal)
    assert g.choose_scale(costs, 30, 1.0)["scale"] is None  # not even one hundredth of the budget fits


def _run_dir(root, folder: str, run: dict, rows: list[dict]):
    import yaml

    path = root / folder
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"config": {"run": run}}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_runs_are_read_through_the_records_not_their_folder_names(tmp_path):
    r = _gpu_check("readers")
    rows = _rows({1: 3.0, 2: 1.0}, evaluated=(1,))
    # The method and seed come from config.yaml, whatever the folders are called.
    variant = _run_dir(tmp_path, "cifar10/vgg16/swa-finetune/seed2-scale0.02", {"method": "swa", "seed": 2}, rows)
    _run_dir(tmp_path, "cifar10/vgg16/odd-name/x", {"method": "ema", "seed": 0}, rows[:1])
    (tmp_path / "cifar10/vgg16/sgd/seed0").mkdir(parents=True)  # claimed, no metrics yet: not a run here
    (tmp_path / "cifar10/vgg16/sgd/seed0/config.yaml").write_text("config: {run: {method: sgd, seed: 0}}\n")
    runs = r.runs_under(tmp_path)
    assert [records.dir for records in runs] == sorted([variant, tmp_path / "cifar10/vgg16/odd-name/x"])
    by_method = {r.method_of(records): records for records in runs}
    assert set(by_method) == {"swa", "ema"} and r.seed_of(by_method["swa"]) == "seed2"
    assert by_method["swa"].read_metrics() == rows
    assert r.summary_of(by_method["swa"]) is None  # not ended yet
    (variant / "summary.json").write_text(json.dumps({"method": "swa", "results": {"swa": 60.0}}))
    assert r.summary_of(by_method["swa"])["results"] == {"swa": 60.0}
    (variant / "config.yaml").unlink()  # the summary names the method too
    assert r.method_of(by_method["swa"]) == "swa"
    assert r.runs_under(tmp_path / "missing") == []


def test_where_tqdm_is_missing_the_runs_get_the_stand_in(tmp_path, monkeypatch, capsys):
    modules, check, report, sizes = (_gpu_check(m) for m in ("modules", "check", "report", "sizes"))
    c = check.Check(sizes.REHEARSAL, tmp_path, tmp_path, time.monotonic() + 60, report.Report(tmp_path))
    real = modules.importlib.util.find_spec
    monkeypatch.setattr(modules.importlib.util, "find_spec", lambda name: None if name == "tqdm" else real(name))
    modules.check_modules(c)
    assert "tqdm is not installed" in capsys.readouterr().out and c.stand_ins is not None
    assert c.env()["PYTHONPATH"].split(os.pathsep)[:2] == [str(c.stand_ins), str(REPO)]
    # What the trainer uses of tqdm: the iterable through, a context, write; no bars.
    code = (
        "from tqdm import tqdm\n"
        "with tqdm(total=3) as bar:\n"
        "    bar.update(1)\n"
        "tqdm.write('epoch line')\n"
        "print(list(tqdm(range(3), desc='x', leave=False)), tqdm.__module__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-B", "-c", code], env={**os.environ, **c.env()}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["epoch line", "[0, 1, 2] tqdm"] and not done.stderr


# Two to three minutes of ~22 processes starting torch: in `make test-slow` (run it before lending the
# script a GPU), so that `make test` stays near its time budget; its arithmetic is tested above in CI.
@pytest.mark.integration
@pytest.mark.slow
def test_rehearsal_runs_every_stage_and_returns_small_flat_files(tmp_path):
    out, scratch_root = tmp_path / "out", tmp_path / "tmp"
    scratch_root.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "OUT"}  # OUT would take precedence over the argument
    env["TMPDIR"] = str(scratch_root)  # the scratch folder goes there, and must be gone at the end
    began = time.monotonic()
    done = subprocess.run(
        [str(REPO / "scripts/gpu_check.sh"), "--rehearse", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - began
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    for stage in "abc":
        assert f"--- stage {stage}: PASSED" in done.stdout
    files = list(out.iterdir())
    assert files and all(f.is_file() for f in files), "OUT must be flat"
    assert not [f for f in files if f.suffix == ".pt"]
    assert all(f.stat().st_size < 1_000_000 for f in files), [(f.name, f.stat().st_size) for f in files]
    names = {f.name for f in files}
    assert {
        "summary.json",
        "gpu_check.log",
        "data.json",
        "a-stage.json",
        "a-smoke.json",
        "b-stage.json",
        "b-bench-vgg16.json",
        "b-bench-preresnet164.json",
        "c-stage.json",
        "c-plan.json",
        "c-result.json",
        "c-table.md",
        "c-table.csv",
        "c-sgd-metrics.jsonl",
        "c-swa-metrics.jsonl",
    } <= names
    assert {
        f"a-{item}-metrics.jsonl" for item in ("sgd", "swa", "ema", "resume", "bf16", "compile", "channels_last")
    } <= names
    assert not list(scratch_root.glob("gpu_check-*"))  # the runs and their checkpoints were removed
    print(f"rehearsal: {seconds:.0f} s")
