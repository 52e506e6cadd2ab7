"""One coefficient in the forward pass, another in the backward pass.

Shake-Shake mixes two residual branches as alpha*a + (1-alpha)*b going forward but sends the gradient
back as beta*g and (1-beta)*g; ShakeDrop scales one branch the same way. Both are this one function.
"""

import torch


class _Shake(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, forward_coef, backward_coef):
        ctx.save_for_backward(backward_coef)
        return x * forward_coef

    @staticmethod
    def backward(ctx, grad):
        (backward_coef,) = ctx.saved_tensors
        return grad * backward_coef, None, None


def shake(x: torch.Tensor, forward_coef: torch.Tensor, backward_coef: torch.Tensor) -> torch.Tensor:
    """`x * forward_coef` whose gradient with respect to `x` is `grad * backward_coef`."""
    return _Shake.apply(x, forward_coef, backward_coef)


def per_image(like: torch.Tensor, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """One uniform coefficient per image of the batch, shaped to broadcast over C, H, W."""
    shape = (like.size(0),) + (1,) * (like.dim() - 1)
    return torch.empty(shape, device=like.device, dtype=like.dtype).uniform_(low, high)
