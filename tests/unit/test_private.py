"""DP-SGD (generator.privacy) on the real penguins table: the spent ε never exceeds the
target, the same seed gives the same private model, budgets that cannot train and
generators that cannot be private are refused, and ε gates a run only when a job sets it."""

from __future__ import annotations

import math

import pytest
import torch

import yaml

from generators import available, get, load_generator
from pipeline.core.errors import BadInputError, SpecError
from pipeline.core.spec import PrivacySpec
from validators.gate import metric_failures
from validators.thresholds import EPSILON, thresholds_for

from tests.conftest import ROOT

# A few dozen DP-SGD steps of a small model: enough to run every part of the wrapper.
PARAMS = {"steps": 33, "batch_size": 32, "hidden": 16, "depth": 1, "calibration_rows": 0}
PRIVACY = {"epsilon": 3.0}


def _fit(data, *, seed: int = 0, privacy: dict | None = PRIVACY, **params):
    return get("tabular/diffusion")(device="cpu", privacy=privacy, **(PARAMS | {"seed": seed} | params)).fit(data)


@pytest.fixture(scope="module")
def declared(penguins):
    """Penguins with every column's domain declared, as the shipped private job declares them."""
    from pipeline.core.data import TabularData
    from pipeline.core.schema import profile_table

    job = yaml.safe_load((ROOT / "data" / "jobs" / "penguins-private.yaml").read_text())
    return TabularData(frame=penguins.frame, profile=profile_table(penguins.frame, kinds=job["source"]["columns"]))


@pytest.fixture(scope="module")
def private(declared):
    return _fit(declared)


def test_spent_epsilon_never_exceeds_the_target(private, declared):
    spent = private.privacy_spent_
    assert 0 < spent["epsilon"] <= spent["target_epsilon"] == PRIVACY["epsilon"]
    n = len(declared.frame)
    assert spent["delta"] == pytest.approx(1 / (10 * n)), "delta auto = 1 / (10 n)"
    assert spent["accountant"] == "prv" and spent["max_grad_norm"] == 1.0 and spent["noise_multiplier"] > 0
    batches = math.ceil(n / PARAMS["batch_size"])
    assert spent["sample_rate"] == pytest.approx(1 / batches) and spent["steps"] == PARAMS["steps"]


def test_a_tighter_budget_needs_more_noise(private, declared):
    tight = _fit(declared, privacy={"epsilon": 1.0}).privacy_spent_
    assert tight["epsilon"] <= 1.0 and tight["noise_multiplier"] > private.privacy_spent_["noise_multiplier"]


def test_same_seed_same_private_model_and_its_record_survives_save(private, declared, tmp_path):
    again, other = _fit(declared), _fit(declared, seed=1)
    weights = private.model_.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in again.model_.state_dict().items())
    assert not all(torch.equal(weights[k], v) for k, v in other.model_.state_dict().items()), "the seed matters"
    private.save(tmp_path / "m")
    loaded = load_generator(tmp_path / "m")
    assert loaded.privacy_spent_ == private.privacy_spent_ and loaded.privacy == PrivacySpec(**PRIVACY)
    assert next(loaded.sample(50, seed=3)).equals(next(private.sample(50, seed=3)))


def test_private_fit_skips_the_calibration_that_reads_the_source(declared):
    assert _fit(declared, calibration_rows=500).calibration_ is None
    assert _fit(declared, privacy=None, calibration_rows=500).calibration_ is not None


def test_private_encoder_reads_no_training_value(penguins):
    """Two training sets with one profile: the private encoder's maps are the same, so a
    record in one of them (a far tail value) cannot show in them; the plain encoder's
    quantiles are the rows' own and differ."""
    from generators.tabular.encoding import TableEncoder

    frame = penguins.frame
    fitted = {private: [TableEncoder().fit(half, penguins.profile, private=private)
                        for half in (frame.iloc[::2], frame.iloc[1::2])] for private in (True, False)}
    private_a, private_b = (e.quantiles_.quantiles_ for e in fitted[True])
    plain_a, plain_b = (e.quantiles_.quantiles_ for e in fitted[False])
    assert (private_a == private_b).all()
    assert not (plain_a == plain_b).all()
    columns = fitted[True][0]._continuous_columns()
    assert columns, "penguins has continuous columns"
    for i, col in enumerate(columns):
        assert private_a[0, i] == col.min and private_a[-1, i] == col.max, f"{col.name}: the profile's range"


@pytest.mark.parametrize("privacy, params, fragment", [
    ({"epsilon": 0.01}, {"steps": 220}, "cannot train this model"),
    (PRIVACY, {"batch_size": 1000}, "fewer than params.batch_size 1000"),
])
def test_a_budget_that_cannot_train_says_so(declared, privacy, params, fragment):
    with pytest.raises(BadInputError, match=fragment):
        _fit(declared, privacy=privacy, **params)


