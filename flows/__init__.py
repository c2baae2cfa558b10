"""Prefect orchestration: flows and tasks that call pipeline/, generators/ and
validators/ and nothing else; deployments; the `synth` CLI.

Importing this package sets the environment defaults Prefect and GX read at import
time, so every entry point (CLI, tests, deployments) behaves the same offline."""

import os

for _key, _value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no telemetry calls: there is no network
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    # The embedded server needs ~20 s on 2 cores and over 50 s at a load of 8 (measured
    # 2026-12); Prefect's default wait of 20 s kills runs on a busy machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
}.items():
    os.environ.setdefault(_key, _value)
