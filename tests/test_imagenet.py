"""The ImageNet rows (Table 2): their protocol, and SWA from pretrained weights through the CLI on a tiny
ImageNet-layout tree with a small stand-in model."""

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import IMAGENET_CONFIG, REPO, imagenet_cli, imagenet_run_dir

from swa_bench.averaging import WeightAverage
from swa_bench.cli import main
from swa_bench.config import load_config
from swa_bench.protocol import resolve_protocol
from swa_bench.records import RunRecords

# --------------------------------------------------------------------------------------------------
# The protocol


def test_imagenet_configs_follow_spec():
    for name in ("resnet50", "resnet152", "densenet161"):
        cfg = load_config(REPO / f"configs/imagenet/{name}.yaml")
        assert cfg.model.weights == "IMAGENET1K_V1" and cfg.swa.include_start
        assert (cfg.swa.alpha1, cfg.swa.alpha2, cfg.swa.c_epochs) == (1e-3, 1e-5, 1)
        assert (cfg.optim.batch_size, cfg.optim.weight_decay, cfg.optim.momentum) == (256, 1e-4, 0.9)
        assert cfg.data.augment == ("resized_crop", "flip") and (cfg.data.image_size, cfg.data.test_resize) == (
            224,
            256,
        )
        swa = resolve_protocol(load_config(REPO / f"configs/imagenet/{name}.yaml", {"run.method": "swa"}))
        assert swa.epochs == 10 and swa.report_points == {"swa_5ep": 5, "swa_10ep": 10}
        sgd = resolve_protocol(load_config(REPO / f"configs/imagenet/{name}.yaml", {"run.method": "sgd"}))
        assert sgd.epochs == 0 and sgd.report_points == {"sgd": 0}


def test_cyclical_rate_per_iteration_with_one_epoch_cycles():
    proto = resolve_protocol(load_config(IMAGENET_CONFIG, {"run.method": "swa"}))
    steps = 5005  # 1,281,167 images in batches of 256
    for epoch in (0, 4, 9):
        assert proto.lr(epoch, 0, steps) == pytest.approx(1e-3 - (1e-3 - 1e-5) / steps)
        assert proto.lr(epoch, steps // 2 - 1, steps) == pytest.approx(1e-3 + (1e-5 - 1e-3) * (steps // 2) / steps)
        assert proto.lr(epoch, steps - 1, steps) == pytest.approx(1e-5)
    assert [e for e in range(10) if proto.collects_after(e)] == list(range(10))


def test_average_includes_the_start_point_when_asked():
    start, later = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    average = WeightAverage(start)
    average.update(start)  # include_start: the pretrained point is the first member
    average.update(later)
    for a, s, w in zip(average.module.parameters(), start.parameters(), later.parameters()):
        torch.testing.assert_close(a, (s + w) / 2)


# --------------------------------------------------------------------------------------------------
# One process, end to end through the CLI


def test_pretrained_baseline_and_swa_end_to_end(tmp_path, tiny_imagenet, weights_file):
    out = tmp_path / "runs"
    sgd = imagenet_cli(tiny_imagenet, weights_file, out, "sgd")
    assert sgd.exit_code == 0, sgd.output
    rows = RunRecords(imagenet_run_dir(out, "sgd")).read_metrics()
    assert len(rows) == 1 and rows[0]["epoch"] == 0 and rows[0]["report"] == ["sgd"]  # evaluation only

    swa = imagenet_cli(tiny_imagenet, weights_file, out, "swa", "--budget-scale", "0.2")
    assert swa.exit_code == 0, swa.output
    rows = RunRecords(imagenet_run_dir(out, "swa")).read_metrics()
    assert [r["swa_count"] for r in rows] == [2, 3]  # the pretrained point, then one per epoch
    summary = json.loads((imagenet_run_dir(out, "swa") / "summary.json").read_text())
    assert list(summary["results"]) == ["swa_5ep", "swa_10ep"]
    assert summary["start_point"]["weights"] == "IMAGENET1K_V1" and summary["processes"] == 1

    table = CliRunner().invoke(main, ["table", str(out)])
    assert table.exit_code == 0, table.output
    assert "## ImageNet" in table.output
    header = next(line for line in table.output.splitlines() if line.startswith("| model"))
    assert [c.strip() for c in header.strip("|").split("|")][2:] == [
        "SGD (pretrained)",
        "SWA 5 epochs",
        "SWA 10 epochs",
    ]
    assert "weights file sha256" in table.output  # unverified weights are labelled


@pytest.mark.parametrize("workers", [0, 1])
def test_unreadable_image_is_named_or_skipped_and_counted(tmp_path, tiny_imagenet, weights_file, workers):
    bad = tiny_imagenet / "train" / "n01443537" / "0002.JPEG"
    bad.write_bytes(b"not a jpeg at all")
    common = ["--set", f"data.workers={workers}", "--budget-scale", "0.1"]
    stopped = imagenet_cli(tiny_imagenet, weights_file, tmp_path / "a", "swa", *common)
    assert stopped.exit_code == 2
    errors = [line for line in stopped.output.splitlines() if line.startswith("error")]
    assert errors == [
        f"error: {bad}: unreadable image (UnidentifiedImageError); "
        "--set data.skip_bad_images=true skips and counts such files"
    ]
    assert "Traceback" not in stopped.output
    skipped = imagenet_cli(
        tiny_imagenet, weights_file, tmp_path / "b", "swa", *common, "--set", "data.skip_bad_images=true"
    )
    assert skipped.exit_code == 0, skipped.output
    rows = RunRecords(imagenet_run_dir(tmp_path / "b", "swa")).read_metrics()
    assert rows[0]["skipped_images"] == 1


def test_image_of_wrong_class_count_is_a_clear_error(tmp_path, tiny_imagenet, weights_file):
    result = imagenet_cli(tiny_imagenet, weights_file, tmp_path / "runs", "sgd", "--set", "data.num_classes=5")
    assert result.exit_code == 2 and "4 class folders, but imagenet has 5 classes" in result.output
