"""Faults a long grid meets: kills at any moment (also mid-write), damaged checkpoints, signals from
a scheduler, divergence, a full disk, an unwritable output, and a second process on the same run."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import REPO

from swa_bench.cli import main
from swa_bench.outcomes import EXIT_PREEMPTED
from swa_bench.records import RunRecords, read_checkpoint

RUN = Path("digits/digits_cnn/swa/seed3-scale0.5-subset300")


def cli_args(out, *extra):
    return [
        "train",
        "--config",
        str(REPO / "configs/demo/digits.yaml"),
        "--method",
        "swa",
        "--seed",
        "3",
        "--out",
        str(out),
        "--budget-scale",
        "0.5",
        "--quiet",
        *extra,
    ]


def command(out, *extra):
    return [sys.executable, "-m", "swa_bench", *cli_args(out, *extra)]


def metrics(out):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in RunRecords(Path(out) / RUN).read_metrics()]


def final_weights(out):
    return read_checkpoint(Path(out) / RUN / "checkpoints" / "swa_1.5.pt")["model"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run, and how long it took (process start included)."""
    out = tmp_path_factory.mktemp("reference")
    began = time.time()
    subprocess.run(command(out), check=True, capture_output=True)
    return out, time.time() - began


def assert_same_run(out, reference_out):
    assert metrics(out) == metrics(reference_out)
    ref, got = final_weights(reference_out), final_weights(out)
    assert all(torch.equal(ref[k], got[k]) for k in ref)


# --------------------------------------------------------------------------------------------------
# Kill anywhere


def test_random_kills_including_mid_write_end_in_the_uninterrupted_result(tmp_path, reference):
    """SIGKILL at random moments (writes slowed so that kills land inside them too), resume each time:
    the metrics and weights equal the uninterrupted run's bit for bit."""
    reference_out, duration = reference
    out, rng = tmp_path / "killed", random.Random(7)
    env = {**os.environ, "SWA_BENCH_WRITE_PAUSE": "0.05"}
    # First a kill aimed at a checkpoint write: as soon as its temporary file appears.
    proc = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while (
        proc.poll() is None and time.time() < deadline and not any((out / RUN / "checkpoints").glob(".last.pt.*.tmp"))
    ):
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before its first checkpoint write"
    proc.kill()
    proc.wait()
    kills, mid_write = 1, 1
    # Then kills at random moments, each run resuming the last, until one finishes.
    for _ in range(5):
        proc = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(0.3, duration / 2))
            break  # finished before this kill
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            kills += 1
            mid_write += any((out / RUN).rglob(".*.tmp"))
    subprocess.run(command(out), check=True, capture_output=True, env=env)
    assert kills >= 2
    assert not any((out / RUN).rglob(".*.tmp"))  # leftovers of killed writes are cleaned up
    assert_same_run(out, reference_out)
    print(f"kills survived: {kills}, of which mid-write: {mid_write}")


def test_kill_during_a_background_write_while_training_goes_on(tmp_path, reference):
    """Checkpoints are written by a background thread while the loop trains on: a kill once the loop
    has finished another epoch during a write still resumes to the uninterrupted run."""
    out = tmp_path / "killed"
    env = {**os.environ, "SWA_BENCH_WRITE_PAUSE": "4"}  # each write holds its temporary file for 4 s
    proc = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = RunRecords(out / RUN)
    deadline, moved_on = time.time() + 180, False
    while proc.poll() is None and time.time() < deadline and not moved_on:
        writing = list((out / RUN / "checkpoints").glob(".last.pt.*.tmp"))
        if writing:
            rows = len(records.read_metrics())
            while writing[0].exists() and proc.poll() is None and not moved_on:
                moved_on = len(records.read_metrics()) > rows and writing[0].exists()
                time.sleep(0.01)
        time.sleep(0.01)
    assert moved_on, "no epoch finished while a checkpoint was being written"
    proc.kill()
    proc.wait()
    subprocess.run(command(out), check=True, capture_output=True)
    assert_same_run(out, reference[0])


def _rerun_from(tmp_path, reference_out):
    """A copy of the finished reference run with its summary removed, so the next run resumes."""
    out = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(reference_out), str(out)], check=True)
    (out / RUN / "summary.json").unlink()
    return out


def test_damaged_newest_checkpoint_is_reported_and_the_previous_one_used(tmp_path, reference):
    reference_out, _ = reference
    out = _rerun_from(tmp_path, reference_out)
    last = out / RUN / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: len(last.read_bytes()) // 2])  # a truncated copy
    result = CliRunner().invoke(main, cli_args(out))
    assert result.exit_code == 0, result.output
    assert "last.pt: contents do not match their checksum" in result.output and "using previous.pt" in result.output
    assert_same_run(out, reference_out)


def test_no_intact_checkpoint_is_one_line_error(tmp_path, reference):
    out = _rerun_from(tmp_path, reference[0])
    for name in ("last.pt", "previous.pt"):
        path = out / RUN / "checkpoints" / name
        data = bytearray(path.read_bytes())
        data[-10] ^= 0xFF  # one flipped byte
        path.write_bytes(bytes(data))
    result = CliRunner().invoke(main, cli_args(out))
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no intact checkpoint is left" in errors[0]