@pytest.mark.parametrize("params", [{"time_budget_s": 60}, {"steps": 100, "time_budget_s": 60}])
def test_a_time_budget_is_refused_before_any_data(params):
    """The noise is solved for the step count before training: a clock cannot set it."""
    with pytest.raises(BadInputError, match="time_budget_s cannot bound a private fit"):
        get("tabular/diffusion")(privacy=PRIVACY, **params)


def test_every_generator_without_dp_refuses_privacy_before_any_data():
    refusing = [name for name in available() if not get(name).supports_privacy]
    assert {"tabular/copula", "tabular/gan", "tabular/vae", "timeseries/par"} <= set(refusing)
    for name in refusing:
        with pytest.raises(BadInputError, match="does not train with differential privacy"):
            get(name)(privacy=PRIVACY)


@pytest.mark.parametrize("spec", [{"epsilon": 0}, {"epsilon": math.inf}, {"epsilon": 3, "delta": 1.5}])
def test_privacy_spec_refuses_meaningless_budgets(spec):
    with pytest.raises(ValueError):
        PrivacySpec(**spec)


def test_epsilon_gates_only_when_a_job_sets_it():
    assert EPSILON not in thresholds_for("tabular"), "a default bound would fail every run without DP"
    bounds = {EPSILON: thresholds_for("tabular", {EPSILON: 5})[EPSILON]}
    assert bounds[EPSILON].max == 5
    assert metric_failures({EPSILON: 2.99}, bounds, ("privacy",)) == []
    for too_much in (5.5, math.inf):  # inf: trained without DP
        (failure,) = metric_failures({EPSILON: too_much}, bounds, ("privacy",))
        assert failure.target == EPSILON
    with pytest.raises(SpecError, match="privacy.epsilon"):
        thresholds_for("tabular", {"privacy.epsilonn": 5})


def test_rows_may_be_a_tuple_of_tensors_sampled_together():
    """(images, labels)-style records: every batch takes the same indices from each tensor,
    and a private step trains on them; one tensor still gives plain tensor batches."""
    from generators.private import PrivateTraining

    n = 64
    features, ids = torch.arange(n, dtype=torch.float32)[:, None], torch.arange(n)
    model = torch.nn.Linear(1, 1)
    private = PrivateTraining(model, torch.optim.SGD(model.parameters(), lr=0.1), (features, ids),
                              privacy=PrivacySpec(**PRIVACY), batch_size=16, steps=5, seed=0)
    batches = private.batches()
    for _ in range(5):
        x, i = next(batches)
        assert torch.equal(x[:, 0].long(), i), "one record is one index across the tensors"
        private.optimizer.zero_grad()
        private.loss(private.module(x).squeeze(1).pow(2)).backward()
        private.optimizer.step()
    private.close()
    assert private.spent().steps == 5 and private.spent().epsilon <= PRIVACY["epsilon"]
    other = torch.nn.Linear(1, 1)
    single = PrivateTraining(other, torch.optim.SGD(other.parameters(), lr=0.1), features,
                             privacy=PrivacySpec(**PRIVACY), batch_size=16, steps=5, seed=0)
    assert isinstance(next(single.batches()), torch.Tensor)
    single.close()


def test_batches_are_the_poisson_loaders_own_to_the_draw():
    """Indexed at once, the batches over several passes equal those Opacus' Poisson
    DataLoader yields from the same seed, empty ones included: the same seed keeps the
    same model."""
    from generators.private import PrivateTraining

    def make() -> PrivateTraining:
        model = torch.nn.Linear(2, 1)
        return PrivateTraining(model, torch.optim.SGD(model.parameters(), lr=0.1),
                               (torch.randn(30, 2, generator=torch.Generator().manual_seed(0)), torch.arange(30)),
                               privacy=PrivacySpec(epsilon=10.0), batch_size=3, steps=5, seed=4)

    ours, theirs = make(), make()
    batches = ours.batches()
    expected = [batch for _ in range(3) for batch in theirs.loader]  # 3 passes of 10 batches
    got = [next(batches) for _ in expected]
    assert all(torch.equal(a, b) for e, g in zip(expected, got) for a, b in zip(e, g))
    assert len({tuple(i.tolist()) for _, i in got}) > 20 and any(len(i) == 0 for _, i in got)
    ours.close(), theirs.close()


class _Branched(torch.nn.Module):
    """A conv path on the rows and a side layer on a plan that needs no gradient: its
    norm hook fires from its output alone, the case a pruned pass could miss."""

    def __init__(self, unused: bool = False) -> None:
        super().__init__()
        self.conv, self.head = torch.nn.Conv1d(2, 4, 3, stride=2, padding=1), torch.nn.Linear(4 * 5, 1)
        self.side = torch.nn.Linear(3, 1)
        self.unused = torch.nn.Linear(1, 1) if unused else None

    def forward(self, x: torch.Tensor, plan: torch.Tensor) -> torch.Tensor:
        return (self.head(torch.relu(self.conv(x)).flatten(1)) + self.side(plan)).squeeze(1).pow(2)


