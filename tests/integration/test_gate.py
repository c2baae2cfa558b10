"""The gate on real run folders: Parquet parts streamed in chunks through the contract,
real metrics (validators.metrics.compute_metrics) judged by the fidelity and privacy
suites, everything written to validation/, and the status decided."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.schema import conform
from pipeline.split import split_source
from validators import gx
from pipeline.core.runfiles import output_chunks
from validators.gate import read_outcome, run_contract, validate_run
from validators.contract import build_contract_suite
from validators.thresholds import Bound

# Explicit bounds so these tests check the gate's mechanics; the calibrated defaults in
# validators/thresholds.py are tested against real and degraded data by the metrics tests.
BOUNDS = {
    "fidelity.detection_auc": Bound(None, 0.75, "real and synthetic hard to tell apart"),
    "fidelity.column_similarity_min": Bound(0.7, None, "every marginal close to the source"),
    "privacy.exact_copy_excess": Bound(None, 0.01, "no more copies of training rows than chance"),
    "privacy.membership_auc": Bound(None, 0.6, "membership not guessable from the synthetic data"),
}

# Metric values as compute_metrics returns them (the first two tests compute them for real): the
# contract and re-validation tests need not pay for the classifiers again.
GOOD = {"fidelity.detection_auc": 0.55, "fidelity.column_similarity_min": 0.9,
        "privacy.exact_copy_excess": 0.0, "privacy.membership_auc": 0.5}


def write_run(run_dir, frame: pd.DataFrame, parts: int = 2):
    """A run folder as the sink leaves it: `parts` Parquet files written from pandas."""
    run_dir.mkdir()
    for i, chunk in enumerate(np.array_split(np.arange(len(frame)), parts)):
        table = pa.Table.from_pandas(frame.iloc[chunk], preserve_index=False)
        pq.write_table(table, run_dir / f"part-{i:05d}.parquet", row_group_size=50)
    return run_dir


@pytest.fixture(scope="module")
def split(penguins):
    return split_source(penguins, 0.5, seed=0)


def test_holdout_passed_off_as_synthetic_is_published(tmp_path, penguins, split):
    train, holdout = split
    run_dir = write_run(tmp_path / "run", conform(holdout.frame, penguins.profile))
    outcome = validate_run(run_dir, source=penguins, train=train, holdout=holdout, bounds=BOUNDS, chunk_rows=60)
    assert outcome.suites == {"contract": True, "fidelity": True, "privacy": True}, outcome.failures
    assert outcome.status == "published" and outcome.failures == []
    assert {"fidelity.detection_auc", "privacy.dcr_share"} <= set(outcome.metrics)

    folder = run_dir / "validation"
    for name in ("contract", "fidelity", "privacy"):
        suite = gx.suite_from_json(json.loads((folder / f"{name}.suite.json").read_text()))
        result = json.loads((folder / f"{name}.result.json").read_text())
        assert len(result["results"]) == len(suite.expectations) > 0
    contract = json.loads((folder / "contract.result.json").read_text())
    assert contract["meta"]["synthpipe_chunks"] == 4  # two parts of 86 rows, each read as 60 + 26
    assert read_outcome(run_dir).to_dict() == outcome.to_dict()


def test_training_rows_passed_off_as_synthetic_fail_privacy(tmp_path, penguins, split):
    train, holdout = split
    run_dir = write_run(tmp_path / "run", conform(train.frame, penguins.profile))
    outcome = validate_run(run_dir, source=penguins, train=train, holdout=holdout, bounds=BOUNDS)
    assert outcome.suites["contract"] and not outcome.suites["privacy"]
    assert outcome.status == "quarantined"
    failing = {f.target for f in outcome.failures if f.suite == "privacy"}
    assert "privacy.exact_copy_excess" in failing


def test_broken_output_is_quarantined_and_revalidation_reruns(tmp_path, penguins, split):
    train, holdout = split
    broken = conform(holdout.frame, penguins.profile)
    broken.loc[5, "island"] = "Atlantis"
    run_dir = write_run(tmp_path / "run", broken)
    first = validate_run(run_dir, source=penguins, train=train, holdout=holdout, bounds=BOUNDS, metrics=GOOD)
    assert first.status == "quarantined" and not first.suites["contract"]
    (failure,) = [f for f in first.failures if f.suite == "contract"]
    assert failure.target == "island" and "'Atlantis'" in failure.observed
    assert "island" in str(failure) and "one of ['Biscoe', 'Dream', 'Torgersen']" in str(failure)

    # fix the data in place and validate the same folder again: the gate re-runs everything
    write = pa.Table.from_pandas(conform(holdout.frame, penguins.profile), preserve_index=False)
    for part in run_dir.glob("part-*.parquet"):
        part.unlink()
    pq.write_table(write, run_dir / "part-00000.parquet")
    again = validate_run(run_dir, source=penguins, train=train, holdout=holdout, bounds=BOUNDS, metrics=GOOD)
    assert again.status == "published" and read_outcome(run_dir).status == "published"


def test_suites_without_thresholds_fail_rather_than_pass_vacuously(tmp_path, penguins, split):
    train, holdout = split
    run_dir = write_run(tmp_path / "run", conform(holdout.frame, penguins.profile))
    outcome = validate_run(run_dir, source=penguins, train=train, holdout=holdout, bounds={},
                           metrics={"fidelity.detection_auc": 0.5})
    assert outcome.suites == {"contract": True, "fidelity": False, "privacy": False}
    assert {f.target for f in outcome.failures} == {"suite"}


def test_empty_output_fails_the_contract(tmp_path, penguins, split):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    result = run_contract(run_dir, penguins, build_contract_suite(penguins))
    assert not result["success"]


def test_sequences_split_across_parts_are_checked_whole(tmp_path, timeseries_source):
    """Parts and row batches may cut a sequence anywhere; chunks never do."""
    frame = timeseries_source.frame
    run_dir = write_run(tmp_path / "run", frame, parts=3)  # 220 rows: parts cut inside firms
    chunks = list(output_chunks(run_dir, rows=45, entity="firm"))
    assert sum(map(len, chunks)) == len(frame)
    assert all(not set(a["firm"]) & set(b["firm"]) for a, b in zip(chunks, chunks[1:]))
    result = run_contract(run_dir, timeseries_source, build_contract_suite(timeseries_source), chunk_rows=45)
    assert result["success"], [e["expectation_config"] for e in result["results"] if not e["success"]]
    # the same output with one firm's rows moved to the end is caught across chunks
    moved = pd.concat([frame[frame["firm"] != "General Motors"], frame[frame["firm"] == "General Motors"].iloc[:5]])
    moved = pd.concat([frame.iloc[:20], moved.iloc[20:]])
    run2 = write_run(tmp_path / "run2", moved, parts=2)
    bad = run_contract(run2, timeseries_source, build_contract_suite(timeseries_source), chunk_rows=45)
    assert not bad["success"]
