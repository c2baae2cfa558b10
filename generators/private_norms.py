"""Per-row gradient norms for the layers Opacus' ghost clipping has no norm sampler
for, registered through Opacus' own extension points (`register_grad_sampler`,
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
- every layer with an Opacus grad sampler but no norm sampler (convolutions,
  GroupNorm, LayerNorm) gets one that takes the norms of those per-row gradients at
  once, without storing them.
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
    for layer in NORMED_LAYERS:
        if layer not in GradSampleModuleFastGradientClipping.NORM_SAMPLERS:
            register_norm_sampler(layer)(norms_of(samplers[layer]))
