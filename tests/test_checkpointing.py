"""Rolling checkpoints: a kill at each step of a rotation, damage, the old format; written in the
background: the snapshot, one write at a time, errors and the cadence keys. A kill during a
background write: tests/test_reliability.py."""

import hashlib
import os
import shutil
import time
import warnings

import pytest
import torch
from click.testing import CliRunner
from conftest import REPO

from swa_bench import record_files as records_module
from swa_bench.checkpointing import CheckpointWriter, HostSnapshot
from swa_bench.cli import main
from swa_bench.records import CorruptCheckpointError, RecordsWriteError, RunRecords, read_checkpoint, sidecar_of


def tiny_state(epoch):
    return {"epoch": epoch, "model": {"weights": torch.full((3,), float(epoch))}}


def write_old_format(path, state):
    """A checkpoint as written before the sidecars: magic line, sha256, torch.save payload."""
    payload = records_module.torch_bytes(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(records_module._MAGIC + hashlib.sha256(payload).digest() + payload)


def checkpoints_before(records, kind):
    """Rolling checkpoints of epochs 1.. as `kind` says; returns the newest epoch (None: none)."""
    if kind == "old format":
        write_old_format(records.checkpoint_path("previous"), tiny_state(1))
        write_old_format(records.checkpoint_path("last"), tiny_state(2))
        return 2
    count = {"none": 0, "one": 1, "two": 2}[kind]
    for epoch in range(1, count + 1):
        records.save_checkpoint(tiny_state(epoch))
    return count or None


def killed_copies(records, state, tmp_path, monkeypatch):
    """The run directory as a kill would leave it just before save_checkpoint(state)'s first rename
    and after each rename (copies, cleaned up as a resume does)."""
    real_replace, copies = os.replace, []

    def snapshot():
        copies.append(RunRecords(shutil.copytree(records.dir, tmp_path / f"killed{len(copies)}")))

    def replace(source, target):
        if not copies:
            snapshot()
        real_replace(source, target)
        snapshot()

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace)
        records.save_checkpoint(state)
    for copy in copies:
        copy.clean_partial_writes()
    return copies


def epoch_of(state):
    return None if state is None else state["epoch"]


def assert_verified_by_own_sidecar(path):
    if path.exists() and not path.read_bytes().startswith(records_module._MAGIC):
        assert torch.load(path, weights_only=True) is not None
        assert sidecar_of(path).read_text() == f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"


@pytest.mark.parametrize("before", ["none", "one", "two", "old format"])
def test_a_kill_at_any_step_of_a_rotation_leaves_the_newest_complete_checkpoint(tmp_path, monkeypatch, before):
    records = RunRecords(tmp_path / "run")
    newest = checkpoints_before(records, before)
    copies = killed_copies(records, tiny_state(3), tmp_path, monkeypatch)
    assert len(copies) == {"none": 3, "one": 5, "two": 5, "old format": 4}[before]  # one per rename, and before
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checkpoint reported damaged fails the test
        loaded = [epoch_of(copy.load_checkpoint("last")) for copy in copies]
    assert loaded == [newest] * (len(copies) - 1) + [3]
    # Resumed, the next checkpoint leaves both files with their own sidecars again: a kill does not
    # cost the fallback to previous.pt later.
    for copy, epoch in zip(copies, loaded):
        copy.save_checkpoint(tiny_state(4))
        last, previous = copy.checkpoint_path("last"), copy.checkpoint_path("previous")
        assert read_checkpoint(last)["epoch"] == 4
        assert epoch_of(read_checkpoint(previous) if previous.exists() else None) == epoch
        for path in (last, previous):
            assert_verified_by_own_sidecar(path)


