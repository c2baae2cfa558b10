"""The Prefect API a CLI run talks to: the server PREFECT_API_URL names (checked before
any work), or Prefect's embedded server started in the background while the CLI
imports the generators and checks the job, so its start-up (~20 s on 2 busy cores)
overlaps work instead of preceding it.

A killed CLI leaves no server behind: SIGTERM and SIGHUP become SystemExit, so
Prefect's atexit hook stops the server process it started (SIGINT already raises
KeyboardInterrupt). Concurrent first runs that share one PREFECT_HOME start their
servers one at a time (its SQLite database is created and migrated once)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from pipeline.core.errors import EnvironmentFailure

HEALTH_TIMEOUT_S = 5.0


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def stop_on_termination() -> None:
    """Turn SIGTERM / SIGHUP into a normal interpreter exit (atexit handlers run)."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _exit_on_signal)


def check_api(url: str) -> None:
    """The configured server answers its health check, or one line saying how to fix it."""
    import httpx

    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_S).raise_for_status()
    except httpx.HTTPError as err:
        raise EnvironmentFailure(
            f"Prefect server not reachable at PREFECT_API_URL={url} ({type(err).__name__}): start it "
            "(`prefect server start`) or unset PREFECT_API_URL to use the embedded server"
        ) from None


class ApiStarter:
    """Starts the embedded server on a background thread; `wait()` joins it before the flow."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> "ApiStarter":
        from prefect.settings import PREFECT_API_URL

        url = PREFECT_API_URL.value()
        if url:
            check_api(url)
            return self
        self.thread = threading.Thread(target=self._run, name="prefect-server-start", daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            from filelock import FileLock
            from prefect.server.api.server import SubprocessASGIServer
            from prefect.settings import PREFECT_HOME

            home = Path(PREFECT_HOME.value())
            home.mkdir(parents=True, exist_ok=True)
            with FileLock(str(home / ".synth-server-start.lock")):
                SubprocessASGIServer().start()
        except BaseException as err:  # reported by wait(), on the main thread
            self.error = err

    def wait(self) -> None:
        if self.thread is None:
            return
        self.thread.join()
        if self.error is not None:
            raise EnvironmentFailure(
                f"the embedded Prefect server did not start: {str(self.error).splitlines()[0]} (raise "
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS on a busy machine, or point "
                "PREFECT_API_URL at a running server)"
            ) from None
