import pytest
import torch

from swa_bench.models import count_parameters, create_model, get_model_entry, model_names

# SPEC §3, to the unit.
SPEC_PARAMS = [
    ("vgg16", 10, 15_245_130),
    ("vgg16", 100, 15_291_300),
    ("preresnet164", 10, 1_703_258),
    ("preresnet164", 100, 1_726_388),
    ("wrn28x10", 10, 36_489_290),
    ("wrn28x10", 100, 36_546_980),
]


@pytest.mark.parametrize("name,classes,expected", SPEC_PARAMS)
def test_parameter_counts_match_spec(name, classes, expected):
    assert count_parameters(create_model(name, classes)) == expected


@pytest.mark.parametrize("name", ["vgg16", "preresnet164", "preresnet110", "wrn28x10"])
def test_cifar_models_map_images_to_logits(name):
    model = create_model(name, 100).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 100)


def test_preresnet_depths_follow_the_reference():
    # depth >= 44 -> bottleneck blocks, (depth - 2) / 9 per stage, as in the reference code.
    for name, per_stage in [("preresnet164", 18), ("preresnet110", 12)]:
        model = create_model(name, 10)
        assert [len(stage) for stage in model.stages] == [per_stage] * 3
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
        assert not any(c.bias is not None for c in convs)


def test_preresnet_projection_shortcut_has_no_bn_and_strides():
    model = create_model("preresnet164", 10)
    first_blocks = [stage[0] for stage in model.stages]
    assert [b.shortcut.stride for b in first_blocks] == [(1, 1), (2, 2), (2, 2)]
    assert [b.shortcut.out_channels for b in first_blocks] == [64, 128, 256]
    assert isinstance(model.stages[0][1].shortcut, torch.nn.Identity)


def test_wrn_keeps_reference_quirks_and_option():
    model = create_model("wrn28x10", 10)
    assert model.head[0].momentum == 0.9
    block = model.stages[1][0]
    assert block.residual[2].stride == (1, 1) and block.residual[6].stride == (2, 2)  # stride on the 2nd conv
    assert create_model("wrn28x10", 10, final_bn_momentum=0.1).head[0].momentum == 0.1


def test_vgg_has_no_batchnorm_and_reference_init():
    model = create_model("vgg16", 10)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    conv = model.features[0]
    assert torch.all(conv.bias == 0)
    expected_std = (2.0 / (3 * 3 * 64)) ** 0.5
    assert abs(conv.weight.std().item() - expected_std) < 0.15 * expected_std


def test_registry_lists_and_rejects():
    assert {"vgg16", "preresnet164", "preresnet110", "wrn28x10", "digits_cnn"} <= set(model_names())
    with pytest.raises(KeyError, match="unknown model"):
        get_model_entry("vgg61")
    assert "final_bn_momentum" in get_model_entry("wrn28x10").options()


def test_list_command_shows_configs_and_models():
    from click.testing import CliRunner

    from swa_bench.cli import main

    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == 0, result.output
    assert "configs/cifar100/preresnet164.yaml" in result.output and "configs/demo/digits.yaml" in result.output
    assert "15,245,130" in result.output and "36,489,290" in result.output
