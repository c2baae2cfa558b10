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


def test_privacy_section_shows_intervals_and_distance_histogram(tmp_path, penguins):
    from pipeline.split import split_source

    train, holdout = split_source(penguins, 0.2, seed=0)
    run_dir = write_part(tmp_path / "run", pa.Table.from_pandas(train.frame, preserve_index=False))
    metrics = {**METRICS, "privacy.membership_tpr_at_1fpr": 0.41, "privacy.membership_tpr_at_1fpr_ci_low": 0.33,
               "privacy.membership_tpr_at_1fpr_ci_high": 0.49}
    validate_run(run_dir, source=penguins, train=train, holdout=holdout, bounds=BOUNDS, metrics=metrics)
    page = write_report(run_dir, source=penguins, train=train, holdout=holdout).read_text()
    privacy = page[page.index("<h2>Privacy</h2>"): page.index("<h2>Metrics and thresholds</h2>")]
    assert "membership_tpr_at_1fpr" in privacy and "0.33 – 0.49" in privacy
    assert "_ci_low" not in page  # an interval is shown with its metric, not as a metric of its own
    assert "dcr_share" in privacy and "≥ 0.3 ≤ 0.7" in privacy and "✗ fail" in privacy
    assert "closest training record" in privacy and privacy.count("data:image/png;base64,") == 1
    assert page.count("data:image/png;base64,") == 3  # + marginals and correlations


def test_closest_record_distances_put_copies_at_zero_and_holdout_apart(penguins):
    from pipeline.split import split_source
    from validators.metrics.representation import fit_vectors
    from validators.plots import closest_record_distances

    train, holdout = split_source(penguins, 0.2, seed=0)
    d = closest_record_distances(*fit_vectors(train, holdout, train))
    train_d, holdout_d, synthetic_d = d.values()
    assert np.all(synthetic_d < 1e-5)  # copies sit on their training record (float32 rounding)
    assert np.median(holdout_d) > 0.1 and np.median(train_d) > 0.1  # real records have no twin


def test_wide_table_caps_heatmap_and_marginals(penguins):
    import base64
    import io

    import pandas as pd
    from PIL import Image

    from pipeline.core.schema import profile_table
    from validators.plots import MAX_HEATMAP, MAX_PANELS, correlation_difference, marginal_columns

    rng = np.random.default_rng(0)
    numeric = penguins.frame.select_dtypes("number").dropna().reset_index(drop=True)
    wide = pd.concat({f"{c}_{k}": numeric[c] + rng.normal(0, numeric[c].std() * 0.1, len(numeric))
                      for k in range(75) for c in numeric.columns}, axis=1)  # 300 columns
    synthetic = wide.sample(frac=1.0, random_state=1).reset_index(drop=True)
    synthetic["bill_length_mm_7"] = synthetic["bill_length_mm_7"] + 30  # one marginal far off
    profile = profile_table(wide)
    shown = [c.name for c in marginal_columns(wide, synthetic, profile)]
    assert len(shown) == MAX_PANELS and "bill_length_mm_7" in shown
    png = Image.open(io.BytesIO(base64.b64decode(correlation_difference(wide, synthetic, profile))))
    assert max(png.size) < 90 * (1.2 + 0.45 * MAX_HEATMAP + 3)  # pixels at 90 dpi: capped, not 137 inches
