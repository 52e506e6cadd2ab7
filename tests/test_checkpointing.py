"""Rolling checkpoints written in the background: the snapshot, one write at a time, errors and the
cadence keys. A kill during a background write: tests/test_reliability.py."""

import time

import pytest
import torch
from click.testing import CliRunner

from swa_bench import records as records_module
from swa_bench.checkpointing import CheckpointWriter, HostSnapshot
from swa_bench.cli import main
from swa_bench.records import RecordsWriteError, RunRecords, read_checkpoint

from conftest import REPO


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
        raise RecordsWriteError(f"{self.checkpoint_path('last')}: cannot write (No space left on device); "
                                "the previous version is intact")

    monkeypatch.setattr(RunRecords, "save_checkpoint", full_disk)
    writer.save(state_of(model, optimizer, 2))  # fails in the background...
    with pytest.raises(RecordsWriteError, match="last.pt: cannot write"):
        writer.save(state_of(model, optimizer, 3))  # ...and is reported here, naming the file
    monkeypatch.undo()
    assert read_checkpoint(records.checkpoint_path("last"))["epoch"] == 1
    writer.save(state_of(model, optimizer, 4))
    writer.wait()  # the error was reported once; writing works again
    assert read_checkpoint(records.checkpoint_path("last"))["epoch"] == 4


DEMO = ["train", "--config", str(REPO / "configs/demo/digits.yaml"), "--method", "sgd", "--budget-scale", "0.25",
        "--quiet"]


@pytest.mark.parametrize("cadence,expect_previous", [
    (["--set", "run.checkpoint_every=1"], True),  # every epoch
    (["--set", "run.checkpoint_every=null", "--set", "run.checkpoint_minutes=0.00001"], True),  # time is always up
    (["--set", "run.checkpoint_every=null", "--set", "run.checkpoint_minutes=600"], False),  # only the end writes
])
def test_checkpoint_cadence_keys(tmp_path, cadence, expect_previous):
    result = CliRunner().invoke(main, DEMO + ["--out", str(tmp_path), *cadence])
    assert result.exit_code == 0, result.output
    checkpoints = tmp_path / "digits/digits_cnn/sgd/seed0/checkpoints"
    assert read_checkpoint(checkpoints / "last.pt")["epoch"] == 5  # the end always writes
    assert (checkpoints / "previous.pt").exists() == expect_previous


def test_bad_cadence_values_are_config_errors(tmp_path):
    for key, value in (("run.checkpoint_minutes", "0"), ("run.checkpoint_every", "-2"), ("run.checkpoint_minutes", "x")):
        result = CliRunner().invoke(main, DEMO + ["--out", str(tmp_path), "--set", f"{key}={value}"])
        assert result.exit_code == 2 and key in result.output
