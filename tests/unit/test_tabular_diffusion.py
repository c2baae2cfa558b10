"""tabular/diffusion on the real penguins table: schema, categories, integers, nulls,
determinism, checkpoints, conditions, training budgets. A few hundred training steps of a
small model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from generators import get, load_generator
from generators.diffusion import cosine_alphas_cumprod, ddim_step, ddim_timesteps, q_sample, register_schedule
from generators.tabular.diffusion import TabularDiffusionGenerator
from pipeline.core.errors import BadInputError, ConditionError
from pipeline.core.plan import plan_chunks
from pipeline.core.schema import conform

# Small and quick, but trained enough for marginals and null rates to show.
PARAMS = {"steps": 660, "batch_size": 32, "hidden": 64, "depth": 1}


@pytest.fixture(scope="module")
def fitted(penguins) -> tuple[TabularDiffusionGenerator, list[dict]]:
    reports: list[dict] = []
    model = TabularDiffusionGenerator(device="cpu", **PARAMS)
    model.fit(penguins, progress=lambda done, total, **m: reports.append({"done": done, "total": total, **m}))
    return model, reports


@pytest.fixture(scope="module")
def rows(fitted) -> pd.DataFrame:
    return pd.concat(fitted[0].sample(4000, seed=0, batch_size=1500), ignore_index=True)


def test_registered_under_its_name():
    assert get("tabular/diffusion") is TabularDiffusionGenerator


def test_progress_counts_the_step_budget_with_a_falling_loss(fitted):
    _, reports = fitted
    done = [r["done"] for r in reports]
    assert done == sorted(done) and done[-1] == PARAMS["steps"] and 50 <= len(reports) <= 101
    assert all(r["total"] == PARAMS["steps"] for r in reports)
    assert np.mean([r["loss"] for r in reports[-5:]]) < 0.8 * reports[0]["loss"]


def test_same_seed_and_steps_same_model_another_seed_another(penguins):
    """Batches are drawn at random under the fit's seed: a refit repeats every step."""
    def weights(**params):
        model = TabularDiffusionGenerator(device="cpu", hidden=16, depth=1, calibration_rows=0, **({"steps": 20} | params))
        return model.fit(penguins).model_.state_dict()

    a, b, c, d = weights(), weights(), weights(seed=1), weights(steps=21)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a) and not all(torch.equal(a[k], d[k]) for k in a)


def test_a_time_budget_stops_the_fit_and_reports_seconds(penguins):
    """1 s of training with a step limit it could never reach: the clock stops it, and the
    progress shows seconds of the budget with the step count taken."""
    reports: list[dict] = []
    TabularDiffusionGenerator(device="cpu", steps=10**7, time_budget_s=1.0, hidden=16, depth=1,
                              calibration_rows=0).fit(penguins, progress=lambda done, total, **m: reports.append(
                                  {"done": done, "total": total, **m}))
    last = reports[-1]
    assert (last["done"], last["total"]) == (1, 1) and 0 < last["step"] < 10**6


def test_epochs_are_gone():
    with pytest.raises(BadInputError, match="epochs: Extra inputs are not permitted"):
        TabularDiffusionGenerator(epochs=300)


def test_output_has_the_source_schema(penguins, rows):
    assert list(rows.columns) == penguins.profile.names
    assert rows.dtypes.to_dict() == conform(penguins.frame, penguins.profile).dtypes.to_dict()


def test_no_unseen_categories_and_integers_stay_integers_in_range(penguins, rows):
    for col in penguins.profile.of_kind("categorical"):
        assert set(rows[col.name].dropna()) <= set(col.categories), col.name
    for col in penguins.profile.of_kind("integer"):
        values = rows[col.name].dropna().astype(float)
        assert (values % 1 == 0).all() and values.between(col.min, col.max).all(), col.name
    for col in penguins.profile.of_kind("numeric"):
        values = rows[col.name].dropna()
        assert np.allclose(values, values.round(col.decimals)), col.name


def test_null_rates_are_roughly_reproduced(penguins, rows):
    for col in penguins.profile.columns:
        rate = rows[col.name].isna().mean()
        assert abs(rate - col.null_fraction) < 0.03, (col.name, rate, col.null_fraction)
    assert rows["sex"].isna().any()  # 3 % in the source: reproduced, not dropped


def test_marginals_were_learned(penguins, rows):
    """Species shares within 0.1 of the source's (44 % Adelie, 20 % Chinstrap, 36 % Gentoo)
    and numeric medians inside the source's interquartile range."""
    real = penguins.frame["species"].value_counts(normalize=True)
    synthetic = rows["species"].value_counts(normalize=True)
    assert (real - synthetic).abs().max() < 0.1
    for name in ("bill_length_mm", "flipper_length_mm", "body_mass_g"):
        q1, q3 = penguins.frame[name].quantile([0.25, 0.75])
        assert q1 <= rows[name].astype(float).median() <= q3, name


def test_same_seed_same_rows_different_seed_different(fitted):
    model, _ = fitted
    a = pd.concat(model.sample(300, seed=5, batch_size=100))
    b = pd.concat(model.sample(300, seed=5, batch_size=100))
    c = pd.concat(model.sample(300, seed=6, batch_size=100))
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_a_chunk_drawn_alone_equals_the_same_chunk_of_a_request(fitted):
    model, _ = fitted
    whole = list(model.sample(250, seed=9, batch_size=100))
    chunk = plan_chunks(250, 100, seed=9)[2]
    pd.testing.assert_frame_equal(model.sample_chunk(chunk), whole[2])


