"""`synth`: the command line.

It lives in flows/ because it runs Prefect flows; pipeline/ stays free of Prefect."""

from __future__ import annotations

import errno
import json
import shutil
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flows.display import console, error_line, out, progress_bars, quiet_run_failures
from flows.server import ensure_api, stop_on_termination
from pipeline.core.data import RECORD_UNIT
from pipeline.core.errors import BAD_INPUT, FAILURE, PUBLISHED, QUARANTINED, BadInputError, SynthpipeError
from pipeline.core.manifest import Status

EXIT_CODES = f"""Exit codes: {PUBLISHED} published; {QUARANTINED} quarantined (the run finished, a suite failed);
{BAD_INPUT} bad input (nothing written); {FAILURE} internal or environment failure (disk full, read-only
output, Prefect server not reachable, a bug)."""

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="synthpipe: fit, sample, validate, publish synthetic data.\n\n" + EXIT_CODES)

REPO = Path(__file__).resolve().parents[1]
DEMO_JOB = REPO / "data" / "jobs" / "penguins-demo.yaml"
OPTIONS = {"debug": False}


@app.callback()
def main_options(debug: bool = typer.Option(False, "--debug", help="print full tracebacks and Prefect's own error logs")) -> None:
    OPTIONS["debug"] = debug


def failure_message(err: BaseException) -> tuple[str, int]:
    """One line and an exit code for any failure: our named errors carry both; the
    machine's (disk full, read-only, unreachable server) and bugs exit 3."""
    if isinstance(err, SynthpipeError):
        return str(err), err.exit_code
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full writing {err.filename or 'the output'}: free some space, then `synth runs JOB` " \
               "shows the interrupted run (resume it with --resume RUN_ID or remove it with `synth clean`)", FAILURE
    if isinstance(err, OSError) and err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write {err.filename or 'the output'}: {err.strerror}; choose another output folder " \
               "or fix its permissions", FAILURE
    if isinstance(err, OSError):
        return f"{err.strerror or err} ({err.filename or type(err).__name__}): an I/O failure of this machine", FAILURE
    if type(err).__module__.startswith("httpx"):
        return f"the Prefect API failed ({type(err).__name__}: {err}): is the Prefect server still running?", FAILURE
    first = str(err).splitlines()[0] if str(err) else ""
    return f"internal error {type(err).__name__}: {first} (run with --debug for the traceback and report it)", FAILURE


def _guard(fn: Callable[[], int]) -> None:
    """Run a command; any failure becomes one line on stderr and its exit code."""
    try:
        code = fn()
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        error_line("interrupted: `synth runs JOB` lists the run, `synth run JOB --resume RUN_ID` finishes it")
        raise typer.Exit(130) from None
    except Exception as err:
        if OPTIONS["debug"]:
            console.print(escape("".join(traceback.format_exception(err))), highlight=False)
        message, code = failure_message(err)
        error_line(message)
    raise typer.Exit(code)


def _parse_conditions(pairs: list[str]) -> dict[str, Any] | None:
    out_: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInputError(f"--condition takes COLUMN=VALUE, got {pair!r}")
        out_[key] = yaml.safe_load(value)  # "3" -> 3, "yes" -> "yes", "true" -> True
    return out_ or None


def _run_job(
    job_file: Path, overrides: dict[str, Any], *, as_json: bool = False, dask_address: str | None = None,
    dask_workers: int | None = None, balance: str | None = None, resume: str | None = None, **flow_args: Any,
) -> int:
    """Check everything that needs no fit, then make sure a Prefect API answers, then
    run the flow: bad input never waits for a server."""
    from pipeline.jobs import prepare
    from pipeline.preflight import preflight

    stop_on_termination()
    job = prepare(job_file, overrides, balance=balance, resume=resume)
    preflight(job)
    from flows.synthesize import run_synthesize, synthesize

    quiet_run_failures(OPTIONS["debug"])

    flow = synthesize
    if dask_address or dask_workers:
        from prefect_dask import DaskTaskRunner

        runner = (DaskTaskRunner(address=dask_address) if dask_address else
                  DaskTaskRunner(cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1, "processes": True}))
        flow = synthesize.with_options(task_runner=runner)
    ensure_api()
    with progress_bars():
        summary = run_synthesize(flow, job=job.spec.model_dump(mode="json"), balance=balance, resume=resume,
                                 **flow_args)
    _print_summary(summary, as_json=as_json)
    return exit_code(summary)


