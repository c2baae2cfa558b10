"""Per-row gradient norms for the layers Opacus' ghost clipping has no norm sampler
for (and a cheaper one for Linear), registered through Opacus' own extension points (`register_grad_sampler`,
`register_norm_sampler`), so generators/private.py clips them as before, cheaper.

Ghost clipping needs each row's gradient norm from its first backward pass. Opacus
computes it without per-row gradients for Linear and Embedding only; every other layer
falls back to "fast gradient clipping": its per-row gradients are built, copied into a
fresh zeroed buffer per parameter, reshaped and then reduced to norms (on the image
UNet that bookkeeping cost as much as the gradients themselves), and ConvTranspose2d,
which has no Opacus sampler, goes through functorch's vmap (29 % of an image/vae DP
fit). Here:
- `conv_transpose2d_grad_sample`: ConvTranspose2d's per-row gradients in one einsum,
  as Opacus does for Conv2d (a transposed convolution's weight gradient is the
  correlation of its input with the unfolded output gradient);
- Conv2d and ConvTranspose2d norms from their two factors: a row's weight gradient
  is P Qᵀ over the L output (input) positions, so its squared norm is either
  ||P Qᵀ||² (L·d1·d2 operations) or ⟨PᵀP, QᵀQ⟩ (L²·(d1 + d2), Li et al. 2022's ghost
  norm), whichever costs less: the Gram form wins at the small maps deep in a net;
- Conv1d the same way, its input unfolded as a strided view (Opacus unfolds it through
  a 2-D im2col: 2.5x the time of both forms at timeseries/vae's sizes), and its Gram
  form from the Gram of the padded input's positions, summed over the kernel's k
  shifted diagonals (Lp²·C_in + L²·(C_out + k) operations, not L²·(C_in·k + C_out));
- Linear on (n, d) inputs as |dy|·|x| per row from two row sums, in place of Opacus'
  four einsums (its per-layer cost was a fifth of timeseries/vae's norms); inputs with
  more dimensions keep Opacus' ghost norm;
- every other layer with an Opacus grad sampler but no norm sampler (GroupNorm,
  LayerNorm, grouped convolutions) gets one that takes the norms of those per-row
  gradients at once, without storing them.
The norms are the same numbers Opacus would compute: the clipping, and so the privacy
guarantee, is unchanged."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

Sampler = Callable[[nn.Module, list[torch.Tensor], torch.Tensor], dict[nn.Parameter, torch.Tensor]]
# Layers our private models use that have an Opacus grad sampler (or ours) but no norm sampler
NORMED_LAYERS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.GroupNorm, nn.LayerNorm)


def conv_transpose2d_grad_sample(layer: nn.ConvTranspose2d, activations: list[torch.Tensor],
                                 backprops: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
    """Per-row gradients of a ConvTranspose2d: y = x ⋆ᵀ W is the adjoint of a Conv2d
    with the same kernel, stride, padding and dilation, so dW[i, o, a, b] = Σ_t x[i, t]
    · unfold(dy)[o, a, b, t], the unfolding giving exactly x's H·W positions for any
    output_padding (< stride). Grouped layers go through functorch, as before."""
    x = activations[0]
    if layer.groups != 1:
        from opacus.grad_sample.functorch import ft_compute_per_sample_gradient

        return ft_compute_per_sample_gradient(layer, activations, backprops)
    n = len(x)
    unfolded = F.unfold(backprops, layer.kernel_size, dilation=layer.dilation, padding=layer.padding,
                        stride=layer.stride)  # (n, out * kH * kW, H_x * W_x)
    grads = {layer.weight: torch.einsum("nil,njl->nij", x.reshape(n, x.shape[1], -1), unfolded)
             .reshape(n, *layer.weight.shape)}
    if layer.bias is not None:
        grads[layer.bias] = backprops.sum((2, 3))
    return {p: g for p, g in grads.items() if p.requires_grad}


def factor_norms(p: torch.Tensor, q: torch.Tensor, *, gram: bool | None = None) -> torch.Tensor:
    """Per-row Frobenius norms of p[i] @ q[i].T for p (n, d1, L) and q (n, d2, L), by the
    Gram form where `gram` (default: where it costs less), else by the product."""
    (_, d1, positions), d2 = p.shape, q.shape[1]
    if positions * (d1 + d2) < d1 * d2 if gram is None else gram:
        grams = torch.bmm(p.transpose(1, 2), p) * torch.bmm(q.transpose(1, 2), q)
        return grams.sum((1, 2)).clamp(min=0).sqrt()
    return torch.bmm(p, q.transpose(1, 2)).flatten(1).norm(2, dim=1)


def conv2d_norm_sample(layer: nn.Module, activations: list[torch.Tensor],
                       backprops: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
    """Per-row gradient norms of an ungrouped Conv2d or ConvTranspose2d, from the factors
    of its weight gradient (module docstring); grouped layers as `norms_of` does."""
    from opacus.grad_sample import GradSampleModule
    from opacus.utils.tensor_utils import unfold2d

    x, n = activations[0], len(activations[0])
    if layer.groups != 1 or n == 0:
        return norms_of(GradSampleModule.GRAD_SAMPLERS[type(layer)])(layer, activations, backprops)
    window = dict(kernel_size=layer.kernel_size, padding=layer.padding, stride=layer.stride, dilation=layer.dilation)
    if isinstance(layer, nn.ConvTranspose2d):  # dW = x · unfold(dy)ᵀ over x's positions
        weight = factor_norms(x.reshape(n, x.shape[1], -1), F.unfold(backprops, **window))
    else:  # dW = dy · unfold(x)ᵀ over y's positions
        weight = factor_norms(backprops.reshape(n, backprops.shape[1], -1), unfold2d(x, **window))
    norms = {layer.weight: weight}
    if layer.bias is not None:
        norms[layer.bias] = backprops.sum((2, 3)).norm(2, dim=1)
    return {p: v for p, v in norms.items() if p.requires_grad}


def conv1d_norm_sample(layer: nn.Conv1d, activations: list[torch.Tensor],
                       backprops: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
    """Per-row gradient norms of an ungrouped, zero-padded Conv1d: dW[o, c, j] = Σ_l
    dy[o, l] · xp[c, s·l + d·j] (xp the padded input, s the stride, d the dilation), by
    the product over an unfolded view of xp or by the Gram form (module docstring),
    whichever costs less; other Conv1d layers as `norms_of` does."""
    from opacus.grad_sample import GradSampleModule

    x, n = activations[0], len(activations[0])
    if layer.groups != 1 or isinstance(layer.padding, str) or layer.padding_mode != "zeros" or n == 0:
        return norms_of(GradSampleModule.GRAD_SAMPLERS[type(layer)])(layer, activations, backprops)
    (k,), (s,), (d,), (pad,) = layer.kernel_size, layer.stride, layer.dilation, layer.padding
    xp = torch.nn.functional.pad(x, (pad, pad))
    (c_in, padded), (c_out, positions) = xp.shape[1:], backprops.shape[1:]
    span = s * (positions - 1) + 1  # input positions one tap touches
    if padded**2 * c_in + positions**2 * (c_out + k) < positions * c_out * c_in * k:
        inputs = torch.bmm(xp.transpose(1, 2), xp)  # (n, Lp, Lp): ⟨xp[:, t], xp[:, t']⟩
        unfolded_gram = sum(inputs[:, d * j : d * j + span : s, d * j : d * j + span : s] for j in range(k))
        grams = unfolded_gram * torch.bmm(backprops.transpose(1, 2), backprops)
        weight = grams.sum((1, 2)).clamp(min=0).sqrt()
    else:  # (n, c_in, L, k) view -> (n, c_in * k, L)
        unfolded = xp.unfold(2, d * (k - 1) + 1, s)[..., ::d].transpose(2, 3).reshape(n, c_in * k, positions)
        weight = torch.bmm(backprops, unfolded.transpose(1, 2)).flatten(1).norm(2, dim=1)
    norms = {layer.weight: weight}
    if layer.bias is not None:
        norms[layer.bias] = backprops.sum(2).norm(2, dim=1)
    return {p: v for p, v in norms.items() if p.requires_grad}


def linear_norm_sample(layer: nn.Linear, activations: list[torch.Tensor],
                       backprops: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
    """Per-row gradient norms of a Linear: on (n, d) inputs a row's weight gradient is
    the outer product dy xᵀ, whose norm is |dy|·|x|; otherwise Opacus' ghost norm."""
    from opacus.grad_sample.linear import compute_linear_norm_sample

    x = activations[0]
    if backprops.dim() != 2:
        return compute_linear_norm_sample(layer, activations, backprops)
    grad_sq = backprops.square().sum(1)
    norms = {layer.weight: (grad_sq * x.square().sum(1)).sqrt()}
    if layer.bias is not None:
        norms[layer.bias] = grad_sq.sqrt()
    return {p: v for p, v in norms.items() if p.requires_grad}


