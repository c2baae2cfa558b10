"""The Prefect API a CLI run talks to: the server PREFECT_API_URL names (checked
first), or Prefect's embedded server, started once the job has passed every check, so
bad input never waits for it. (Starting it on a background thread while the job is
checked was measured slower here: on 2 saturated cores the overlap only adds
contention; README, Operations.)

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


def ensure_api() -> None:
    """The configured server answers, or the embedded one is started (one at a time per
    PREFECT_HOME), before the flow: a failure is one line and exit 3, not a traceback."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if url:
        check_api(url)
        return
    from filelock import FileLock
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_HOME

    home = Path(PREFECT_HOME.value())
    home.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(home / ".synth-server-start.lock")):
            SubprocessASGIServer().start()
    except RuntimeError as err:  # Prefect's "Timed out while attempting to connect ..."
        raise EnvironmentFailure(
            f"the embedded Prefect server did not start: {str(err).splitlines()[0]} (raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS on a busy machine, or point "
            "PREFECT_API_URL at a running server)"
        ) from None