@pytest.mark.parametrize("damage", ["truncated", "flipped byte"])
def test_a_damaged_checkpoint_is_reported_and_the_one_before_used(tmp_path, damage):
    records = RunRecords(tmp_path)
    checkpoints_before(records, "two")

    def spoil(path):
        data = bytearray(path.read_bytes())
        if damage == "truncated":
            del data[len(data) // 2 :]
        else:
            data[-10] ^= 0xFF
        path.write_bytes(bytes(data))

    spoil(records.checkpoint_path("last"))
    with pytest.warns(UserWarning, match="last.pt: contents do not match their checksum.*using previous.pt"):
        assert records.load_checkpoint("last")["epoch"] == 1
    spoil(records.checkpoint_path("previous"))
    with pytest.raises(CorruptCheckpointError, match="previous.pt: .*no intact checkpoint is left"):
        records.load_checkpoint("last")


def state_of(model, optimizer, epoch):
    return {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "partial": None}


def small_training_state():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.Linear(16, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 8)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_snapshot_is_a_copy_taken_at_save_time_into_reused_buffers():
    model, optimizer = small_training_state()
    snapshot = HostSnapshot()
    first = snapshot.take(state_of(model, optimizer, 1))
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # training goes on after the snapshot
    assert all(torch.equal(first["model"][k], expected[k]) for k in expected)
    momentum = optimizer.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(first["optimizer"]["state"][0]["momentum_buffer"], momentum)
    assert first["optimizer"]["state"][0]["momentum_buffer"] is not momentum
    second = snapshot.take(state_of(model, optimizer, 2))
    assert all(second["model"][k] is first["model"][k] for k in expected)  # the same buffers, reused
    assert second["epoch"] == 2 and second["optimizer"]["param_groups"] == optimizer.state_dict()["param_groups"]


def test_loop_is_not_held_by_the_write_but_the_next_checkpoint_waits_for_it(tmp_path, monkeypatch):
    monkeypatch.setattr(records_module, "_WRITE_PAUSE", 0.4)  # every write takes at least 0.4 s
    model, optimizer = small_training_state()
    records = RunRecords(tmp_path)
    with CheckpointWriter(records) as writer:
        began = time.perf_counter()
        writer.save(state_of(model, optimizer, 1))
        assert time.perf_counter() - began < 0.2  # handed over, not written
        assert not records.checkpoint_path("last").exists()
        writer.save(state_of(model, optimizer, 2))  # waits for the first write: at most one in flight
        assert time.perf_counter() - began >= 0.4
        assert read_checkpoint(records.checkpoint_path("last"))["epoch"] == 1
    # Leaving the writer waits for the last write.
    assert read_checkpoint(records.checkpoint_path("last"))["epoch"] == 2
    assert read_checkpoint(records.checkpoint_path("previous"))["epoch"] == 1
    assert len(writer.blocked_seconds) == len(writer.write_seconds) == 2


def test_a_failed_background_write_is_raised_at_the_next_checkpoint(tmp_path, monkeypatch):
    model, optimizer = small_training_state()
    records = RunRecords(tmp_path)
    writer = CheckpointWriter(records)
    writer.save(state_of(model, optimizer, 1), wait=True)

    def full_disk(self, state):
        raise RecordsWriteError(
            f"{self.checkpoint_path('last')}: cannot write (No space left on device); the previous version is intact"
        )

    monkeypatch.setattr(RunRecords, "save_checkpoint", full_disk)
    writer.save(state_of(model, optimizer, 2))  # fails in the background...
    with pytest.raises(RecordsWriteError, match="last.pt: cannot write"):
        writer.save(state_of(model, optimizer, 3))  # ...and is reported here, naming the file
    monkeypatch.undo()
    assert read_checkpoint(records.checkpoint_path("last"))["epoch"] == 1
    writer.save(state_of(model, optimizer, 4))
    writer.wait()  # the error was reported once; writing works again
    assert read_checkpoint(records.checkpoint_path("last"))["epoch"] == 4


DEMO = [
    "train",
    "--config",
    str(REPO / "configs/demo/digits.yaml"),
    "--method",
    "sgd",
    "--budget-scale",
    "0.25",
    "--quiet",
]


@pytest.mark.parametrize(
    "cadence,expect_previous",
    [
        (["--set", "run.checkpoint_every=1"], True),  # every epoch
        (["--set", "run.checkpoint_every=null", "--set", "run.checkpoint_minutes=0.00001"], True),  # time is always up
        (["--set", "run.checkpoint_every=null", "--set", "run.checkpoint_minutes=600"], False),  # only the end writes
    ],
)
def test_checkpoint_cadence_keys(tmp_path, cadence, expect_previous):
    result = CliRunner().invoke(main, DEMO + ["--out", str(tmp_path), *cadence])
    assert result.exit_code == 0, result.output
    checkpoints = tmp_path / "digits/digits_cnn/sgd/seed0-scale0.25-subset300/checkpoints"
    assert read_checkpoint(checkpoints / "last.pt")["epoch"] == 5  # the end always writes
    assert (checkpoints / "previous.pt").exists() == expect_previous


def test_bad_cadence_values_are_config_errors(tmp_path):
    for key, value in (
        ("run.checkpoint_minutes", "0"),
        ("run.checkpoint_every", "-2"),
        ("run.checkpoint_minutes", "x"),
    ):
        result = CliRunner().invoke(main, DEMO + ["--out", str(tmp_path), "--set", f"{key}={value}"])
        assert result.exit_code == 2 and key in result.output
