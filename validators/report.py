"""report.html: one self-contained file per run (figures inlined as base64 PNG, CSS
inline, no external asset) that says whether the run was published and why.

Built from what `validate_run` wrote to `validation/` (suites, results, outcome), so
`synth report RUN_DIR` can rebuild it without recomputing metrics, plus a sample of
real and synthetic records for the figures."""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.core.data import SourceData
from pipeline.core.manifest import read_manifest
from pipeline.core.runfiles import MANIFEST, VALIDATION_DIR, load_synthetic
from validators import gx
from validators.gate import read_outcome, read_result
from validators.outcome import SUITES, Outcome, describe
from validators.plots import closest_record_distances, distance_histogram, figures
from validators.thresholds import EPSILON

REPORT = "report.html"
FIGURE_RECORDS = 5000  # synthetic records read for the figures when none are given

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.85em;width:100%}
th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4} tr.fail td{background:#fdecea} td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.2em .7em;border-radius:.3em;color:#fff;font-weight:600}
.published,.pass{background:#2e7d32} .quarantined,.fail{background:#c62828}
.ok{color:#2e7d32;font-weight:600} .ko{color:#c62828;font-weight:600}
figure{margin:1em 0} img{max-width:100%} figcaption{color:#555;font-size:.9em}
ul.failures li{margin:.2em 0} code{font-size:.9em}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _mark(ok: bool) -> str:
    return '<span class="ok">✓ pass</span>' if ok else '<span class="ko">✗ fail</span>'


def _run_facts(run_dir: Path, spec: Any) -> list[tuple[str, str]]:
    facts = [("run", run_dir.name.removeprefix(".tmp-"))]
    if spec is not None:
        facts += [("job", spec.name), ("modality", spec.source.modality), ("generator", spec.generator_name),
                  ("source", spec.source.location), ("requested records", f"{spec.sample.rows:,}"),
                  ("seed", str(spec.sample.seed))]
    elif (run_dir / MANIFEST).is_file():
        manifest = read_manifest(run_dir)
        facts += [("job", manifest.job.get("name", "?")), ("generator", manifest.generator.name),
                  ("synthetic records", f"{manifest.rows.get('synthetic', 0):,}")]
    facts.append(("report written", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
    return facts


def _suite_section(name: str, result: dict[str, Any]) -> str:
    entries = sorted(result["results"], key=lambda e: e["success"])  # failures first
    rows = []
    for entry in entries:
        d = describe(name, entry)
        cls = "" if entry["success"] else ' class="fail"'
        rows.append(f"<tr{cls}><td>{_mark(entry['success'])}</td><td><code>{_e(d.target)}</code></td>"
                    f"<td>{_e(d.check)}</td><td>{_e(d.observed)}</td><td>{_e(d.expected)}</td></tr>")
    stats = result.get("statistics") or {}
    head = (f"<h3>{_e(name)} {_mark(bool(result['success']) and bool(entries))} "
            f"<small>{stats.get('successful_expectations', 0)} of {stats.get('evaluated_expectations', 0)} "
            f"expectations met</small></h3>")
    if not rows:
        return head + "<p>No expectation: no threshold is defined for this suite, so it fails.</p>"
    return (head + "<table><tr><th></th><th>column / metric</th><th>requires</th><th>observed</th>"
            "<th>expected</th></tr>" + "".join(rows) + "</table>")


def _metrics_section(metrics: dict[str, float], suites: dict[str, dict], results: dict[str, dict]) -> str:
    bounds: dict[str, tuple[Any, Any, str, bool]] = {}
    for name in ("fidelity", "privacy"):
        ok = {e["expectation_config"]["kwargs"].get("column"): e["success"] for e in results[name]["results"]}
        for exp in suites[name]["expectations"]:
            kw, meta = exp["kwargs"], exp.get("meta") or {}
            bounds[kw["column"]] = (kw.get("min_value"), kw.get("max_value"), meta.get("why", ""), ok.get(kw["column"]))
    rows = []
    for metric in sorted(m for m in set(metrics) | set(bounds) if not m.endswith((CI_LOW, CI_HIGH))):
        lo, hi, why, ok = bounds.get(metric, (None, None, "", None))
        value = f"{metrics[metric]:.4g}" if metric in metrics else "missing"
        status = "reported only" if ok is None else _mark(ok)
        cls = ' class="fail"' if ok is False else ""
        rows.append(f"<tr{cls}><td><code>{_e(metric)}</code></td><td class=num>{value}</td>"
                    f"<td class=num>{'' if lo is None else f'{lo:g}'}</td><td class=num>{'' if hi is None else f'{hi:g}'}</td>"
                    f"<td>{status}</td><td>{_e(why)}</td></tr>")
    return ("<table><tr><th>metric</th><th>value</th><th>min</th><th>max</th><th>status</th><th>why this bound</th></tr>"
            + "".join(rows) + "</table>")


CI_LOW, CI_HIGH = "_ci_low", "_ci_high"  # a metric's interval: privacy.X_ci_low / privacy.X_ci_high


def _epsilon_sentence(metrics: dict[str, float]) -> str:
    """What the run's ε means, in one sentence."""
    eps = metrics.get(EPSILON)
    if eps is None:
        return ""
    if not math.isfinite(eps):
        return ("<p>Not trained with differential privacy (ε = ∞): the attacks below are the only privacy "
                "evidence.</p>")
    return (f"<p>Trained with differential privacy at ε = {eps:.3g}: whatever an attacker knows, the model "
            f"changes the odds that any one training record was in the data by at most a factor "
            f"e<sup>ε</sup> = {math.exp(eps):.3g} (up to the small probability δ in the manifest); the model "
            "read its ranges, categories and time grid from the job's declarations, not from the rows. This "
            "report is not covered: its figures show real records and its metrics are computed on them, so "
            "share the synthetic data, not the report (README, \"Differential privacy\").</p>")


def _privacy_section(metrics: dict[str, float], suites: dict[str, dict], results: dict[str, dict]) -> str:
    """Every privacy metric (attack risks, copy rates, distances) with its interval when
    the metrics carry one, its bound and whether it passed."""
    bounds = {exp["kwargs"]["column"]: exp["kwargs"] for exp in suites["privacy"]["expectations"]}
    ok = {e["expectation_config"]["kwargs"].get("column"): e["success"] for e in results["privacy"]["results"]}
    names = sorted(m for m in metrics if m.startswith("privacy.") and not m.endswith((CI_LOW, CI_HIGH)))
    rows = []
    for name in names:
        lo, hi = metrics.get(name + CI_LOW), metrics.get(name + CI_HIGH)
        interval = f"{lo:.3g} – {hi:.3g}" if lo is not None and hi is not None else ""
        kw = bounds.get(name, {})
        bound = " ".join(p for p in (f"≥ {kw['min_value']:g}" if kw.get("min_value") is not None else "",
                                     f"≤ {kw['max_value']:g}" if kw.get("max_value") is not None else "") if p)
        status = "reported only" if name not in ok else _mark(ok[name])
        cls = ' class="fail"' if ok.get(name) is False else ""
        rows.append(f"<tr{cls}><td><code>{_e(name.removeprefix('privacy.'))}</code></td>"
                    f"<td class=num>{metrics[name]:.4g}</td><td class=num>{interval}</td>"
                    f"<td class=num>{_e(bound)}</td><td>{status}</td></tr>")
    if not rows:
        return "<p>No privacy metric was computed.</p>"
    return (_epsilon_sentence(metrics) + "<p>Attacks use the holdout (real records the generator never saw) as non-members; intervals "
            "are the attacks' own confidence intervals.</p><table style='width:auto'><tr><th>metric</th>"
            "<th>value</th><th>interval</th><th>bound</th><th>status</th></tr>" + "".join(rows) + "</table>")


def _distance_figure(train: SourceData, holdout: SourceData, synthetic: SourceData) -> str:
    from validators.metrics.representation import fit_vectors

    png = distance_histogram(closest_record_distances(*fit_vectors(train, holdout, synthetic)))
    return (f"<figure><img alt='distance to closest training record' src='data:image/png;base64,{png}'>"
            "<figcaption>Distance of each record to its closest training record. Real unseen records "
            "(holdout, green) show how close new data naturally falls; synthetic records (orange) piled up "
            "left of them, near 0, are copies or near-copies of training records.</figcaption></figure>")


def render(run_dir: Path, outcome: Outcome, suites: dict[str, dict], results: dict[str, dict],
           real: SourceData, synthetic: SourceData | None, spec: Any = None,
           train: SourceData | None = None, holdout: SourceData | None = None) -> str:
    """The report as one HTML string."""
    facts = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _run_facts(run_dir, spec))
    summary = "".join(f"<tr><td>{_e(n)}</td><td>{_mark(outcome.suites.get(n, False))}</td></tr>" for n in SUITES)
    fails = "".join(f"<li>{_e(f)}</li>" for f in outcome.failures)
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>synthpipe report {_e(run_dir.name)}</title>"
        f"<style>{CSS}</style></head><body>",
        f"<h1>synthpipe run <span class='badge {outcome.status}'>{outcome.status}</span></h1>",
        f"<table style='width:auto'>{facts}</table>",
        f"<h2>Suites</h2><table style='width:auto'><tr><th>suite</th><th>result</th></tr>{summary}</table>",
        f"<h2>Failing expectations ({len(outcome.failures)})</h2>",
        f"<ul class='failures'>{fails}</ul>" if fails else "<p>None: every expectation was met.</p>",
        "<h2>Privacy</h2>", _privacy_section(outcome.metrics, suites, results),
    ]
    has_records = synthetic is not None and len(synthetic) > 1
    if has_records and train is not None and holdout is not None and len(train) > 1 and len(holdout):
        parts.append(_distance_figure(train, holdout, synthetic))
    parts += [
        "<h2>Metrics and thresholds</h2>", _metrics_section(outcome.metrics, suites, results),
        "<h2>Figures</h2>",
    ]
    if synthetic is not None and len(synthetic):
        for caption, png in figures(real, synthetic):
            parts.append(f"<figure><img alt='{_e(caption)}' src='data:image/png;base64,{png}'>"
                         f"<figcaption>{_e(caption)}</figcaption></figure>")
    else:
        parts.append("<p>No synthetic records to plot.</p>")
    parts.append("<h2>Every expectation</h2>")
    parts += [_suite_section(name, results[name]) for name in SUITES]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dir: str | Path, *, source: SourceData, synthetic: SourceData | None = None,
                 outcome: Outcome | None = None, spec: Any = None, train: SourceData | None = None,
                 holdout: SourceData | None = None) -> Path:
    """Write `run_dir/report.html` from the run's `validation/` folder (run `validate_run`
    first). `synthetic` defaults to what the gate computed the metrics on (kept in the
    outcome of this process), else the first FIGURE_RECORDS records of the run. With the
    `train` / `holdout` the metrics used, the privacy section plots distances to train."""
    run_dir = Path(run_dir)
    outcome = outcome or read_outcome(run_dir)
    folder = run_dir / VALIDATION_DIR
    suites = {n: gx.read_json(folder / f"{n}.suite.json") for n in SUITES}
    results = {n: read_result(run_dir, n) for n in SUITES}
    if synthetic is None:
        synthetic = outcome.synthetic
    if synthetic is None:
        synthetic = load_synthetic(run_dir, source, max_records=FIGURE_RECORDS)
    path = run_dir / REPORT
    tmp = run_dir / f".{REPORT}.tmp"
    tmp.write_text(render(run_dir, outcome, suites, results, source, synthetic, spec, train, holdout), encoding="utf-8")
    tmp.replace(path)
    return path
