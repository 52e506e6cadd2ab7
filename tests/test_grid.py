"""Whole tables: the grid locally (parallel runs, kill and rerun, a failing row), through submitit's
local executor with a simulated preemption, and `status`."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, kill_process_tree, process_children

from swa_bench.cli import main
from swa_bench.grid.plan import build_plan
from swa_bench.grid.slurm import SlurmResources, submit
from swa_bench.grid.status import grid_states

# The demo table has two rows (digits CNN and digits MLP); x 3 methods (SGD, SWA, EMA) x 2 seeds at a quarter budget.
TINY = ["--table", "demo", "--seeds", "2", "--budget-scale", "0.25"]


def grid_command(out, *extra):
    return [sys.executable, "-m", "swa_bench", "grid", *TINY, "--out", str(out), *extra]


def table_csv(out) -> str:
    result = CliRunner().invoke(main, ["table", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def reference_grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    done = subprocess.run(grid_command(out, "--jobs", "2"), capture_output=True, text=True)
    return out, done


def test_tiny_grid_runs_two_jobs_at_once_and_ends_with_the_table(reference_grid):
    out, done = reference_grid
    assert done.returncode == 0, done.stderr
    assert "16 to run, 2 at a time" in done.stderr  # 2 rows x (SGD, SWA, EMA, FGE) x 2 seeds
    assert "digits CNN (20)" in done.stdout and "digits MLP (20)" in done.stdout  # the table at the end
    assert done.stdout.count("(n=2)") == 12  # 2 rows x 6 columns, 2 seeds each
    states = grid_states(out)
    assert len(states) == 16 and {s.state for s in states} == {"done"}
    again = subprocess.run(grid_command(out), capture_output=True, text=True)
    assert again.returncode == 0 and "16 already finished, 0 to run" in again.stderr


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "digits_cnn-cpu.json").write_text(json.dumps({"settings": {"model": "digits_cnn"}, "train_img_s": 300.0}))
    result = CliRunner().invoke(main, ["grid", *TINY, "--out", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "digits/digits_cnn/swa/seed1-scale0.25-subset300" in result.output and "16 runs, 76 epochs" in result.output
    assert "digits/digits_mlp" in result.output and "from `swa-bench bench` figures" in result.output
    assert not (tmp_path / "digits").exists()


def test_grid_killed_mid_run_then_rerun_gives_the_same_table(tmp_path, reference_grid):
    reference_out, _ = reference_grid
    out = tmp_path / "killed"
    proc = subprocess.Popen(grid_command(out, "--jobs", "2"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        if any(p.read_text().count("\n") >= 2 for p in out.rglob("metrics.jsonl")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the grid ended before it could be killed"
    kill_process_tree(proc.pid)  # the grid and the runs it started
    proc.wait()
    assert any(s.state in ("stopped", "pending") for s in grid_states(out))
    rerun = subprocess.run(grid_command(out, "--jobs", "2"), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert table_csv(out) == table_csv(reference_out)


def test_failing_row_is_reported_and_the_others_finish(tmp_path):
    configs = tmp_path / "configs" / "demo"
    configs.mkdir(parents=True)
    (configs / "digits.yaml").write_text((REPO / "configs/demo/digits.yaml").read_text())
    broken = (REPO / "configs/demo/digits_mlp.yaml").read_text().replace("train_subset: 300", "train_subset: 5000")
    (configs / "digits_mlp.yaml").write_text(broken)  # loads, but there are not 5000 training images
    (configs / "zz_not_yaml.yaml").write_text("data: [1, 2\n")
    out = tmp_path / "runs"
    result = CliRunner().invoke(
        main,
        [
            "grid",
            "--table",
            "demo",
            "--seeds",
            "1",
            "--budget-scale",
            "0.25",
            "--out",
            str(out),
            "--configs",
            str(tmp_path / "configs"),
        ],
    )
    assert result.exit_code == 1
    assert "zz_not_yaml.yaml: not valid YAML" in result.output
    states = {s.run: s for s in grid_states(out)}
    assert all(
        states[f"digits/digits_cnn/{m}/seed0-scale0.25-subset300"].state == "done" for m in ("sgd", "swa", "ema", "fge")
    )
    failed = [s for s in states.values() if s.state == "failed"]
    assert len(failed) == 7  # the four MLP runs, and the unloadable row's three
    assert any("data.train_subset=5000 exceeds" in s.detail for s in failed)
    status = CliRunner().invoke(main, ["status", str(out)])
    assert status.exit_code == 0 and "7 failed" in status.output and "4 done" in status.output
    table = CliRunner().invoke(main, ["table", str(out)])
    assert table.exit_code == 0 and "digits CNN (20)" in table.output
    assert (
        "digits/digits_mlp/sgd/seed0-scale0.25-subset5000: failed, not in the table: error: data.train_subset=5000"
        in table.output
    )


def test_submitit_local_executor_requeues_a_preempted_run_which_resumes(tmp_path, reference_grid, monkeypatch):
    reference_out, _ = reference_grid
    # The reference grid ran two jobs at once, each with cores // 2 threads; CPU results depend on
    # the thread count (summation order), so the submitit tasks get as many.
    monkeypatch.setenv("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // 2)))
    out = tmp_path / "submitit"
    plan = build_plan("demo", REPO / "configs", out, seeds=1, rows=["digits"], budget_scale=0.25)
    # Without the FGE run: the local executor submits continuations only once the first array has
    # ended, so submit() would return after the SWA run it is to preempt.
    plan.runs = [spec for spec in plan.runs if spec.method != "fge"]
    plan.write()
    jobs = submit(plan, SlurmResources(time_min=60), executor="local", say=lambda line: None)
    assert len(jobs) == 3
    swa_job = next(job for job, spec in zip(jobs, plan.runs) if spec.method == "swa")
    checkpoint = out / "digits/digits_cnn/swa/seed0-scale0.25-subset300/checkpoints/last.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and not swa_job.done():
        time.sleep(0.02)
    assert not swa_job.done(), "the run ended before it could be preempted"
    # What SLURM does before preempting: USR2 to the task (submitit's local controller is its parent).
    (task,) = process_children().get(swa_job._process.pid, [])
    os.kill(task, signal.SIGUSR2)
    for job in jobs:
        job.wait()
    log = (out / "logs" / "digits-digits_cnn-swa-seed0-scale0.25-subset300.log").read_text()
    assert "stopped by SIGTERM" in log and "resuming after epoch" in log
    assert {s.state for s in grid_states(out)} == {"done"}
    for method in ("sgd", "swa", "ema"):
        run = Path("digits/digits_cnn") / method / "seed0-scale0.25-subset300"
        got = json.loads((out / run / "summary.json").read_text())["results"]
        assert got == json.loads((reference_out / run / "summary.json").read_text())["results"]


def test_a_grid_on_busy_cores_says_so(monkeypatch):
    from swa_bench.grid import local

    monkeypatch.setattr(local.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(local.os, "getloadavg", lambda: (2.1, 2.0, 1.9))
    assert local.cores_busy() == "the CPU is busy already (load average 2.1 on 2 cores)"
    monkeypatch.setattr(local.os, "getloadavg", lambda: (0.3, 0.2, 0.1))
    assert local.cores_busy() is None
