"""Shake-Shake's forward/backward mixing, checked against hand computations with fixed coefficients."""

import pytest
import torch

from swa_bench.models import create_model
from swa_bench.models.shake import per_image, shake
from swa_bench.models.shake_shake import ShakeShakeBlock


def test_shake_scales_forward_by_one_coefficient_and_gradient_by_another():
    a = torch.randn(3, 2, 4, 4, requires_grad=True)
    b = torch.randn(3, 2, 4, 4, requires_grad=True)
    alpha = torch.tensor([0.1, 0.5, 0.9]).view(3, 1, 1, 1)
    beta = torch.tensor([0.7, 0.2, 0.4]).view(3, 1, 1, 1)
    weights = torch.randn(3, 2, 4, 4)

    mixed = shake(a, alpha, beta) + shake(b, 1 - alpha, 1 - beta)
    (mixed * weights).sum().backward()

    assert torch.allclose(mixed, alpha * a + (1 - alpha) * b)
    assert torch.allclose(a.grad, beta * weights)  # not alpha * weights: an independent coefficient
    assert torch.allclose(b.grad, (1 - beta) * weights)


def _block_with_fixed_coefficients(alpha, beta):
    torch.manual_seed(0)
    block = ShakeShakeBlock(4, 8, stride=2)
    block.coefficients = lambda like: (alpha, beta)
    return block


def test_block_mixes_branches_forward_with_alpha_and_backward_with_beta():
    alpha = torch.tensor([0.25, 0.8]).view(2, 1, 1, 1)
    beta = torch.tensor([0.6, 0.1]).view(2, 1, 1, 1)
    block = _block_with_fixed_coefficients(alpha, beta).train()
    x = torch.randn(2, 4, 8, 8)

    outputs = {}
    for i, branch in enumerate(block.branches):

        def keep(module, inputs, output, i=i):
            output.retain_grad()
            outputs[i] = output

        branch.register_forward_hook(keep)
    out = block(x)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()

    a, b = outputs[0], outputs[1]
    with torch.no_grad():
        expected = alpha * a + (1 - alpha) * b + block.shortcut(x)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(a.grad, beta * weights, atol=1e-6)
    assert torch.allclose(b.grad, (1 - beta) * weights, atol=1e-6)


def test_evaluation_mixes_by_one_half_and_is_deterministic():
    model = create_model("shakeshake26_2x64d", 10, depth=8, width=8)
    model.train()
    model(torch.randn(16, 3, 32, 32))  # give BN some running statistics
    model.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        first, second = model(x), model(x)
        block = model.stages[0][0]
        h = model.stem(x)
        expected = 0.5 * (block.branches[0](h) + block.branches[1](h)) + block.shortcut(h)
        assert torch.allclose(block(h), expected, atol=1e-6)
    assert torch.equal(first, second)


def test_training_coefficients_are_drawn_per_image():
    like = torch.zeros(64, 8, 4, 4)
    alpha = per_image(like)
    assert alpha.shape == (64, 1, 1, 1)
    assert alpha.unique().numel() == 64 and 0 <= alpha.min() and alpha.max() <= 1
    # The same image repeated through the network in training mode comes out differently per copy.
    model = create_model("shakeshake26_2x64d", 10, depth=8, width=8).train()
    image = torch.randn(1, 3, 32, 32).expand(8, -1, -1, -1).contiguous()
    with torch.no_grad():
        out = model(image)
    assert not torch.allclose(out[0], out[1])
    # A block's two coefficient draws are independent of each other.
    alpha, beta = ShakeShakeBlock(4, 4, 1).coefficients(like)
    assert not torch.equal(alpha, beta)


@pytest.mark.parametrize(
    "name,options",
    [
        ("shakeshake26_2x64d", {"depth": 8, "width": 8}),
        ("pyramidnet272", {"depth": 11, "alpha": 12, "shakedrop": True}),
    ],
)
def test_shaking_models_train_a_step(name, options):
    model = create_model(name, 10, **options).train()
    out = model(torch.randn(4, 3, 32, 32))
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
