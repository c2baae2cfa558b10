"""The `synth` CLI end to end: bad input is one line and exit code 2 with nothing
written; a real job runs the real Prefect flow and writes a complete run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from pipeline.core.runfiles import read_output
import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import PENGUINS

runner = CliRunner()


def _job(tmp_path: Path, **fields) -> Path:
    spec = {
        "name": "cli-test",
        "source": {"modality": "tabular", "path": str(PENGUINS)},
        "generator": {"family": "copula"},
        "sample": {"rows": 300, "seed": 1, "batch_size": 100},
        "validation": {"target": "species"},
        "output": str(tmp_path / "out"),
    }
    for key, value in fields.items():
        section, _, leaf = key.partition("__")
        if leaf:
            spec[section][leaf] = value
        else:
            spec[section] = value
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


def _bad(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error:") and fragment in result.stderr and not result.stdout
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists(), "bad input must leave no output folder"


def test_missing_source_file(tmp_path, prefect_harness):
    _bad(tmp_path, ["run", str(_job(tmp_path, source__path=str(tmp_path / "nope.csv")))], "source not found")


def test_corrupt_parquet(tmp_path, prefect_harness):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really parquet PAR1")
    _bad(tmp_path, ["run", str(_job(tmp_path, source__path=str(bad)))], "corrupt or not Parquet")


def test_unparseable_csv(tmp_path, prefect_harness):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b'a,b\n1,"unterminated\n2,3\n')
    _bad(tmp_path, ["run", str(_job(tmp_path, source__path=str(bad)))], "cannot parse CSV")


def test_empty_table(tmp_path, prefect_harness):
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n")
    _bad(tmp_path, ["run", str(_job(tmp_path, source__path=str(empty)))], "empty (0 rows)")


def test_all_null_column(tmp_path, prefect_harness):
    frame = pd.read_csv(PENGUINS).assign(notes=None)
    path = tmp_path / "nulls.parquet"
    frame.to_parquet(path)
    _bad(tmp_path, ["run", str(_job(tmp_path, source__path=str(path)))], "'notes' are entirely null")


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ({"generator__family": "transformer"}, "generator.family: 'transformer' is not available"),
        ({"source__modality": "audio"}, "source.modality: got 'audio'"),
        ({"sample__rows": 0}, "sample.rows"),
        ({"name": "../x"}, "name"),
        ({"generator__colour": "red"}, "generator.colour: unknown field"),
    ],
)
def test_bad_spec_fields(tmp_path, fields, fragment):
    _bad(tmp_path, ["run", str(_job(tmp_path, **fields))], fragment)


def test_rows_flag_must_be_positive(tmp_path):
    _bad(tmp_path, ["run", str(_job(tmp_path)), "--rows", "-3"], "sample.rows")


def test_help_states_the_exit_codes():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for promise in ("0 published", "1 quarantined", "2 bad input", "3 internal or environment failure"):
        assert promise in text


# Penguins' facts of the rows that no declaration states: each range column's real min and
# max (inside penguins-private.yaml's rounder declared ranges) and real null shares.
RANGE_COLUMNS = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")


def _real_only_values() -> set[float]:
    frame = pd.read_csv(PENGUINS)
    values = {float(v) for c in RANGE_COLUMNS for v in (frame[c].min(), frame[c].max())}
    return values | {float(v) for v in frame.isna().mean() if v > 0}


def _numbers(node) -> set[float]:
    """Every number anywhere in a JSON document."""
    if isinstance(node, dict):
        return set().union(*map(_numbers, node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*map(_numbers, node)) if node else set()
    return {float(node)} if isinstance(node, (int, float)) and not isinstance(node, bool) else set()


def _leaked(run: Path) -> set[float]:
    """Real-only values in a run's manifest schema and its stored contract suite."""
    manifest = json.loads((run / "manifest.json").read_text())
    suite = json.loads((run / "validation" / "contract.suite.json").read_text())
    return _real_only_values() & (_numbers(manifest["schema"]) | _numbers(suite))


