"""Orchestration-free core of synthpipe: job spec, sources, profiles, Parquet sinks,
manifests, publishing, consumption API and CLI. Never imports `flows/` or Prefect."""