def norms_of(grad_sampler: Sampler) -> Sampler:
    """A norm sampler from a grad sampler: each row's gradient norm per parameter, the
    per-row gradients dropped as soon as they are reduced."""

    def norm_sampler(layer: nn.Module, activations: list[torch.Tensor],
                     backprops: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
        n = len(activations[0])
        if n == 0:  # an empty Poisson batch: no rows, no norms (as Opacus records it)
            return {p: backprops.new_zeros(0) for p in layer.parameters() if p.requires_grad}
        return {p: g.reshape(n, -1).norm(2, dim=1) for p, g in grad_sampler(layer, activations, backprops).items()}

    return norm_sampler


def register() -> None:
    """Register the samplers with Opacus (idempotent; once per process is enough)."""
    from opacus.grad_sample import GradSampleModule, register_grad_sampler, register_norm_sampler
    from opacus.grad_sample.grad_sample_module_fast_gradient_clipping import GradSampleModuleFastGradientClipping

    samplers = GradSampleModule.GRAD_SAMPLERS
    if nn.ConvTranspose2d not in samplers:
        register_grad_sampler(nn.ConvTranspose2d)(conv_transpose2d_grad_sample)
    norm_samplers = GradSampleModuleFastGradientClipping.NORM_SAMPLERS
    if norm_samplers.get(nn.Linear) is not linear_norm_sample:  # in place of Opacus' own
        register_norm_sampler(nn.Linear)(linear_norm_sample)
    for layer in NORMED_LAYERS:
        if layer not in norm_samplers:
            factored = {nn.Conv1d: conv1d_norm_sample, nn.Conv2d: conv2d_norm_sample,
                        nn.ConvTranspose2d: conv2d_norm_sample}
            register_norm_sampler(layer)(factored.get(layer) or norms_of(samplers[layer]))
