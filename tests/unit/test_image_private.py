"""DP-SGD (generator.privacy) for image/gan, image/vae and image/diffusion on real digits:
the spent ε stays under the target, the same seed gives the same private model, a budget
that cannot train is refused, and nothing read from the training images outside the
gradient steps lands in a private model (no snap table, declared classes in equal shares)."""

from __future__ import annotations

import pytest
import torch

from generators import get, load_generator
from pipeline.core.data import ImageData
from pipeline.core.errors import BadInputError

FAMILIES = ["image/gan", "image/vae", "image/diffusion"]
CLASSES = list(range(10))  # the digits' classes, declared
PRIVACY = {"epsilon": 3.0}
TINY = {  # a few DP-SGD steps of small networks: every part of the private path runs
    "image/gan": {"width": 8, "latent_dim": 8, "levels": 1},
    "image/vae": {"width": 8, "latent_dim": 4, "levels": 1},
    "image/diffusion": {"dim": 8, "dim_mults": (1,), "timesteps": 50, "sampling_steps": 2},
}
STEPS, BATCH = 6, 32


def _fit(name: str, images: ImageData, *, seed: int = 0, privacy: dict | None = PRIVACY, **params):
    settings = TINY[name] | {"steps": STEPS, "batch_size": BATCH, "seed": seed, "classes": CLASSES} | params
    return get(name)(device="cpu", privacy=privacy, **settings).fit(images)


@pytest.fixture(scope="module", params=FAMILIES)
def private(request, image_source):
    return _fit(request.param, image_source)


def test_spent_epsilon_never_exceeds_the_target(private, image_source):
    spent = private.privacy_spent_
    assert 0 < spent["epsilon"] <= spent["target_epsilon"] == PRIVACY["epsilon"]
    assert spent["steps"] == STEPS and spent["accountant"] == "prv" and spent["noise_multiplier"] > 0
    assert spent["delta"] == pytest.approx(1 / (10 * len(image_source)))


def test_private_model_holds_no_pixel_maps_and_no_label_shares(private, image_source, tmp_path):
    """digits use 17 grey levels, so a plain fit snaps to them and maps its outputs onto
    their distribution; a private one may read neither, nor the classes' shares: it
    samples the declared classes equally."""
    plain = _fit(private.name, image_source, privacy=None, classes=None)
    assert len(plain.pixel_table_) == 256 and len(plain.intensity_map_) == 1  # one channel
    assert plain.class_probs_ != [0.1] * 10
    private.save(tmp_path / "m")
    state = load_generator(tmp_path / "m")
    assert state.pixel_table_ == [] and state.intensity_map_ == []
    assert state.classes_ == CLASSES and state.class_probs_ == [0.1] * 10
    assert state.privacy_spent_ == private.privacy_spent_
    out = next(private.sample(400, seed=0))
    assert len(set(out.images.ravel().tolist())) > 17, "outputs are not snapped to the source's grey levels"
    assert next(state.sample(50, seed=3)).images.tobytes() == next(private.sample(50, seed=3)).images.tobytes()


def test_same_seed_same_private_model(private, image_source):
    again, other = _fit(private.name, image_source), _fit(private.name, image_source, seed=1)
    for name, net in private.nets_.items():
        weights = net.state_dict()
        assert all(torch.equal(weights[k], v) for k, v in again.nets_[name].state_dict().items()), name
    assert any(not torch.equal(net.state_dict()[k], v) for name, net in private.nets_.items()
               for k, v in other.nets_[name].state_dict().items()), "the seed matters"


@pytest.mark.parametrize("name", FAMILIES)
def test_a_budget_that_cannot_train_is_refused(name, image_source):
    with pytest.raises(BadInputError, match="cannot train this model"):
        _fit(name, image_source, privacy={"epsilon": 0.01}, steps=400)


def test_a_private_fit_needs_the_classes_declared_and_complete(image_source):
    with pytest.raises(BadInputError, match="declare generator.params.classes"):
        _fit("image/vae", image_source, classes=None)
    with pytest.raises(BadInputError, match=r"lacks labels \['9'\]"):
        _fit("image/vae", image_source, classes=list(range(9)))


def test_the_private_discriminator_has_no_spectral_norm_the_plain_one_has(image_source):
    """Opacus refuses torch's spectral_norm (a layer with buffers) under DP-SGD."""
    private = _fit("image/gan", image_source)
    plain = _fit("image/gan", image_source, privacy=None)
    assert not any("parametrizations" in k for k in private.nets_["discriminator"].state_dict())
    assert any("parametrizations" in k for k in plain.nets_["discriminator"].state_dict())


def test_a_private_runs_layout_and_contract_list_the_declared_classes(image_source):
    """The label set a private image run writes (manifest layout, contract) is the declared
    `params.classes`, not the labels its images have: here the source holds digits 0-4 only,
    which the plain view shows and the private one must not."""
    import numpy as np

    from pipeline.core.domains import private_view
    from validators.contract import build_contract_suite

    def label_sets(suite) -> list:
        return [e["kwargs"]["value_set"] for e in suite.to_json_dict()["expectations"]
                if e["kwargs"].get("column") == image_source.label_name and "value_set" in e["kwargs"]]

    low = image_source.take(np.flatnonzero(np.isin(image_source.labels, [0, 1, 2, 3, 4])))
    assert low.layout()["classes"] == [0, 1, 2, 3, 4] == label_sets(build_contract_suite(low))[0]
    assert private_view(low, CLASSES).layout()["classes"] == CLASSES
    assert label_sets(build_contract_suite(low, private=True, classes=CLASSES)) == [CLASSES]
    assert private_view(low, CLASSES).take(np.arange(3)).layout()["classes"] == CLASSES  # kept through a split
