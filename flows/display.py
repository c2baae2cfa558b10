"""Terminal output for the CLI: progress behind pipeline.core.progress (rich bars on a
terminal, plain lines at a sane rate in a log file or a CI job), one line per error,
and a logging filter that keeps Prefect from repeating a failure the CLI reports.

Errors and progress go to stderr (`console`); the run summary goes to stdout (`out`),
so `synth run JOB --json > summary.json` captures the summary alone."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pipeline.core.progress import Tracker, use_display

console = Console(stderr=True, soft_wrap=True)  # paths and failure lines stay whole, copy-pasteable
out = Console(soft_wrap=True)

LINE_INTERVAL_S = 2.0  # plain progress: at most one line per bar this often, plus the last


class RichTracker(Tracker):
    def __init__(self, bars: Progress, description: str, total: int | None) -> None:
        super().__init__(description, total)
        self.bars = bars
        self.task_id = bars.add_task(description, total=total, metrics="")

    def show(self, metrics: dict[str, float]) -> None:
        text = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        self.bars.update(self.task_id, completed=self.done, total=self.total, metrics=text)

    def close(self) -> None:
        if self.total:
            self.bars.update(self.task_id, completed=self.total)


class LineTracker(Tracker):
    """Progress as plain lines when stderr is not a terminal (rich draws nothing there
    until the end): `fit tabular/diffusion: 1,200/3,000 loss=0.31 (12 s)`, at most
    one every LINE_INTERVAL_S, and always the first and the last step."""

    def __init__(self, description: str, total: int | None) -> None:
        super().__init__(description, total)
        self.start = self.last = time.monotonic()
        self.printed_done = -1

    def show(self, metrics: dict[str, float]) -> None:
        now = time.monotonic()
        first, last = self.printed_done < 0, bool(self.total) and self.done >= self.total
        if not (first or last or now - self.last >= LINE_INTERVAL_S) or self.done == self.printed_done:
            return
        self.last, self.printed_done = now, self.done
        extra = "".join(f" {k}={v:.4g}" for k, v in metrics.items())
        of = f"/{self.total:,}" if self.total else ""
        console.print(f"{escape(self.description)}: {self.done:,}{of}{escape(extra)} ({now - self.start:.0f} s)",
                      highlight=False)


@contextmanager
def progress_bars() -> Iterator[None]:
    if not console.is_terminal:
        with use_display(LineTracker):
            yield
        return
    bars = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"), console=console, transient=False,
    )
    with bars, use_display(lambda description, total: RichTracker(bars, description, total)):
        yield


def error_line(message: str) -> None:
    """One error on stderr; the text is escaped, so `[height, width]` prints as written."""
    first, *rest = str(message).strip().splitlines() or [""]
    console.print(f"[bold red]error:[/] {escape(first)}", highlight=False)
    for line in rest:  # a message that is a table (e.g. failing checks) keeps its lines
        console.print(f"  {escape(line)}", highlight=False)


class HideRunFailures(logging.Filter):
    """On the console, Prefect logs a failed task or flow run (with its traceback, then
    "Finished in state Failed(...)") before the CLI prints the same error as one line.
    Drop those records from console handlers; the API handler keeps them for the UI."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("prefect"):
            return True
        if record.exc_info or record.levelno >= logging.ERROR:
            return False
        message = record.getMessage()
        if "Traceback (most recent call last)" in message:  # Prefect inlines some tracebacks in the text
            return False
        return not message.startswith(("Finished in state Failed", "Finished in state Crashed",
                                       "Finished in state Quarantined"))


def quiet_run_failures(debug: bool = False) -> None:
    """Install `HideRunFailures` on Prefect's console handlers (not with --debug), and
    point console handlers whose stream was closed (an embedding caller swapped stderr)
    at the current one."""
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()  # Prefect builds its handlers on first use: build them now, so we reach them

    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for handler in {h for lg in loggers for h in lg.handlers}:
        if not isinstance(handler, logging.StreamHandler):
            continue  # the API log handler: the UI keeps every record
        if not debug and not any(isinstance(f, HideRunFailures) for f in handler.filters):
            handler.addFilter(HideRunFailures())
        console_file = getattr(getattr(handler, "console", None), "file", None)
        if getattr(handler.stream, "closed", False) or getattr(console_file, "closed", False):
            handler.stream = sys.stderr  # not setStream: it would flush the closed stream
            if console_file is not None:
                handler.console.file = sys.stderr
