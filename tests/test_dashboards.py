"""TensorBoard and Weights & Biases mirror metrics.jsonl, and a resumed run doubles no step."""

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import digits_args

from swa_bench.cli import main
from swa_bench.records import RunRecords

RUN = Path("digits/digits_cnn/swa/seed0-scale0.25-subset300")


def _train(out, *extra):
    result = CliRunner().invoke(
        main,
        digits_args(out, "swa", *extra),
    )
    assert result.exit_code == 0, result.output
    return result.output


def _train_then_resume_the_last_epoch(out, *extra):
    """A finished run, then the same run resumed from its previous checkpoint: the last epoch runs
    again and its row is written twice."""
    _train(out, *extra)
    run = out / RUN
    (run / "summary.json").unlink()
    for name in ("last.pt", "last.pt.sha256"):
        (run / "checkpoints" / name).unlink(missing_ok=True)
    _train(out, *extra)
    return RunRecords(run).read_metrics()


def _by_epoch(rows, key):
    return {r["epoch"]: r[key] for r in rows if key in r}


def test_tensorboard_holds_every_row_once_after_a_resume(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows = _train_then_resume_the_last_epoch(tmp_path, "--log", "tensorboard")
    folder = tmp_path / RUN / "tensorboard"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 2  # the first process's and the resumed one's
    events = EventAccumulator(str(folder))
    events.Reload()
    for tag, key in (
        ("train/loss", "train_loss"),
        ("test/acc", "test_acc"),
        ("swa_test/acc", "swa_test_acc"),
        ("lr", "lr"),
    ):
        scalars = events.Scalars(tag)
        steps = [s.step for s in scalars]
        assert steps == sorted(set(steps)), f"{tag}: doubled or unordered steps {steps}"
        expected = _by_epoch(rows, key)
        assert steps == sorted(expected)
        assert all(s.value == pytest.approx(expected[s.step], rel=1e-6) for s in scalars)  # float32 in the file
    assert "config" in {tag.split("/")[0] for tag in events.Tags()["tensors"]}  # the resolved config as text


def _wandb_history(run_dir: Path) -> list[tuple[int, dict]]:
    """(step, items) of every history record in the offline .wandb files: LevelDB-style log records
    (7-byte file header, 32 KiB blocks, 7-byte record headers) holding wandb's Record protobufs."""
    from wandb.proto import wandb_internal_pb2

    history = []
    for path in sorted(run_dir.glob("wandb/offline-run-*/*.wandb")):
        data, pos, block, chunk = path.read_bytes(), 7, 32768, b""
        while pos + 7 <= len(data):
            left = block - pos % block
            length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
            if left < 7 or kind == 0:  # block trailer or padding
                pos += left
                continue
            chunk += data[pos + 7 : pos + 7 + length]
            pos += 7 + length
            if kind in (1, 4):  # a full record, or the last piece of one
                record = wandb_internal_pb2.Record()
                record.ParseFromString(chunk)
                chunk = b""
                if record.WhichOneof("record_type") == "history":
                    items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
                    history.append((record.history.step.num, items))
    return history


def test_wandb_offline_holds_every_row_once_after_a_resume(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    rows = _train_then_resume_the_last_epoch(
        tmp_path, "--log", "wandb", "--set", "log.wandb_mode=offline", "--set", "log.wandb_project=swa-bench-tests"
    )
    history = _wandb_history(tmp_path / RUN)
    assert [step for step, _ in history] == [r["epoch"] for r in rows]  # each epoch once, in order
    for (step, items), row in zip(history, rows):
        assert items["train/loss"] == pytest.approx(row["train_loss"])
        assert items.get("swa_test/acc") == (pytest.approx(row["swa_test_acc"]) if "swa_test_acc" in row else None)
    state = json.loads((tmp_path / RUN / "wandb.json").read_text())
    assert state["through"] == rows[-1]["epoch"]  # one run id, resumed


def test_a_dashboard_that_cannot_start_is_a_warning_not_a_failure(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    output = _train(tmp_path, "--log", "wandb")
    assert "log.to: Weights & Biases is not installed" in output and "pip install 'swa-bench[wandb]'" in output
    assert RunRecords(tmp_path / RUN).is_finished()