def test_invalid_yaml(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("name: x\nsource: {modality: tabular\n")
    _bad(tmp_path, ["run", str(path)], "invalid YAML")


def test_unknown_generator_params_are_named(tmp_path, prefect_harness):
    _bad(tmp_path, ["run", str(_job(tmp_path, generator={"family": "copula", "params": {"epochz": 3}}))], "epochz")


def test_run_end_to_end_through_the_flow(tmp_path, prefect_harness):
    job = _job(tmp_path)
    result = runner.invoke(app, ["run", str(job), "--rows", "250", "--seed", "4"])
    assert result.exit_code in (0, 1), result.output
    job_root = tmp_path / "out" / "cli-test"
    runs = [p for p in job_root.iterdir() if not p.name.startswith(".") and p.is_dir()]
    assert len(runs) == 1, "exactly one visible run folder"
    run = runs[0]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["rows"]["synthetic"] == 250 and manifest["seed"] == 4
    assert manifest["source"]["fingerprint"].startswith("sha256:")
    assert set(manifest["suites"]) == {"contract", "fidelity", "privacy"}
    assert manifest["privacy"] is None and manifest["metrics"]["privacy.epsilon"] == float("inf"), "no DP: ε = inf"
    assert manifest["status"] == ("published" if result.exit_code == 0 else "quarantined")
    assert (run / "report.html").is_file() and (run / "model" / "config.json").is_file()
    assert any((run / "validation").glob("*.json"))
    assert len(_leaked(run)) == len(_real_only_values()), "a plain run records the rows' own ranges and null shares"
    table = read_output(run)
    assert table.column_names == list(pd.read_csv(PENGUINS).columns)
    assert (job_root / "LATEST").exists() == (manifest["status"] == "published")
    assert manifest["status"] in result.stdout and str(run) in result.stdout, "the summary goes to stdout"
    # Not a terminal: progress is plain lines on stderr, the last one the whole sample.
    assert "sample 250 rows: 250/250" in result.stderr and "fit tabular/copula: " in result.stderr

    # What downstream training reads: the same rows, the manifest beside them.
    from pipeline.consume import load

    dataset = load("cli-test", version=run.name, root=tmp_path / "out", allow_quarantined=True)
    assert dataset.manifest["run_id"] == run.name
    assert dataset.to_pandas().shape == (250, table.num_columns)

    # The run's Prefect artifacts: a markdown summary and a metrics table.
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["cli-test-summary", "cli-test-metrics"]))
        )
    by_key = {a.key: a for a in artifacts}
    assert manifest["status"] in by_key["cli-test-summary"].data and run.name in by_key["cli-test-summary"].data
    assert "fidelity.detection_auc" in str(by_key["cli-test-metrics"].data)

    # `synth validate` re-runs the suites on the finished run; `synth report` rebuilds the page.
    (run / "report.html").unlink()
    revalidated = runner.invoke(app, ["validate", str(run)])
    assert revalidated.exit_code == result.exit_code, revalidated.output
    again_manifest = json.loads((run / "manifest.json").read_text())
    assert "revalidated_at" in again_manifest and again_manifest["metrics"] == manifest["metrics"]
    rebuilt = runner.invoke(app, ["report", str(run)])
    assert rebuilt.exit_code == 0 and (run / "report.html").is_file()

    # Same source and settings: the fitted model is reused, and the run is a new folder.
    again = runner.invoke(app, ["run", str(job), "--rows", "100", "--seed", "4"])
    assert again.exit_code in (0, 1), again.output
    assert "fitted model reused" in again.output
    assert len([p for p in job_root.iterdir() if not p.name.startswith(".") and p.is_dir()]) == 2


@pytest.mark.parametrize("family", ["copula", "gan", "vae"])
def test_sdv_generators_refuse_privacy_before_any_fit(tmp_path, prefect_harness, family):
    job = _job(tmp_path, generator={"family": family, "privacy": {"epsilon": 3}})
    _bad(tmp_path, ["run", str(job)], f"tabular/{family} does not train with differential privacy")


def test_dp_run_of_the_demo_job_publishes_with_its_epsilon(tmp_path, prefect_harness):
    """The shipped private demo job (data/jobs/penguins-private.yaml) as it is, through the
    CLI: published, ε in the manifest and the report, and its declared fidelity bar shown
    beside each metric it lowers."""
    import yaml

    spec = yaml.safe_load((PENGUINS.parents[1] / "jobs" / "penguins-private.yaml").read_text())
    spec["source"]["path"] = str(PENGUINS)
    spec["output"] = str(tmp_path / "out")
    job = tmp_path / "dp.yaml"
    job.write_text(yaml.safe_dump(spec))
    result = runner.invoke(app, ["run", str(job)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "out" / "penguins-private"
    run = next(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "published" and (root / "LATEST").exists()
    privacy = manifest["privacy"]
    assert 0 < privacy["epsilon"] <= privacy["target_epsilon"] == spec["generator"]["privacy"]["epsilon"]
    assert privacy["delta"] == pytest.approx(1 / (10 * manifest["rows"]["train"]))
    assert {"accountant", "noise_multiplier", "max_grad_norm", "sample_rate", "steps"} <= set(privacy)
    assert manifest["metrics"]["privacy.epsilon"] == privacy["epsilon"]
    gated = json.loads((run / "validation" / "privacy.result.json").read_text())["results"]
    (check,) = [r for r in gated if r["expectation_config"]["kwargs"]["column"] == "privacy.epsilon"]
    assert check["success"] and manifest["suites"]["privacy"] == all(r["success"] for r in gated)
    report = (run / "report.html").read_text()
    assert "Trained with differential privacy at ε = " in report
    assert report.count("job override") >= 4, "ε and the three lowered fidelity bounds, each marked in the report"
    declared = {c: d["range"] for c, d in spec["source"]["columns"].items() if c in RANGE_COLUMNS}
    assert all(not {float(x) for x in declared[c]} & _real_only_values() for c in RANGE_COLUMNS), "bounds differ"
    assert not _leaked(run), "no real min, max or null share in the manifest's schema or the contract suite"
    schema = {c["name"]: c for c in manifest["schema"]["columns"]}
    assert all([schema[c]["min"], schema[c]["max"]] == declared[c] for c in RANGE_COLUMNS), "the declared ranges"
    out = read_output(run).to_pandas()
    for name, domain in spec["source"]["columns"].items():  # nothing outside the declared domains
        values = out[name].dropna()
        if "range" in domain:
            assert values.between(*domain["range"]).all(), name
        else:
            assert set(values) <= set(domain["categories"]), name


def test_dp_run_of_a_job_without_declared_domains_is_refused_before_any_fit(tmp_path, prefect_harness):
    job = _job(tmp_path, generator={"family": "diffusion", "params": {"steps": 10}, "privacy": {"epsilon": 3}})
    _bad(tmp_path, ["run", str(job)], "declare these columns' domains in source.columns (species: categories")
