"""`synth`: the command line. Exit codes: 0 published, 1 validation failed
(quarantined), 2 bad input.

It lives in flows/ because it runs Prefect flows; pipeline/ stays free of Prefect."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable, Optional

import typer
import yaml
from rich.console import Console
from rich.table import Table

from flows.display import console, progress_bars, quiet_expected_errors
from pipeline.core.data import RECORD_UNIT
from pipeline.core.errors import BadInputError, QuarantinedError, SynthpipeError
from pipeline.core.manifest import Status

app = typer.Typer(add_completion=False, no_args_is_help=True, help="synthpipe: fit, sample, validate, publish synthetic data.")

REPO = Path(__file__).resolve().parents[1]
DEMO_JOB = REPO / "data" / "jobs" / "penguins-demo.yaml"


def _guard(fn: Callable[[], int]) -> None:
    """Run a command; our errors become one line on stderr and their exit code."""
    try:
        code = fn()
    except SynthpipeError as err:
        console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(err.exit_code) from None
    raise typer.Exit(code)


def _parse_conditions(pairs: list[str]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInputError(f"--condition takes COLUMN=VALUE, got {pair!r}")
        out[key] = yaml.safe_load(value)  # "3" -> 3, "yes" -> "yes", "true" -> True
    return out or None


def _run_job(
    job_file: Path, overrides: dict[str, Any], *, dask_address: str | None = None, dask_workers: int | None = None,
    **flow_args: Any,
) -> int:
    from pipeline.jobs import load_job

    spec = load_job(job_file, overrides)  # bad input fails here, before Prefect starts
    from pipeline.sources import check_reachable

    check_reachable(spec.source)
    quiet_expected_errors()
    from flows.synthesize import synthesize

    flow = synthesize
    if dask_address or dask_workers:
        from prefect_dask import DaskTaskRunner

        runner = (DaskTaskRunner(address=dask_address) if dask_address else
                  DaskTaskRunner(cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1, "processes": True}))
        flow = synthesize.with_options(task_runner=runner)
    with progress_bars():
        summary = flow(job=spec.model_dump(mode="json"), **flow_args)
    _print_summary(summary)
    return exit_code(summary)


def exit_code(summary: dict[str, Any]) -> int:
    """0 for a published run, 1 for a quarantined one."""
    return 0 if summary["status"] == Status.PUBLISHED.value else QuarantinedError.exit_code


def _print_summary(summary: dict[str, Any], out: Console = console) -> None:
    console = out
    status = summary["status"]
    colour = "green" if status == Status.PUBLISHED.value else "red"
    console.print(f"\n[bold {colour}]{status}[/]  {summary['run_dir']}")
    console.print(f"report: {summary['report']}")
    rows = summary["rows"]
    if summary.get("balance"):
        added = ", ".join(f"{k}: +{v:,}" for k, v in summary["balance"]["added"].items())
        console.print(f"balanced {summary['balance']['target']!r}, records added per class: {added}")
    unit = RECORD_UNIT[summary["job"]["source"]["modality"]]
    in_rows = f" ({rows['synthetic']:,} rows)" if unit == "sequences" else ""
    console.print(f"{rows['requested']:,} synthetic {unit}{in_rows} from {rows['train']:,} training {unit} "
                  f"in {summary['timings']['total_s']:.1f} s"
                  + (" (fitted model reused)" if summary["generator"]["reused_fit"] else ""))
    table = Table("metric", "value", title="metrics", title_justify="left")
    for name, value in sorted(summary["metrics"].items()):
        table.add_row(name, f"{value:.4g}")
    console.print(table)
    for name, ok in summary["suites"].items():
        console.print(f"  {name:<9} {'[green]passed[/]' if ok else '[red]FAILED[/]'}")
    for failure in summary.get("failure_lines") or []:
        console.print(f"  [red]✗[/] {failure}", highlight=False)


@app.command()
def run(
    job: Path = typer.Argument(..., help="YAML job spec"),
    rows: Optional[int] = typer.Option(None, help="records to sample (overrides sample.rows)"),
    seed: Optional[int] = typer.Option(None, help="random seed (overrides sample.seed)"),
    condition: list[str] = typer.Option([], "--condition", "-c", help="COLUMN=VALUE: sample only this class"),
    output: Optional[Path] = typer.Option(None, help="output root (overrides output)"),
    refit: bool = typer.Option(False, help="fit again even if a model for this source and settings exists"),
    resume: Optional[str] = typer.Option(None, help="RUN_ID of an interrupted run to finish without refitting"),
    dask_address: Optional[str] = typer.Option(None, help="sample and validate on this Dask cluster"),
    dask_workers: Optional[int] = typer.Option(None, help="start a local Dask cluster with N worker processes"),
) -> None:
    """Run a job: fit, sample, validate, publish or quarantine."""

    def go() -> int:
        overrides: dict[str, Any] = {}
        if rows is not None:
            overrides["sample.rows"] = rows
        if seed is not None:
            overrides["sample.seed"] = seed
        conditions = _parse_conditions(condition)
        if conditions:
            overrides["sample.conditions"] = conditions
        if output is not None:
            overrides["output"] = str(output)
        return _run_job(job, overrides, refit=refit, resume=resume, dask_address=dask_address,
                        dask_workers=dask_workers)

    _guard(go)


@app.command()
def augment(
    job: Path = typer.Argument(..., help="YAML job spec"),
    target: str = typer.Option(..., help="class column: tabular column, time-series static column, or image label"),
    balance: bool = typer.Option(True, help="generate just enough records of each minority class to balance TARGET"),
    seed: Optional[int] = typer.Option(None, help="random seed (overrides sample.seed)"),
    output: Optional[Path] = typer.Option(None, help="output root (overrides output)"),
    refit: bool = typer.Option(False, help="fit again even if a model for this source and settings exists"),
) -> None:
    """Augment a dataset: balance the classes of TARGET with synthetic records."""

    def go() -> int:
        if not balance:
            raise BadInputError("augment needs --balance (the only augmentation strategy so far)")
        overrides: dict[str, Any] = {"sample.seed": seed, "output": str(output) if output else None}
        return _run_job(job, overrides, balance=target, refit=refit)

    _guard(go)


@app.command()
def serve(jobs_dir: Path = typer.Argument(..., help="folder of YAML job files")) -> None:
    """Serve one deployment per job file, with its cron schedule, until interrupted."""

    def go() -> int:
        from flows.deployments import load_jobs, serve_jobs

        for path, spec in load_jobs(jobs_dir):
            console.print(f"  {spec.name:<28} {spec.schedule or 'no schedule (trigger it)'}  {path}")
        serve_jobs(jobs_dir)
        return 0

    _guard(go)


@app.command()
def deployments(
    jobs_dir: Path = typer.Argument(..., help="folder of YAML job files"),
    write: Optional[Path] = typer.Option(None, help="write prefect.yaml here instead of printing it"),
    work_pool: str = typer.Option("synthpipe", help="work pool the deployments run on"),
) -> None:
    """Print (or write) the prefect.yaml declaring one deployment per job file."""

    def go() -> int:
        from flows.deployments import prefect_yaml

        text = yaml.safe_dump(prefect_yaml(jobs_dir, work_pool=work_pool), sort_keys=False)
        if write:
            write.write_text(text)
            console.print(f"wrote {write}")
        else:
            print(text)
        return 0

    _guard(go)


@app.command()
def demo(
    output: Path = typer.Option(Path("data/synthetic"), help="output root"),
    rows: Optional[int] = typer.Option(None, help="records to sample"),
) -> None:
    """The default job: the bundled Palmer penguins table through tabular/diffusion."""

    def go() -> int:
        source = REPO / "data" / "sources" / "penguins.csv"
        if not source.exists():  # a wheel install has no data/: copy the packaged table
            import palmerpenguins

            source.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(palmerpenguins.__file__).parent / "data" / "penguins.csv", source)
        overrides: dict[str, Any] = {"output": str(output), "source.path": str(source)}
        if rows is not None:
            overrides["sample.rows"] = rows
        return _run_job(DEMO_JOB, overrides)

    _guard(go)


@app.command()
def validate(run_dir: Path = typer.Argument(..., help="a run folder, or a job folder (its LATEST run)")) -> None:
    """Re-run the contract, fidelity and privacy suites on an existing run."""

    def go() -> int:
        from pipeline.revalidate import revalidate

        summary = revalidate(run_dir)
        _print_summary(summary)
        return exit_code(summary)

    _guard(go)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="a run folder, or a job folder (its LATEST run)"),
    open_browser: bool = typer.Option(False, "--open", help="open the report in a browser"),
) -> None:
    """Rebuild report.html for a run and print where it is."""

    def go() -> int:
        from pipeline.revalidate import rebuild_report

        path = rebuild_report(run_dir)
        print(path)
        if open_browser:
            import webbrowser

            webbrowser.open(path.resolve().as_uri())
        return 0

    _guard(go)


@app.command()
def generators() -> None:
    """List the registered generators."""

    def go() -> int:
        from generators import available, get

        table = Table("name", "description", "module")
        for name in available():
            cls = get(name)
            table.add_row(name, (cls.__doc__ or "").strip().split("\n")[0], cls.__module__)
        console.print(table)
        return 0

    _guard(go)


def main() -> None:  # pragma: no cover - console script entry
    app(prog_name="synth")


if __name__ == "__main__":  # pragma: no cover
    main()