def _ghost_step(pruned: bool, seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor], list[bool]]:
    """One ghost-clipping backward on a fixed batch, ours (`pruned`) or Opacus' own: the
    per-row norms, the clipped gradients, and whether each parameter had a gradient
    when the clipping factors were taken (after the first pass)."""
    from opacus.utils.fast_gradient_clipping_utils import DPTensorFastGradientClipping

    from generators.private import PrivateTraining

    torch.manual_seed(seed)
    model, rows = _Branched(), (torch.randn(40, 2, 10), torch.randn(40, 3))
    private = PrivateTraining(model, torch.optim.SGD(model.parameters(), lr=0.1), rows,
                              privacy=PrivacySpec(epsilon=10.0), batch_size=20, steps=5, seed=0)
    seen: list[bool] = []
    coef = private.module.get_clipping_coef
    private.module.get_clipping_coef = lambda: seen.extend(p.grad is not None for p in model.parameters()) or coef()
    private.optimizer.zero_grad()
    per_row = private.module(*(r[:12] for r in rows))
    loss = private.loss(per_row)
    (loss if pruned else DPTensorFastGradientClipping(private.module, private.optimizer, per_row)).backward()
    norms, grads = private.module.per_sample_gradient_norms, [p.grad.clone() for p in model.parameters()]
    private.close()
    return norms, grads, seen


def test_the_pruned_first_pass_clips_as_opacus_two_full_passes_do():
    """Our first backward pass asks autograd for the hooked layers' input and output
    gradients only: the same per-row norms and clipped gradients as Opacus' two full
    passes (a side layer fed by data included), and no parameter gradient before clipping."""
    norms, grads, seen = _ghost_step(pruned=True)
    opacus_norms, opacus_grads, opacus_seen = _ghost_step(pruned=False)
    assert torch.allclose(norms, opacus_norms, rtol=1e-5) and norms.std() > 0.01 * norms.mean()
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(grads, opacus_grads))
    assert any(g.abs().sum() > 0 for g in grads)
    assert seen == [False] * len(grads), "the first pass computed parameter gradients"
    assert opacus_seen == [True] * len(grads), "Opacus' full first pass does (the check can fail)"


def test_a_layer_without_a_norm_from_the_first_pass_is_refused():
    """A trainable layer the forward never used has no norm: clipping would otherwise read
    one left from an earlier step, so the step fails instead."""
    from generators.private import PrivateTraining

    model, rows = _Branched(unused=True), (torch.randn(40, 2, 10), torch.randn(40, 3))
    private = PrivateTraining(model, torch.optim.SGD(model.parameters(), lr=0.1), rows,
                              privacy=PrivacySpec(epsilon=10.0), batch_size=20, steps=5, seed=0)
    with pytest.raises(RuntimeError, match="no per-row gradient norm"):
        private.loss(private.module(*(r[:12] for r in rows))).backward()
    private.close()


@pytest.mark.parametrize("epsilon, sample_rate, steps", [(1.0, 128 / 1438, 400), (10.0, 128 / 1438, 400),
                                                         (3.0, 1 / 3, 900), (0.3, 0.5, 5)])
def test_the_noise_solve_meets_opacus_contract_in_fewer_accountant_calls(epsilon, sample_rate, steps, monkeypatch):
    """ε spent by the solved σ lies in [target - tolerance, target] by the PRV accountant's
    own count, as Opacus' bisection promises, and the search asks the accountant less often."""
    from opacus.accountants import PRVAccountant
    from opacus.accountants.utils import get_noise_multiplier

    from generators.private import EPSILON_TOLERANCE, noise_multiplier

    calls = []
    count = PRVAccountant.get_epsilon
    monkeypatch.setattr(PRVAccountant, "get_epsilon", lambda self, **kw: calls.append(1) or count(self, **kw))
    delta = 1e-4
    sigma = noise_multiplier(epsilon=epsilon, delta=delta, sample_rate=sample_rate, steps=steps)
    ours = len(calls)
    calls.clear()
    theirs = get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate, steps=steps,
                                  accountant="prv")
    accountant = PRVAccountant()
    accountant.history = [(sigma, sample_rate, steps)]
    assert epsilon - EPSILON_TOLERANCE <= count(accountant, delta=delta) <= epsilon
    assert sigma == pytest.approx(theirs, rel=0.02), "both land within the tolerance of the least noise"
    assert ours < len(calls)


def test_the_noise_solve_gives_up_above_the_largest_noise():
    from generators.private import noise_multiplier

    with pytest.raises(ValueError, match="too low"):
        noise_multiplier(epsilon=1e-5, delta=1e-4, sample_rate=0.5, steps=1000)
    assert noise_multiplier(epsilon=3.0, delta=1e-4, sample_rate=0.5, steps=5) > 0, "a budget that can train does"