# --------------------------------------------------------------------------------------------------
# Signals from a scheduler


@pytest.mark.parametrize(
    "sig,loader", [(signal.SIGTERM, "device"), (signal.SIGUSR1, "device"), (signal.SIGTERM, "torch")]
)
def test_stop_signal_checkpoints_mid_epoch_and_resumes_exactly(tmp_path, reference, sig, loader):
    extra = ["--set", f"data.loader={loader}"]
    reference_out = reference[0]  # the demo config's loader: the device one
    if loader != "device":
        reference_out = tmp_path / "reference"
        subprocess.run(command(reference_out, *extra), check=True, capture_output=True)
    out = tmp_path / "stopped"
    proc = subprocess.Popen(command(out, *extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics_file = out / RUN / "metrics.jsonl"
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and not (metrics_file.exists() and metrics_file.read_text()):
        time.sleep(0.01)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PREEMPTED, output
    assert f"stopped by {sig.name}" in output
    state = RunRecords(out / RUN).load_checkpoint("last")
    assert state["partial"]["step"] >= 1  # within an epoch
    done = subprocess.run(command(out, *extra), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "steps of" in done.stdout + done.stderr  # "resuming after epoch k and s steps of n"
    assert_same_run(out, reference_out)


# --------------------------------------------------------------------------------------------------
# Divergence


def test_divergence_stops_the_run_and_is_recorded(tmp_path):
    result = CliRunner().invoke(main, cli_args(tmp_path, "--set", "optim.lr_init=1e30"))
    assert result.exit_code == 3, result.output
    summary = json.loads((tmp_path / RUN / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["diverged_epoch"] >= 1 and summary["results"] == {}
    assert len(RunRecords(tmp_path / RUN).read_metrics()) == summary["diverged_epoch"]
    again = CliRunner().invoke(main, cli_args(tmp_path, "--set", "optim.lr_init=1e30"))
    assert again.exit_code == 0 and "already finished" in again.output  # a result, not retried
    table = CliRunner().invoke(main, ["table", str(tmp_path), "--format", "csv"])
    assert table.exit_code == 0, table.output
    rows = [line.split(",") for line in table.output.strip().splitlines()]
    header, body = rows[0], rows[1:]
    assert {r[header.index("column")] for r in body} == {"swa_1", "swa_1.25", "swa_1.5"}
    assert all(r[header.index("n")] == "0" and r[header.index("diverged")] == "1" for r in body)


# --------------------------------------------------------------------------------------------------
# Disk and permissions


def test_unwritable_output_is_one_line_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(main, cli_args(blocker / "runs"))
    assert result.exit_code == 2
    line = result.output.strip()
    assert line.startswith("error: ") and "cannot write" in line and "\n" not in line and "Traceback" not in line


def test_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, reference, monkeypatch):
    import swa_bench.record_files as records

    reference_out, _ = reference
    real_fdopen, writes = os.fdopen, {"n": 0}

    def fdopen(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        if name.startswith(".last.pt.") and not name.startswith(".last.pt.sha256."):  # the payload, not its sidecar
            writes["n"] += 1
            if writes["n"] == 3:  # the third checkpoint finds the disk full

                def full(data):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

                handle.write = full
        return handle

    monkeypatch.setattr(records.os, "fdopen", fdopen)
    result = CliRunner().invoke(main, cli_args(tmp_path))
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors and "cannot write (No space left on device); the previous version is intact" in errors[0]
    state = RunRecords(tmp_path / RUN).load_checkpoint("last")
    assert state["epoch"] == 2 and not list((tmp_path / RUN).rglob(".*.tmp"))
    monkeypatch.undo()
    assert CliRunner().invoke(main, cli_args(tmp_path)).exit_code == 0  # space again: it resumes
    assert_same_run(tmp_path, reference_out)


# --------------------------------------------------------------------------------------------------
# Concurrency


def test_second_train_on_a_run_in_use_is_refused_and_a_killed_holder_leaves_no_lock(tmp_path, reference):
    reference_out, _ = reference
    proc = subprocess.Popen(command(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    config = tmp_path / RUN / "config.yaml"
    deadline = time.time() + 60
    while proc.poll() is None and time.time() < deadline and not config.exists():
        time.sleep(0.01)
    second = CliRunner().invoke(main, cli_args(tmp_path))
    assert proc.poll() is None, "the first run ended too soon"
    assert second.exit_code == 69, second.output  # in use: not a failure of this run
    assert f"in use by swa-bench train pid {proc.pid}" in second.output
    proc.kill()
    proc.wait()
    third = CliRunner().invoke(main, cli_args(tmp_path))
    assert third.exit_code == 0, third.output
    assert_same_run(tmp_path, reference_out)


def test_table_while_a_run_is_going_reads_finished_runs_only(tmp_path, reference):
    reference_out, _ = reference
    out = _rerun_from(tmp_path, reference_out)
    (out / "other").mkdir()
    (out / "other" / "summary.json").write_text('{"status": "finis')  # not ours, cut short
    result = CliRunner().invoke(main, ["table", str(out)])
    assert result.exit_code == 1 and "no finished runs yet" in result.output
    assert "other/summary.json: skipped, unreadable" in result.output
