"""Prefect artifacts for every run: a markdown summary and a metrics table."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact


def _key(job: str, kind: str) -> str:
    return f"{job}-{kind}"  # artifact keys: lowercase, dashes; job names already are


def publish_artifacts(summary: dict[str, Any]) -> None:
    job = summary["job"]["name"]
    failures = summary.get("failure_lines") or []
    lines = [
        f"# {job}: **{summary['status']}**",
        "",
        f"- run: `{summary['run_id']}` at `{summary['run_dir']}`",
        f"- generator: `{summary['generator']['name']}`"
        + (" (reused fitted model)" if summary["generator"]["reused_fit"] else ""),
        f"- rows: {summary['rows']['synthetic']:,} synthetic from {summary['rows']['train']:,} training records",
        f"- time: {summary['timings']['total_s']:.1f} s",
        "- suites: " + ", ".join(f"{name} {'passed' if ok else 'FAILED'}" for name, ok in summary["suites"].items()),
    ]
    if failures:
        lines += ["", "## Failing expectations", *(f"- {f}" for f in failures)]
    create_markdown_artifact(key=_key(job, "summary"), markdown="\n".join(lines), description=f"{job} run summary")
    rows = [{"metric": k, "value": round(v, 6)} for k, v in sorted(summary["metrics"].items())]
    if rows:
        create_table_artifact(key=_key(job, "metrics"), table=rows, description=f"{job} metrics")
