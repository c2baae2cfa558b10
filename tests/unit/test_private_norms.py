"""Per-row gradient norms (generators/private_norms.py) against the definition: each
row's gradient by its own backward pass. If they were off, DP-SGD would clip to the
wrong norm and its sensitivity bound, hence ε, would not hold."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from generators.private_norms import conv_transpose2d_grad_sample, register


def _per_row_grads(model: nn.Module, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    rows = []
    for i in range(len(x)):
        model.zero_grad()
        model(x[i : i + 1]).pow(2).sum().backward()
        rows.append({name: p.grad.clone() for name, p in model.named_parameters()})
    return rows


@pytest.mark.parametrize("kwargs", [dict(stride=2, padding=1), dict(stride=2, padding=1, output_padding=1),
                                    dict(stride=1, padding=2, dilation=2), dict(stride=3, padding=0, bias=False)])
def test_conv_transpose_per_row_gradients_are_each_rows_own(kwargs):
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(3, 5, 4, **kwargs)
    x = torch.randn(6, 3, 5, 7).contiguous(memory_format=torch.channels_last)
    y = layer(x)
    backprops = torch.randn_like(y)
    ours = conv_transpose2d_grad_sample(layer, [x], backprops)
    for i in range(len(x)):
        layer.zero_grad()
        (layer(x[i : i + 1]) * backprops[i : i + 1]).sum().backward()
        assert torch.allclose(ours[layer.weight][i], layer.weight.grad, atol=1e-5)
        if layer.bias is not None:
            assert torch.allclose(ours[layer.bias][i], layer.bias.grad, atol=1e-5)
    assert not torch.allclose(ours[layer.weight][0], ours[layer.weight][1]), "rows differ: the check can fail"


def test_ghost_clipping_norms_match_each_rows_gradient_norm():
    """A net of every layer registered (Conv2d, ConvTranspose2d, GroupNorm, Conv1d,
    LayerNorm, and Opacus' own Linear): Opacus' per-row norms from one backward pass
    with our samplers equal the norms of each row's own gradient."""
    from opacus.grad_sample.grad_sample_module_fast_gradient_clipping import GradSampleModuleFastGradientClipping

    register()

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.image = nn.Sequential(nn.Conv2d(2, 8, 3, 2, 1), nn.GroupNorm(4, 8), nn.SiLU(),
                                       nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.Flatten(2))
            self.series = nn.Sequential(nn.Conv1d(4, 6, 3, padding=1), nn.LayerNorm(64), nn.Linear(64, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.series(self.image(x))

    torch.manual_seed(1)
    model, x = Net(), torch.randn(5, 2, 8, 8)
    expected = torch.stack([torch.cat([g.flatten() for g in row.values()]).norm() for row in _per_row_grads(model, x)])
    ghost = GradSampleModuleFastGradientClipping(model, loss_reduction="sum", max_grad_norm=1.0)
    assert {type(m) for m in model.modules()} - {Net, nn.Sequential, nn.SiLU, nn.Flatten} <= set(ghost.NORM_SAMPLERS)
    ghost(x).pow(2).flatten(1).sum(1).sum().backward()
    assert torch.allclose(ghost.get_norm_sample(), expected, rtol=1e-4)
    assert expected.std() > 0.01 * expected.mean(), "rows differ: the check can fail"


def test_both_forms_of_a_factored_norm_agree():
    from generators.private_norms import factor_norms

    torch.manual_seed(3)
    p, q = torch.randn(5, 7, 9), torch.randn(5, 4, 9)
    expected = torch.stack([(a @ b.T).norm() for a, b in zip(p, q)])
    for gram in (None, False, True):
        assert torch.allclose(factor_norms(p, q, gram=gram), expected, rtol=1e-4)


@pytest.mark.parametrize("layer", [nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(6, 2, 4, stride=2, padding=1),
                                   nn.Conv2d(40, 40, 3, padding=1), nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1),
                                   nn.ConvTranspose2d(2, 5, 3), nn.ConvTranspose2d(40, 20, 4, stride=2, padding=1)])
def test_factored_conv_norms_are_each_rows_gradient_norm(layer):
    """Conv2d and ConvTranspose2d norms from their factors (sizes that take the product
    and the Gram form) equal the norm of each row's own gradient."""
    from generators.private_norms import conv2d_norm_sample

    torch.manual_seed(2)
    x = torch.randn(4, layer.in_channels, 4, 4)
    backprops = torch.randn_like(layer(x))
    ours = conv2d_norm_sample(layer, [x], backprops)
    for i in range(len(x)):
        layer.zero_grad()
        (layer(x[i : i + 1]) * backprops[i : i + 1]).sum().backward()
        assert ours[layer.weight][i].item() == pytest.approx(layer.weight.grad.norm().item(), rel=1e-4)
        assert ours[layer.bias][i].item() == pytest.approx(layer.bias.grad.norm().item(), rel=1e-4)


@pytest.mark.parametrize(("layer", "length"), [
    (nn.Conv1d(3, 32, 3, stride=2, padding=1), 52),  # the product form (timeseries/vae's first encoder layer)
    (nn.Conv1d(32, 64, 3, stride=2, padding=1), 26),  # the Gram form, strided
    (nn.Conv1d(64, 32, 3, padding=1), 26),  # the Gram form (the vae's first residual layer)
    (nn.Conv1d(32, 32, 3, padding=1), 52),  # the product form again
    (nn.Conv1d(40, 8, 3, padding=2, dilation=2, bias=False), 12),  # dilated, Gram form, no bias
    (nn.Conv1d(2, 6, 4, stride=3, padding=0, dilation=2), 20),  # dilated and strided, product form
])
def test_conv1d_norms_are_each_rows_gradient_norm(layer, length):
    """Conv1d norms by either form (the sizes cover both, strides and dilations) equal
    the norm of each row's own gradient."""
    from generators.private_norms import conv1d_norm_sample

    torch.manual_seed(4)
    assert_norms_are_each_rows_gradient_norm(conv1d_norm_sample, layer, torch.randn(5, layer.in_channels, length))


def assert_norms_are_each_rows_gradient_norm(norm_sample, layer: nn.Module, x: torch.Tensor) -> None:
    """`norm_sample`'s per-row norms of `layer`'s weight and bias gradients on `x`, against
    each row's own gradient, on rows whose norms differ (so the check can fail)."""
    backprops = torch.randn_like(layer(x))
    ours = norm_sample(layer, [x], backprops)
    expected = []
    for i in range(len(x)):
        layer.zero_grad()
        (layer(x[i : i + 1]) * backprops[i : i + 1]).sum().backward()
        expected.append(layer.weight.grad.norm().item())
        assert ours[layer.weight][i].item() == pytest.approx(expected[-1], rel=1e-4)
        if layer.bias is not None:
            assert ours[layer.bias][i].item() == pytest.approx(layer.bias.grad.norm().item(), rel=1e-4)
    assert max(expected) > 1.01 * min(expected), "rows differ: the check can fail"


def test_conv1d_norms_take_the_cheaper_form(monkeypatch):
    """Which form each size takes, by the cost model: the narrow first layer the product,
    the wide stride-1 layer on a short map the Gram of its input positions (an (L, L)
    batched product)."""
    from generators.private_norms import conv1d_norm_sample

    shapes, real_bmm = [], torch.bmm
    monkeypatch.setattr(torch, "bmm", lambda a, b: shapes.append((a.shape[1], b.shape[2])) or real_bmm(a, b))
    for layer, length, gram in [(nn.Conv1d(3, 32, 3, stride=2, padding=1), 52, False),
                                (nn.Conv1d(64, 32, 3, padding=1), 26, True)]:
        shapes.clear()
        x = torch.randn(4, layer.in_channels, length)
        conv1d_norm_sample(layer, [x], torch.randn(4, 32, layer(x).shape[2]))
        assert any(rows == cols > 3 * 9 for rows, cols in shapes) == gram, (layer, shapes)


@pytest.mark.parametrize("shape", [(6, 7), (6, 4, 7)])
def test_linear_norms_are_each_rows_gradient_norm(shape):
    """Linear norms on (n, d) inputs (|dy|·|x|) and on sequences (Opacus' ghost norm,
    delegated) equal the norm of each row's own gradient."""
    from generators.private_norms import linear_norm_sample

    torch.manual_seed(5)
    assert_norms_are_each_rows_gradient_norm(linear_norm_sample, nn.Linear(7, 3), torch.randn(*shape))