def exit_code(summary: dict[str, Any]) -> int:
    """0 for a published run, 1 for a quarantined one."""
    return PUBLISHED if summary["status"] == Status.PUBLISHED.value else QUARANTINED


def _print_summary(summary: dict[str, Any], out_: Console | None = None, *, as_json: bool = False) -> None:
    """The run summary on stdout: for people, or (`--json`) the summary dict for scripts."""
    console = out_ or out
    if as_json:
        console.out(json.dumps(summary, indent=2, default=str), highlight=False)
        return
    status = summary["status"]
    colour = "green" if status == Status.PUBLISHED.value else "red"
    console.print(f"\n[bold {colour}]{status}[/]  {escape(summary['run_dir'])}", highlight=False)
    console.print(f"report: {escape(summary['report'])}", highlight=False)
    rows = summary["rows"]
    if summary.get("balance"):
        added = ", ".join(f"{k}: +{v:,}" for k, v in summary["balance"]["added"].items())
        console.print(escape(f"balanced {summary['balance']['target']!r}, records added per class: {added}"))
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
        console.print(f"  [red]✗[/] {escape(failure)}", highlight=False)


def _continuation(history: Path | None, steps: int | None) -> dict[str, Any]:
    """`--continue FILE --steps N` as spec overrides (sample.history, sample.length)."""
    if history is None and steps is None:
        return {}
    if history is None:
        raise BadInputError("--steps goes with --continue HISTORY; for one long series set sample.length in the job")
    if steps is None or steps <= 0:
        raise BadInputError(f"--continue needs --steps N with N > 0 (the steps to generate), got {steps}")
    return {"sample.history": str(history), "sample.length": steps}


JSON_OPTION = typer.Option(False, "--json", help="print the run summary as JSON on stdout")


@app.command(epilog=EXIT_CODES)
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
    history: Optional[Path] = typer.Option(None, "--continue", help="a history (CSV/Parquet, the source's columns) "
                                           "to continue: one series of --steps steps after it"),
    steps: Optional[int] = typer.Option(None, help="with --continue: steps to generate after the history"),
    as_json: bool = JSON_OPTION,
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
            overrides["output.path"] = str(output)
        overrides |= _continuation(history, steps)
        return _run_job(job, overrides, refit=refit, resume=resume, dask_address=dask_address,
                        dask_workers=dask_workers, as_json=as_json)

    _guard(go)


