"""The PyramidNet and Shake-Shake rows: an SGD run, then SWA continuing from its final checkpoint
with a cyclical rate (docs/PROTOCOL.md §2), through the CLI on tiny data and tiny widths."""

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import REPO

from swa_bench.cli import main
from swa_bench.config import load_config
from swa_bench.models import create_model
from swa_bench.records import RunRecords

# Small networks of the same families, so CPU runs take seconds.
ROWS = {
    "cifar100/pyramidnet272": [
        "--budget-scale",
        "0.02",
        "--set",
        "model.options.depth=11",
        "--set",
        "model.options.alpha=12",
    ],
    "cifar10/shakeshake26_2x64d": [
        "--budget-scale",
        "0.002",
        "--set",
        "model.options.depth=8",
        "--set",
        "model.options.width=8",
        "--set",
        "optim.batch_size=32",
    ],
}
COMMON = ["--device", "cpu", "--quiet", "--set", "data.verify_checksums=false", "--set", "data.workers=0"]


def train(row, method, data, out, *extra):
    args = [
        "train",
        "--config",
        str(REPO / "configs" / f"{row}.yaml"),
        "--method",
        method,
        "--data-path",
        str(data),
        "--out",
        str(out),
        *ROWS[row],
        *COMMON,
        *extra,
    ]
    return CliRunner().invoke(main, args)


def data_for(row, request):
    return request.getfixturevalue("tiny_" + row.split("/")[0])


def run_dir(out, row, method):
    dataset, model = row.split("/")
    return out / dataset / model / method / f"seed0-scale{ROWS[row][1]}"


@pytest.mark.parametrize("row", sorted(ROWS))
def test_sgd_then_swa_continuation_end_to_end(tmp_path, request, row):
    data, out = data_for(row, request), tmp_path / "runs"
    sgd = train(row, "sgd", data, out)
    assert sgd.exit_code == 0, sgd.output
    swa = train(row, "swa", data, out)
    assert swa.exit_code == 0, swa.output

    sgd_summary = json.loads((run_dir(out, row, "sgd") / "summary.json").read_text())
    summary = json.loads((run_dir(out, row, "swa") / "summary.json").read_text())
    B = sgd_summary["epochs"]
    assert summary["first_epoch"] == B and summary["start_point"] == {"run": str(run_dir(out, row, "sgd")), "epoch": B}
    assert list(summary["results"]) == ["swa_1.25", "swa_1.5"]
    note = load_config(REPO / "configs" / f"{row}.yaml").swa.note
    assert summary["note"] == note and "SWA paper" in note and "arXiv v1" in note

    rows = RunRecords(run_dir(out, row, "swa")).read_metrics()
    assert [r["epoch"] for r in rows] == list(range(B + 1, summary["epochs"] + 1))
    # One model per cycle: 3 or 100 epochs at full size, one epoch at these scales.
    assert [r["swa_count"] for r in rows] == list(range(1, len(rows) + 1))
    alpha2 = load_config(REPO / "configs" / f"{row}.yaml").swa.alpha2
    assert all(r["lr_end"] == pytest.approx(alpha2) for r in rows)  # each epoch ends a cycle at its low point
    for name in ("swa_1.25", "swa_1.5"):
        assert (run_dir(out, row, "swa") / "checkpoints" / f"{name}.pt").exists()

    table = CliRunner().invoke(main, ["table", str(out)])
    assert table.exit_code == 0, table.output
    lines = [line for line in table.output.splitlines() if line.startswith("| ")]
    header, cells = ([c.strip() for c in line.strip("|").split("|")] for line in lines[:2])
    # The paper has SGD and SWA 1.25 and 1.5 budgets for these rows (arXiv v1): only they get a paper and a Δ
    # column. The tables also show the FGE and SWA 1 B columns of the paper's other rows ("–" here).
    assert header[2:] == [
        "SGD",
        "paper",
        "Δ",
        "FGE 1 B",
        "SWA 1 B",
        "SWA 1.25 B",
        "paper",
        "Δ",
        "SWA 1.5 B",
        "paper",
        "Δ",
    ]
    assert "†" in cells[0] and cells[5] == cells[6] == "–"  # no FGE run; SWA 1 budget: in neither
    assert all(cell != "–" for cell in cells[7:13])  # SWA 1.25 and 1.5: measured, the paper's, Δ
    assert f"† {note}" in table.output  # the SWA setting's note, as the footnote of the row


def test_continuation_starts_from_the_sgd_weights(tmp_path, tiny_cifar100):
    row, out = "cifar100/pyramidnet272", tmp_path / "runs"
    assert train(row, "sgd", tiny_cifar100, out).exit_code == 0
    # A rate so small that the continued weights stay where SGD left them.
    tiny_rate = ["--set", "swa.alpha1=1e-12", "--set", "swa.alpha2=1e-12"]
    result = train(row, "swa", tiny_cifar100, out, *tiny_rate)
    assert result.exit_code == 0, result.output
    sgd_state = RunRecords(run_dir(out, row, "sgd")).load_checkpoint("last")["model"]
    swa_state = RunRecords(run_dir(out, row, "swa")).load_checkpoint("last")["model"]
    weights = [k for k, v in sgd_state.items() if v.is_floating_point() and "running" not in k]
    assert all(torch.allclose(sgd_state[k], swa_state[k], atol=1e-7) for k in weights)
    # Not vacuous: SGD moved its weights away from the seed's initial ones, which a run from scratch has.
    torch.manual_seed(0)
    initial = create_model("pyramidnet272", 100, depth=11, alpha=12).state_dict()
    assert not all(torch.allclose(sgd_state[k], initial[k], atol=1e-3) for k in weights)


def _one_line_error(result, *phrases):
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert line.startswith("error: ") and "\n" not in line and "Traceback" not in line
    for phrase in phrases:
        assert phrase in line, line


def test_missing_sgd_run_is_a_one_line_error(tmp_path, tiny_cifar100):
    result = train("cifar100/pyramidnet272", "swa", tiny_cifar100, tmp_path / "runs")
    _one_line_error(result, "no SGD run to continue from", "--method sgd --seed 0")


def test_unfinished_sgd_run_is_refused(tmp_path, tiny_cifar100):
    row, out = "cifar100/pyramidnet272", tmp_path / "runs"
    assert train(row, "sgd", tiny_cifar100, out).exit_code == 0
    (run_dir(out, row, "sgd") / "summary.json").unlink()
    _one_line_error(train(row, "swa", tiny_cifar100, out), "has not finished")


def test_sgd_run_of_another_protocol_is_refused(tmp_path, tiny_cifar100):
    row, out = "cifar100/pyramidnet272", tmp_path / "runs"
    assert train(row, "sgd", tiny_cifar100, out, "--set", "optim.weight_decay=0.0005").exit_code == 0
    _one_line_error(train(row, "swa", tiny_cifar100, out), "optim.weight_decay", "same protocol")
