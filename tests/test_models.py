import pytest
import torch
from conftest import REPO

from swa_bench.models import count_parameters, create_model, get_model_entry, model_names

REPO_CONFIGS = REPO / "configs"

# docs/PROTOCOL.md §3, to the unit.
PUBLISHED_PARAMS = [
    ("vgg16", 10, 15_245_130),
    ("vgg16", 100, 15_291_300),
    ("preresnet164", 10, 1_703_258),
    ("preresnet164", 100, 1_726_388),
    ("wrn28x10", 10, 36_489_290),
    ("wrn28x10", 100, 36_546_980),
    ("pyramidnet272", 10, 26_210_842),
]


@pytest.mark.parametrize("name,classes,expected", PUBLISHED_PARAMS)
def test_parameter_counts_match_spec(name, classes, expected):
    assert count_parameters(create_model(name, classes)) == expected


def test_shake_shake_has_about_11_65m_parameters():
    # docs/PROTOCOL.md §3 gives "11.65M"; the two-path shortcuts and BN make it 11,653,978 exactly.
    assert count_parameters(create_model("shakeshake26_2x64d", 10)) == 11_653_978


# docs/PROTOCOL.md §3: forward multiply-accumulates per 32x32 image, to the digits given there.
PUBLISHED_GMACS = [
    ("vgg16", 0.314),
    ("preresnet164", 0.248),
    ("wrn28x10", 5.95),
    ("pyramidnet272", 4.49),
    ("shakeshake26_2x64d", 1.69),
]


@pytest.mark.parametrize("name,gmacs", PUBLISHED_GMACS)
def test_forward_macs_match_spec(name, gmacs):
    from swa_bench.models.macs import forward_macs

    measured = forward_macs(create_model(name, 10)) / 1e9
    assert round(measured, len(str(gmacs).split(".")[1])) == gmacs


@pytest.mark.parametrize(
    "name", ["vgg16", "preresnet164", "preresnet110", "wrn28x10", "pyramidnet272", "shakeshake26_2x64d"]
)
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


def test_wrn_batchnorm_weights_start_as_in_the_papers_pytorch_unless_asked_otherwise():
    """The paper's runs (PyTorch <= 0.4) drew BN weights from U(0, 1); today's default is 1."""
    torch.manual_seed(0)
    default = create_model("wrn28x10", 10)
    weights = torch.cat([m.weight.detach() for m in default.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert weights.min() >= 0 and weights.max() <= 1
    assert abs(weights.mean().item() - 0.5) < 0.02 and abs(weights.std().item() - (1 / 12) ** 0.5) < 0.02
    assert all(torch.all(m.bias == 0) for m in default.modules() if isinstance(m, torch.nn.BatchNorm2d))
    ones = create_model("wrn28x10", 10, bn_weight_init="ones")
    assert all(torch.all(m.weight == 1) for m in ones.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_wrn_bn_weight_init_is_a_checked_config_option(tmp_path):
    from swa_bench.config import ConfigError, load_config

    cfg = load_config(REPO_CONFIGS / "cifar10/wrn28x10.yaml", {"model.options.bn_weight_init": "ones"})
    assert cfg.model.options == {"bn_weight_init": "ones"}
    with pytest.raises(ConfigError, match="model.options.bn_weight_init: must be one of uniform, ones"):
        load_config(REPO_CONFIGS / "cifar10/wrn28x10.yaml", {"model.options.bn_weight_init": "zeros"})


@pytest.mark.parametrize("make", [lambda: torch.nn.Linear(640, 400), lambda: torch.nn.Conv2d(160, 64, 3)])
def test_default_conv_and_linear_init_equal_pytorch_0_4s(make):
    """PyTorch 0.3/0.4 drew weights and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)); today's
    kaiming_uniform_(a=sqrt(5)) is the same distribution. Checked, since WRN and the VGG and PreResNet
    classifiers keep the default."""
    torch.manual_seed(0)
    layer = make()
    bound = layer.weight[0].numel() ** -0.5
    weight, bias = layer.weight.detach().flatten(), layer.bias.detach().flatten()
    for values in (weight, bias):
        assert values.abs().max() <= bound and values.abs().max() > 0.8 * bound  # the interval...
    assert abs(weight.mean().item()) < 0.01 * bound  # ...filled uniformly (many weights, tight figures)
    assert abs(weight.std().item() - bound / 3**0.5) < 0.01 * bound
    assert abs(bias.std().item() - bound / 3**0.5) < 0.2 * bound


def test_small_preresnets_have_basic_blocks():
    for name, per_stage in [("preresnet20", 3), ("preresnet32", 5)]:
        model = create_model(name, 10)
        assert [len(stage) for stage in model.stages] == [per_stage] * 3
        assert len(model.stages[0][0].residual) == 6  # two BN-ReLU-conv units
    assert 0.26e6 < count_parameters(create_model("preresnet20", 10)) < 0.28e6


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
    assert "cifar100/preresnet164 " in result.output and "demo/digits " in result.output  # names --config takes
    assert "15,245,130" in result.output and "36,489,290" in result.output


def _stage_outputs(model, x):
    shapes = []
    hooks = [stage.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape))) for stage in model.stages]
    with torch.no_grad():
        out = model.eval()(x)
    for h in hooks:
        h.remove()
    return shapes, out


