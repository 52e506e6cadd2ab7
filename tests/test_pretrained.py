"""Pretrained weights: from a local path, checked against torchvision's file, missing with a line
saying how to provide them, and old DenseNet keys."""

import pytest
import torch
import torchvision
from click.testing import CliRunner
from conftest import IMAGENET_CONFIG

from swa_bench.cli import main
from swa_bench.config import ModelConfig
from swa_bench.models.pretrained import WeightsError, load_pretrained

# --------------------------------------------------------------------------------------------------
# Weights


def test_weights_load_from_a_local_path(weights_file):
    model = torchvision.models.resnet18(num_classes=4)
    record = load_pretrained(
        model, ModelConfig("resnet18", weights="IMAGENET1K_V1", weights_path=str(weights_file), verify_weights=False)
    )
    saved = torch.load(weights_file, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert record["verified"] is False and record["documented_acc1"] is None  # not torchvision's file


def test_a_file_that_is_not_torchvisions_is_refused(weights_file):
    with pytest.raises(WeightsError, match="sha256 starts .*, not f37072fd.*verify_weights=false"):
        load_pretrained(
            torchvision.models.resnet18(num_classes=4),
            ModelConfig("resnet18", weights="IMAGENET1K_V1", weights_path=str(weights_file)),
        )


def test_missing_weights_say_how_to_provide_them(tmp_path, tiny_imagenet, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--config",
            str(IMAGENET_CONFIG),
            "--method",
            "sgd",
            "--data-path",
            str(tiny_imagenet),
            "--out",
            str(tmp_path / "runs"),
            "--device",
            "cpu",
            "--set",
            "data.num_classes=4",
        ],
    )
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "resnet50-0676ba61.pth" in line and "--weights PATH" in line and "--download" in line


def test_old_densenet_checkpoint_keys_are_renamed(tmp_path):
    torch.manual_seed(0)
    source = torchvision.models.densenet121(num_classes=4)
    old_style = {k.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): v for k, v in source.state_dict().items()}
    assert any("norm.1." in k for k in old_style)
    path = tmp_path / "densenet-old.pth"
    torch.save(old_style, path)
    target = torchvision.models.densenet121(num_classes=4)
    # densenet121 shares DenseNet161's checkpoint format; the registry's name only selects the URL.
    load_pretrained(
        target, ModelConfig("densenet161", weights="IMAGENET1K_V1", weights_path=str(path), verify_weights=False)
    )
    assert all(torch.equal(source.state_dict()[k], v) for k, v in target.state_dict().items())
