"""Prefect orchestration: flows and tasks that call pipeline/, generators/ and
validators/ and nothing else; deployments; the `synth` CLI.

Importing this package sets the environment defaults Prefect and GX read at import
time, so every entry point (CLI, tests, deployments) behaves the same offline."""

import os

for _key, _value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no telemetry calls: there is no network
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    # The embedded server needs ~10-15 s on 2 busy cores; Prefect's default wait is 20 s.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}.items():
    os.environ.setdefault(_key, _value)
