"""Terminal output for the CLI: rich progress bars behind pipeline.core.progress, and a
logging filter that keeps tracebacks of expected errors (bad input) off the screen."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pipeline.core.errors import SynthpipeError
from pipeline.core.progress import Tracker, use_display

console = Console(stderr=True, soft_wrap=True)  # paths and failure lines stay whole, copy-pasteable


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


@contextmanager
def progress_bars() -> Iterator[None]:
    bars = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"), console=console, transient=False,
    )
    with bars, use_display(lambda description, total: RichTracker(bars, description, total)):
        yield


class HideExpectedTracebacks(logging.Filter):
    """Prefect logs a failed task with its traceback; for our own named errors (bad
    input, quarantine) the one-line message is the whole story."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], SynthpipeError):
            record.exc_info, record.exc_text = None, None
            record.msg = str(record.getMessage()).split("\nTraceback")[0]
            record.args = ()
        return True


def quiet_expected_errors() -> None:
    """Filter the tracebacks of our own errors out of Prefect's console output, and point
    console handlers whose stream was closed (an embedding caller swapped stderr) at the
    current one."""
    import prefect.logging  # noqa: F401  (sets up Prefect's handlers, so we can reach them)

    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for name in ("prefect.flow_runs", "prefect.task_runs"):  # where run failures are logged
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideExpectedTracebacks) for f in logger.filters):
            logger.addFilter(HideExpectedTracebacks())
    for handler in {h for lg in loggers for h in lg.handlers}:
        if not any(isinstance(f, HideExpectedTracebacks) for f in handler.filters):
            handler.addFilter(HideExpectedTracebacks())
        if not isinstance(handler, logging.StreamHandler):
            continue
        console_file = getattr(getattr(handler, "console", None), "file", None)
        if getattr(handler.stream, "closed", False) or getattr(console_file, "closed", False):
            handler.stream = sys.stderr  # not setStream: it would flush the closed stream
            if console_file is not None:
                handler.console.file = sys.stderr