def test_pyramidnet_widths_grow_additively_through_every_stage():
    model = create_model("pyramidnet272", 10)
    assert [len(stage) for stage in model.stages] == [30, 30, 30]
    planes = [block.residual[1].out_channels for stage in model.stages for block in stage]
    assert planes == [round(16 + k * 200 / 90) for k in range(1, 91)]  # widths grow by alpha / 3n per block
    shapes, out = _stage_outputs(model, torch.randn(2, 3, 32, 32))
    # Bottleneck outputs are 4x the block width: 83*4, 149*4, 216*4 after each stage.
    assert shapes == [(2, 332, 32, 32), (2, 596, 16, 16), (2, 864, 8, 8)] and out.shape == (2, 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 + 3 * 90  # the stem and three per block: the shortcuts hold no convolutions


def test_pyramidnet_shortcut_pools_and_zero_pads():
    block = create_model("pyramidnet272", 10, depth=11, alpha=48).stages[1][0].eval()
    x = torch.randn(1, block.residual[0].num_features, 8, 8)
    with torch.no_grad():
        shortcut = block(x) - block.residual(x)
    pooled = torch.nn.functional.avg_pool2d(x, 2)
    assert torch.allclose(shortcut[:, : x.size(1)], pooled, atol=1e-6)
    assert torch.all(shortcut[:, x.size(1) :] == 0)


def test_pyramidnet_without_shakedrop_is_the_plain_network():
    plain = create_model("pyramidnet272", 10, depth=20, alpha=24)
    assert not any(type(m).__name__ == "ShakeDrop" for m in plain.modules())
    # ShakeDrop with keep probability 1 everywhere never drops: same parameters, same function.
    always_keep = create_model("pyramidnet272", 10, depth=20, alpha=24, shakedrop=True, shakedrop_last_keep=1.0)
    always_keep.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 32, 32)
    for mode in (True, False):
        plain.train(mode), always_keep.train(mode)
        with torch.no_grad():
            assert torch.allclose(plain(x), always_keep(x), atol=1e-6)


def test_pyramidnet_shakedrop_keep_probabilities_fall_linearly():
    model = create_model("pyramidnet272", 10, depth=29, alpha=24, shakedrop=True)
    keeps = [block.shakedrop.keep for stage in model.stages for block in stage]
    assert keeps == pytest.approx([1 - k / 9 * 0.5 for k in range(1, 10)])


@pytest.mark.parametrize("name,options", [("pyramidnet272", {"depth": 12}), ("shakeshake26_2x64d", {"depth": 25})])
def test_impossible_depth_is_a_config_error(tmp_path, tiny_cifar10, name, options):
    from click.testing import CliRunner

    from swa_bench.cli import main

    key, value = next(iter(options.items()))
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--config",
            str(REPO_CONFIGS / f"cifar10/{name}.yaml"),
            "--method",
            "sgd",
            "--data-path",
            str(tiny_cifar10),
            "--out",
            str(tmp_path),
            "--device",
            "cpu",
            "--quiet",
            "--budget-scale",
            "0.002",
            "--set",
            "data.verify_checksums=false",
            "--set",
            f"model.options.{key}={value}",
        ],
    )
    assert result.exit_code == 2 and "model.options" in result.output and "depth" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", model_names())
def test_registered_figures_match_the_builder(name):
    """`list` prints the parameters and MACs kept with each registration; they must be the builder's."""
    from swa_bench.models.macs import forward_macs

    entry = get_model_entry(name)
    if callable(entry.target):
        pytest.skip("registered at run time (by a test) without figures")
    model = create_model(name, 10)
    assert entry.params == count_parameters(model)
    if name.startswith("digits_"):
        assert entry.macs is None
    else:
        assert entry.macs == forward_macs(model, entry.input_shape)
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, *entry.input_shape)).shape == (1, 10)  # the input it takes
    # The options and weight names configs are checked against, kept so that no builder is imported
    from swa_bench.models.registry import builder_options

    assert entry.option_types == builder_options(entry.builder, entry.fixed)
    if entry.weights is None:
        assert entry.weight_names == ()
    else:
        import torchvision.models

        assert entry.weight_names == tuple(w.name for w in getattr(torchvision.models, entry.weights))