@app.command(epilog=EXIT_CODES)
def augment(
    job: Path = typer.Argument(..., help="YAML job spec"),
    target: str = typer.Option(..., help="class column: tabular column, time-series static column, or image label"),
    balance: bool = typer.Option(True, help="generate just enough records of each minority class to balance TARGET"),
    seed: Optional[int] = typer.Option(None, help="random seed (overrides sample.seed)"),
    output: Optional[Path] = typer.Option(None, help="output root (overrides output)"),
    refit: bool = typer.Option(False, help="fit again even if a model for this source and settings exists"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Augment a dataset: balance the classes of TARGET with synthetic records."""

    def go() -> int:
        if not balance:
            raise BadInputError("augment needs --balance (the only augmentation strategy so far)")
        overrides: dict[str, Any] = {"sample.seed": seed, "output.path": str(output) if output else None}
        return _run_job(job, overrides, balance=target, refit=refit, as_json=as_json)

    _guard(go)


@app.command()
def serve(jobs_dir: Path = typer.Argument(..., help="folder of YAML job files")) -> None:
    """Serve one deployment per job file, with its cron schedule, until interrupted."""

    def go() -> int:
        from flows.deployments import load_jobs, serve_jobs

        for path, spec in load_jobs(jobs_dir):
            console.print(escape(f"  {spec.name:<28} {spec.schedule or 'no schedule (trigger it)'}  {path}"),
                          highlight=False)
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
            console.print(f"wrote {escape(str(write))}", highlight=False)
        else:
            print(text)
        return 0

    _guard(go)


@app.command(epilog=EXIT_CODES)
def demo(
    output: Path = typer.Option(Path("data/synthetic"), help="output root"),
    rows: Optional[int] = typer.Option(None, help="records to sample"),
    as_json: bool = JSON_OPTION,
) -> None:
    """The default job: the bundled Palmer penguins table through tabular/diffusion."""

    def go() -> int:
        source = REPO / "data" / "sources" / "penguins.csv"
        if not source.exists():  # a wheel install has no data/: copy the packaged table
            import palmerpenguins

            source.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(palmerpenguins.__file__).parent / "data" / "penguins.csv", source)
        overrides: dict[str, Any] = {"output.path": str(output), "source.path": str(source)}
        if rows is not None:
            overrides["sample.rows"] = rows
        return _run_job(DEMO_JOB, overrides, as_json=as_json)

    _guard(go)


@app.command(epilog=EXIT_CODES)
def validate(
    run_dir: Path = typer.Argument(..., help="a run folder, or a job folder (its LATEST run)"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Re-run the contract, fidelity and privacy suites on an existing run."""

    def go() -> int:
        from pipeline.revalidate import revalidate

        summary = revalidate(run_dir)
        _print_summary(summary, as_json=as_json)
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
        out.print(table)
        return 0

    _guard(go)


def _job_root(job: Path) -> Path:
    """A job file (its output folder / name) or the job's output folder itself."""
    if job.is_file():
        from pipeline.jobs import load_job

        return load_job(job).run_root
    if job.is_dir():
        return job
    raise BadInputError(f"{job} is neither a job file nor a job's output folder (e.g. data/synthetic/JOB)")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@app.command()
def runs(
    job: Path = typer.Argument(..., help="a job file, or the job's output folder (data/synthetic/JOB)"),
    as_json: bool = JSON_OPTION,
) -> None:
    """List a job's runs: published, quarantined, interrupted (resumable or not)."""

    def go() -> int:
        from pipeline.runs import list_runs

        entries = list_runs(_job_root(job))
        if as_json:
            out.out(json.dumps([{"run_id": e.run_id, "status": e.status, "path": str(e.path), "latest": e.latest,
                                 "age_s": round(e.age_s, 1)} for e in entries], indent=2), highlight=False)
            return 0
        table = Table("run", "status", "age", "path", title=f"runs of {escape(str(_job_root(job)))}",
                      title_justify="left")
        for e in entries:
            table.add_row(e.run_id, e.status + (" (LATEST)" if e.latest else ""), _age(e.age_s), escape(str(e.path)))
        out.print(table)
        return 0

    _guard(go)


@app.command()
def clean(
    job: Path = typer.Argument(..., help="a job file, or the job's output folder (data/synthetic/JOB)"),
    older_than: str = typer.Option(..., help="remove interrupted runs untouched for longer than this (90s, 30m, 12h, 1d)"),
) -> None:
    """Remove interrupted runs older than an age; finished runs, LATEST and fitted models stay."""

    def go() -> int:
        from pipeline.runs import clean_interrupted, parse_age

        seconds = parse_age(older_than)
        removed = clean_interrupted(_job_root(job), seconds)
        for e in removed:
            out.print(f"removed {e.status} run {e.run_id} ({_age(e.age_s)} old)", highlight=False)
        if not removed:
            out.print(f"no interrupted run older than {older_than}", highlight=False)
        return 0

    _guard(go)


def main() -> None:  # pragma: no cover - console script entry
    app(prog_name="synth")


if __name__ == "__main__":  # pragma: no cover
    main()
