"""report.html: one self-contained file that shows the verdict, every expectation, the
metrics against their thresholds and real-vs-synthetic figures for each modality."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.data import ImageData
from pipeline.core.images import images_to_table
from pipeline.core.schema import conform
from pipeline.core.spec import SourceSpec
from pipeline.sources import load_source
from tests.conftest import ROOT
from validators.gate import validate_run
from validators.report import write_report
from validators.thresholds import Bound

BOUNDS = {
    "fidelity.detection_auc": Bound(None, 0.75, "real and synthetic hard to tell apart"),
    "privacy.dcr_share": Bound(0.3, 0.7, "as close to train as to holdout"),
}
METRICS = {"fidelity.detection_auc": 0.62, "privacy.dcr_share": 0.93, "fidelity.correlation_diff": 0.04}


def write_part(run_dir, table: pa.Table):
    run_dir.mkdir()
    pq.write_table(table, run_dir / "part-00000.parquet")
    return run_dir


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page), "external asset"
    assert "<link" not in page and "<script" not in page


def test_tabular_report_lists_failures_metrics_and_figures(tmp_path, penguins):
    broken = conform(penguins.frame, penguins.profile)
    broken.loc[7, "species"] = "Emperor"
    run_dir = write_part(tmp_path / "run", pa.Table.from_pandas(broken, preserve_index=False))
    outcome = validate_run(run_dir, source=penguins, train=penguins, holdout=penguins, bounds=BOUNDS, metrics=METRICS)
    path = write_report(run_dir, source=penguins)  # outcome and figures' sample read back from the run
    page = path.read_text()
    assert path == run_dir / "report.html"
    assert_self_contained(page)
    assert page.count("data:image/png;base64,") == 2  # marginals + correlation difference
    assert "quarantined" in page and outcome.status == "quarantined"
    # both failing expectations, with what was observed
    assert "Emperor" in page and "privacy.dcr_share" in page and "0.93" in page
    assert "as close to train as to holdout" in page  # the bound's why
    assert page.count("✗ fail") >= 4  # 2 failing rows + contract and privacy in the summary
    assert "fidelity.correlation_diff" in page and "reported only" in page


def test_timeseries_report_overlays_sequences(tmp_path, timeseries_source):
    run_dir = write_part(tmp_path / "run", pa.Table.from_pandas(timeseries_source.frame, preserve_index=False))
    validate_run(run_dir, source=timeseries_source, train=timeseries_source, holdout=timeseries_source,
                 bounds=BOUNDS, metrics={"fidelity.detection_auc": 0.5, "privacy.dcr_share": 0.5})
    page = write_report(run_dir, source=timeseries_source).read_text()
    assert_self_contained(page)
    assert "published" in page and "Sampled sequences" in page
    assert page.count("data:image/png;base64,") == 2  # overlay + marginals


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_source(SourceSpec(modality="image", path=ROOT / "data/sources/digits.parquet", label="label"))


def test_image_report_shows_image_grid(tmp_path, digits):
    noise = ImageData(images=np.random.default_rng(0).integers(0, 256, (40, 8, 8, 1), dtype=np.uint8),
                      labels=np.arange(40) % 10, label_name="label")
    run_dir = write_part(tmp_path / "run", images_to_table(noise))
    validate_run(run_dir, source=digits, train=digits, holdout=digits, bounds=BOUNDS, metrics=METRICS)
    page = write_report(run_dir, source=digits).read_text()
    assert_self_contained(page)
    assert "Real (left) vs synthetic (right) images" in page and page.count("data:image/png;base64,") == 1
    assert "decodable PNG bytes" in page  # contract rows for images are listed
