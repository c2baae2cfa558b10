"""Shared fixtures. Real data, real Prefect (one harness per session), no network."""

from __future__ import annotations

from pathlib import Path

import pytest

import flows  # noqa: F401  (sets the offline Prefect / GX environment defaults before they load)
from pipeline.core.data import TabularData
from pipeline.core.schema import profile_table
from pipeline.sources import read_table

ROOT = Path(__file__).resolve().parents[1]
PENGUINS = ROOT / "data" / "sources" / "penguins.csv"

# Hyper-parameters that make each registered generator train in seconds, used by the
# shared generator contract test (tests/unit/test_generator_contract.py). A generator
# without an entry is tested with its defaults.
FAST_PARAMS: dict[str, dict] = {}
FAST_PARAMS["timeseries/gan"] = {"epochs": 2, "pretrain_epochs": 2, "hidden": 8}
FAST_PARAMS["timeseries/vae"] = {"epochs": 3, "channels": [8]}
FAST_PARAMS["timeseries/diffusion"] = {"epochs": 3, "channels": 8, "depth": 2, "sampling_steps": 3}
FAST_PARAMS["tabular/diffusion"] = {"steps": 4, "hidden": 32, "depth": 1, "sampling_steps": 4}
FAST_PARAMS["tabular/gan"] = {"epochs": 2, "batch_size": 100}
FAST_PARAMS["tabular/vae"] = {"epochs": 2}
FAST_PARAMS["timeseries/par"] = {"epochs": 2}
FAST_PARAMS["image/gan"] = {"steps": 10, "width": 8, "latent_dim": 8, "ema_decay": 0.5}
FAST_PARAMS["image/vae"] = {"steps": 10, "width": 8}
FAST_PARAMS["image/diffusion"] = {"steps": 10, "dim": 8, "timesteps": 50, "sampling_steps": 3, "ema_decay": 0.5}


@pytest.fixture(scope="session")
def penguins() -> TabularData:
    """The demo's real table: 344 rows, numeric, integer, categorical, missing values."""
    frame = read_table(PENGUINS)
    return TabularData(frame=frame, profile=profile_table(frame))


@pytest.fixture(scope="session")
def tabular_source(penguins) -> TabularData:
    """Source used by the generator contract test for tabular generators."""
    return penguins


@pytest.fixture(scope="session")
def prefect_harness():
    """One real Prefect test server for the whole session (starting one costs ~10 s)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@pytest.fixture(scope="session")
def timeseries_source():
    """Grunfeld investment panel (data/sources/grunfeld.csv): 11 firms x 20 years, a
    static industry per firm, three numeric features; loaded by the real loader."""
    from pipeline.sources import load_source
    from pipeline.core.spec import SourceSpec

    spec = SourceSpec(modality="timeseries", path=ROOT / "data" / "sources" / "grunfeld.csv", entity="firm", time="year")
    return load_source(spec)


@pytest.fixture(scope="session")
def image_source():
    """The first 200 of scikit-learn's handwritten digits (data/sources/digits.parquet):
    8x8 grey, every class 0-9 present; loaded by the real loader."""
    from pipeline.core.data import ImageData
    from pipeline.sources.image import load_images
    from pipeline.core.spec import SourceSpec

    digits = load_images(SourceSpec(modality="image", path=ROOT / "data" / "sources" / "digits.parquet"))
    return ImageData(images=digits.images[:200], labels=digits.labels[:200], label_name=digits.label_name)
