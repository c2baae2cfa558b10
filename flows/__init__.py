"""Prefect orchestration: flows and tasks that call pipeline/, generators/ and
validators/ and nothing else."""
