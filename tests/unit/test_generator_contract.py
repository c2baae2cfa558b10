"""The contract every registered generator meets: a generator gets this whole suite by
being registered. Schema kept, chunked sampling, same seed -> same output, different
seed -> different output, the fit seed taken from the generator's own params (and no
global RNG left changed), save/load round trip, conditions honoured and checked."""

from __future__ import annotations

import random
import threading

import numpy as np
import pandas as pd
import pytest
import torch

from generators import available, get, load_generator
from pipeline.core.data import ImageData
from pipeline.core.errors import ConditionError, NotFittedError
from pipeline.core.plan import plan_chunks
from pipeline.core.schema import conform
from tests.conftest import FAST_PARAMS

N, BATCH = 25, 10  # three chunks: 10, 10, 5
FEW = 6  # records for the checks that need no chunking (PAR draws about two sequences a second)
# Fitting these is deterministic (SDV's GaussianCopula: per-column MLE fits and a
# correlation matrix), so their fit seed cannot change the model.
DETERMINISTIC_FIT = {"tabular/copula"}


def _make(name: str, **params):
    return get(name)(device="cpu", **{**FAST_PARAMS.get(name, {}), **params})


@pytest.fixture(scope="module", params=available())
def fitted(request):
    name = request.param
    source = request.getfixturevalue(f"{name.split('/')[0]}_source")
    return _make(name).fit(source), source


def _global_rng_states() -> tuple:
    """Python's, numpy's and torch's process-wide RNG states, comparable with ==.

    Python's is compared only while Prefect's event-loop threads are not running: after a
    flow has run in the process (the integration tests), the services on them draw from it
    on their own (the jitter of `critical_service_loop`, reconnect backoff), so it can
    change under any code. `make test-unit` starts no flow, and checks it."""
    prefect = any(t.name.endswith("EventLoopThread") for t in threading.enumerate())
    python = None if prefect else random.getstate()
    return python, np.random.get_state()[1].tobytes(), torch.get_rng_state().numpy().tobytes()


def _count(batches, source) -> int:
    if source.modality == "timeseries":
        return sum(b[source.entity].nunique() for b in batches)
    return sum(len(b) for b in batches)


def _same(a, b) -> bool:
    if isinstance(a, ImageData):
        labels_equal = (a.labels is None and b.labels is None) or np.array_equal(a.labels, b.labels)
        return np.array_equal(a.images, b.images) and labels_equal
    try:
        pd.testing.assert_frame_equal(a, b)
        return True
    except AssertionError:
        return False


def test_unfitted_generator_refuses_to_sample():
    for name in available():
        with pytest.raises(NotFittedError):
            next(get(name)(device="cpu", **FAST_PARAMS.get(name, {})).sample(1, seed=0))


def test_chunked_sampling_keeps_the_schema(fitted):
    generator, source = fitted
    batches = list(generator.sample(N, seed=3, batch_size=BATCH))
    assert len(batches) == 3
    assert _count(batches, source) == N
    if isinstance(source, ImageData):
        for b in batches:
            assert b.images.dtype == np.uint8 and b.images.shape[1:] == source.images.shape[1:]
        return
    expected = conform(source.frame.head(50), source.profile).dtypes
    for b in batches:
        assert list(b.columns) == source.profile.names
        for col in b.columns:
            assert _compatible(str(b[col].dtype), str(expected[col])), (col, b[col].dtype, expected[col])


def _compatible(actual: str, expected: str) -> bool:
    """The source's dtype, or its nullable twin where the generator produced nulls."""
    return actual == expected or (expected, actual) in {("int64", "Int64"), ("bool", "boolean")}


def test_same_seed_same_output_different_seed_different(fitted):
    generator, _ = fitted
    a = list(generator.sample(N, seed=11, batch_size=BATCH))
    b = list(generator.sample(N, seed=11, batch_size=BATCH))
    c = list(generator.sample(N, seed=12, batch_size=BATCH))
    assert all(_same(x, y) for x, y in zip(a, b))
    assert not all(_same(x, z) for x, z in zip(a, c))


def test_a_chunk_drawn_alone_equals_the_same_chunk_in_sequence(fitted):
    generator, _ = fitted
    whole = list(generator.sample(N, seed=5, batch_size=BATCH))
    assert _same(generator.sample_chunk(plan_chunks(N, BATCH, seed=5)[1]), whole[1])


def test_the_fit_seed_comes_from_params_and_global_rngs_are_left_alone(fitted):
    """A refit with the same params is the same model (same samples for the same sample
    seed); another `seed` is another model; fit and sample restore every global RNG."""
    generator, source = fitted
    before = _global_rng_states()
    again = _make(generator.name).fit(source)
    assert _global_rng_states() == before
    expected = next(generator.sample(FEW, seed=4))
    assert _global_rng_states() == before
    assert _same(next(again.sample(FEW, seed=4)), expected)
    if generator.name not in DETERMINISTIC_FIT:
        other = _make(generator.name, seed=1).fit(source)
        assert not _same(next(other.sample(FEW, seed=4)), expected)


def test_save_load_round_trip(fitted, tmp_path):
    generator, _ = fitted
    generator.save(tmp_path / "model")
    loaded = load_generator(tmp_path / "model")
    assert type(loaded) is type(generator)
    for x, y in zip(generator.sample(N, seed=2, batch_size=BATCH), loaded.sample(N, seed=2, batch_size=BATCH)):
        assert _same(x, y)


def test_unknown_condition_column_is_refused(fitted):
    generator, _ = fitted
    with pytest.raises(ConditionError, match="cannot condition"):
        next(generator.sample(5, seed=0, conditions={"no_such_column": 1}))


def _values(batch, column: str) -> list:
    """`column` of every record of a batch, as text (images: their labels)."""
    values = batch.labels if isinstance(batch, ImageData) else batch[column]
    return [str(v) for v in values]


def test_a_valid_condition_holds_in_every_record_and_an_unseen_value_is_refused(fitted):
    generator, source = fitted
    if not generator.condition_values_:
        pytest.skip(f"{generator.name} has no conditionable column on this source")
    column = next(iter(generator.condition_values_))
    value = source.class_values(column).mode()[0]  # the commonest value: even a barely trained model draws it
    batch = next(generator.sample(FEW, seed=6, conditions={column: value}))
    assert _count([batch], source) == FEW
    assert all(v == str(value) for v in _values(batch, column))
    unseen = "no-such-" + str(value)
    with pytest.raises(ConditionError, match="never seen"):
        next(generator.sample(5, seed=0, conditions={column: unseen}))
