"""Class balancing plans for every modality, on real data."""

import numpy as np
import pytest

from pipeline.augment import balance_plan, reference_data
from pipeline.core.data import ImageData
from pipeline.core.errors import BadInputError
from pipeline.split import split_source


def test_tabular_plan_fills_up_to_the_largest_class(penguins):
    counts = penguins.frame["species"].value_counts()
    plan = balance_plan(penguins, "species")
    assert plan == {k: int(counts.max() - v) for k, v in counts.items() if v < counts.max()}
    assert "Adelie" not in plan  # the largest class gets nothing


def test_timeseries_plan_counts_entities_of_a_static_column(timeseries_source):
    per_entity = timeseries_source.frame.drop_duplicates(timeseries_source.entity)
    static = timeseries_source.static[0]
    counts = per_entity[static].value_counts()
    assert balance_plan(timeseries_source, static) == {
        k: int(counts.max() - v) for k, v in counts.items() if v < counts.max()
    }
    with pytest.raises(BadInputError, match="not a static column"):
        balance_plan(timeseries_source, timeseries_source.features[0])


def test_image_plan_counts_labels(image_source):
    labels, counts = np.unique(image_source.labels, return_counts=True)
    plan = balance_plan(image_source, image_source.label_name or "label")
    assert sum(plan.values()) == int(counts.max() * len(counts) - counts.sum())
    unlabelled = ImageData(images=image_source.images)
    with pytest.raises(BadInputError, match="has none"):
        balance_plan(unlabelled, "label")


def test_bad_targets_are_named(penguins):
    with pytest.raises(BadInputError, match="not a column"):
        balance_plan(penguins, "colour")
    with pytest.raises(BadInputError, match="continuous"):
        balance_plan(penguins, "bill_length_mm")


def test_reference_data_keeps_only_generated_classes(penguins):
    train, holdout = split_source(penguins, 0.2, seed=0)
    t, h = reference_data(train, holdout, conditions={"island": "Dream"}, balance=("species", ["Gentoo", "Chinstrap"]))
    assert set(t.frame["species"]) | set(h.frame["species"]) <= {"Gentoo", "Chinstrap"}
    assert set(t.frame["island"]) == {"Dream"}
