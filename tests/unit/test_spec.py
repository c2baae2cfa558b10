"""Job spec: YAML in, validated model out; every error names the field."""

from pathlib import Path

import pytest

from pipeline.core.errors import SpecError
from pipeline.core.spec import parse_spec
from pipeline.jobs import load_job, parse_job

BASE = {
    "name": "churn-augment",
    "source": {"modality": "tabular", "path": "data/sources/penguins.csv"},
    "generator": {"family": "copula"},
}


def _with(**changes):
    spec = {k: dict(v) if isinstance(v, dict) else v for k, v in BASE.items()}
    for dotted, value in changes.items():
        node = spec
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return spec


def test_defaults_fill_optional_sections():
    spec = parse_job(BASE)
    assert spec.sample.rows == 1000 and spec.validation.holdout == 0.2
    assert spec.generator_name == "tabular/copula"
    assert spec.run_root == Path("data/synthetic/churn-augment")


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"generator__family": "transformer"}, "generator.family: 'transformer' is not available for modality 'tabular'"),
        ({"source__modality": "audio"}, "source.modality: got 'audio'"),
        ({"sample__rows": 0}, "sample.rows"),
        ({"sample__rows": -5}, "sample.rows"),
        ({"name": "../x"}, "name"),
        ({"name": "Upper Case"}, "name"),
        ({"sample__rowz": 10}, "sample.rowz: unknown field"),
        ({"validation__holdout": 1.5}, "validation.holdout"),
    ],
)
def test_bad_fields_name_the_field(changes, fragment):
    with pytest.raises(SpecError) as err:
        parse_job(_with(**changes))
    assert fragment in str(err.value)


def test_unknown_family_lists_allowed_ones():
    with pytest.raises(SpecError, match=r"allowed: .*copula"):
        parse_job(_with(generator__family="nope"))


def test_yaml_overrides_like_cli_flags(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("name: j\nsource: {modality: tabular, path: x.csv}\ngenerator: {family: copula}\nsample: {rows: 10}\n")
    spec = load_job(job, {"sample.rows": 5000, "sample.seed": 3})
    assert (spec.sample.rows, spec.sample.seed) == (5000, 3)


def test_invalid_yaml_names_the_line(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("name: j\nsource: [unclosed\n")
    with pytest.raises(SpecError, match=r"invalid YAML .* line"):
        load_job(job)


def test_missing_job_file():
    with pytest.raises(SpecError, match="job file not found"):
        load_job("no/such/job.yaml")


def test_relative_source_path_resolves_from_job_folder(tmp_path):
    (tmp_path / "t.csv").write_text("a\n1\n")
    (tmp_path / "job.yaml").write_text("name: j\nsource: {modality: tabular, path: t.csv}\ngenerator: {family: copula}\n")
    assert load_job(tmp_path / "job.yaml").source.path == tmp_path / "t.csv"


def test_the_spec_checks_families_against_the_names_it_is_given():
    """The core spec imports no generator: the allowed families are injected."""
    assert parse_spec(BASE, generators={"tabular/copula"}).generator_name == "tabular/copula"
    with pytest.raises(SpecError, match="allowed: diffusion"):
        parse_spec(BASE, generators={"tabular/diffusion", "image/gan"})


def test_column_kinds_override_the_profile_and_unknown_kinds_are_refused():
    spec = parse_job(_with(source__columns={"year": "categorical", "rowid": "id"}))
    assert {k: v.kind for k, v in spec.source.columns.items()} == {"year": "categorical", "rowid": "id"}
    declared = parse_job(_with(source__columns={"age": {"range": [17, 90], "nullable": True}})).source.columns
    assert declared["age"].range == (17, 90) and declared["age"].nullable and declared["age"].kind is None
    with pytest.raises(SpecError, match="source.columns.age.rang"):
        parse_job(_with(source__columns={"age": {"rang": [17, 90]}}))
    with pytest.raises(SpecError, match="source.columns.year"):
        parse_job(_with(source__columns={"year": "ordinal"}))


def test_a_job_without_family_gets_its_modality_default():
    """One rule (DEFAULT_FAMILY), every modality; params given without a family are kept."""
    from generators import available
    from pipeline.core.spec import DEFAULT_FAMILY

    assert {f"{m}/{f}" for m, f in DEFAULT_FAMILY.items()} <= set(available())
    for modality, family in [("tabular", "diffusion"), ("timeseries", "diffusion"), ("image", "gan")]:
        spec = {**BASE, "source": {**BASE["source"], "modality": modality}}
        assert parse_job({k: v for k, v in spec.items() if k != "generator"}).generator_name == f"{modality}/{family}"
        kept = parse_job({**spec, "generator": {"params": {"epochs": 3}}})
        assert kept.generator.family == family and kept.generator.params == {"epochs": 3}
    assert parse_job(BASE).generator_name == "tabular/copula", "a family given is kept"