def test_fit_is_seeded_and_leaves_the_global_rng_alone(penguins):
    state = torch.get_rng_state()
    a = TabularDiffusionGenerator(device="cpu", steps=4, hidden=16, depth=1).fit(penguins)
    b = TabularDiffusionGenerator(device="cpu", steps=4, hidden=16, depth=1).fit(penguins)
    assert torch.equal(torch.get_rng_state(), state)
    pd.testing.assert_frame_equal(next(a.sample(50, seed=1)), next(b.sample(50, seed=1)))


def test_save_load_round_trip_gives_identical_samples(fitted, tmp_path):
    model, _ = fitted
    model.save(tmp_path / "model")
    restored = load_generator(tmp_path / "model")
    assert isinstance(restored, TabularDiffusionGenerator)
    assert restored.condition_values_ == model.condition_values_
    for conditions in (None, {"species": "Gentoo"}):
        expected = next(model.sample(200, seed=4, conditions=conditions))
        pd.testing.assert_frame_equal(next(restored.sample(200, seed=4, conditions=conditions)), expected)


def test_conditions_hold_in_every_row(fitted, penguins):
    model, _ = fitted
    assert model.condition_values_ == {c.name: c.categories for c in penguins.profile.of_kind("categorical")}
    rows = pd.concat(model.sample(600, seed=2, batch_size=250, conditions={"species": "Chinstrap", "sex": "male"}))
    assert len(rows) == 600
    assert (rows["species"] == "Chinstrap").all() and (rows["sex"] == "male").all()
    assert rows["island"].nunique() >= 1 and rows["bill_length_mm"].notna().any()


def test_bad_conditions_are_refused(fitted):
    model, _ = fitted
    with pytest.raises(ConditionError, match="never seen"):
        next(model.sample(10, seed=0, conditions={"species": "Emperor"}))
    with pytest.raises(ConditionError, match="conditionable columns"):
        next(model.sample(10, seed=0, conditions={"body_mass_g": 4000}))
    with pytest.raises(ConditionError, match="conditionable columns"):
        next(model.sample(10, seed=0, conditions={"colour": "blue"}))


def test_bad_params_are_refused():
    with pytest.raises(BadInputError, match="sampling_steps"):
        TabularDiffusionGenerator(sampling_steps=0)
    with pytest.raises(BadInputError, match="allowed parameters"):
        TabularDiffusionGenerator(learning_rate=0.1)


def test_cosine_schedule_runs_from_signal_to_noise():
    ab = cosine_alphas_cumprod(1000)
    assert ab[0] > 0.999 and ab[-1] < 1e-4 and bool((ab[1:] < ab[:-1]).all())


def test_ddim_timesteps_run_evenly_from_the_last_noise_level_to_clean():
    pairs = ddim_timesteps(100, 7)
    assert len(pairs) == 7 and pairs[0][0] == 99 and pairs[-1][1] == -1
    assert all(t_next == t for (_, t_next), (t, _) in zip(pairs[:-1], pairs[1:]))
    gaps = [t - t_next for t, t_next in pairs]
    assert max(gaps) - min(gaps) <= 1


def test_ddim_step_moves_true_x0_and_noise_to_their_noised_sample_at_t_next():
    """With the true (x0, eps), deterministic DDIM lands exactly on q(x_{t_next} | x0);
    eta > 0 adds seeded noise; the last step returns x0 itself."""
    schedule = torch.nn.Module()
    register_schedule(schedule, 50)
    x0, eps = torch.randn(8, 3), torch.randn(8, 3)
    step = ddim_step(schedule, x0, eps, 30, 20)
    torch.testing.assert_close(step, q_sample(schedule, x0, torch.full((8,), 20), eps))
    assert ddim_step(schedule, x0, eps, 9, -1) is x0
    noisy = [ddim_step(schedule, x0, eps, 30, 20, eta=1.0, generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert torch.equal(noisy[0], noisy[1]) and not torch.equal(noisy[0], noisy[2])
    assert not torch.allclose(noisy[0], step)
    assert not list(schedule.state_dict())  # derived from timesteps: never in a checkpoint


@pytest.mark.slow
def test_conditional_distribution_follows_the_source(penguins):
    """Trained at default size: Gentoo live only on Biscoe and weigh ~1.3 kg more than
    Adelie; conditioned samples must show both."""
    model = TabularDiffusionGenerator(device="cpu").fit(penguins)
    gentoo = pd.concat(model.sample(3000, seed=1, conditions={"species": "Gentoo"}))
    adelie = pd.concat(model.sample(3000, seed=1, conditions={"species": "Adelie"}))
    assert (gentoo["island"] == "Biscoe").mean() > 0.9
    real = penguins.frame.groupby("species")["body_mass_g"].mean()
    for name, rows in (("Gentoo", gentoo), ("Adelie", adelie)):
        assert abs(rows["body_mass_g"].astype(float).mean() - real[name]) < 250, name
