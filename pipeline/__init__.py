"""synthpipe without an orchestrator: `pipeline.core` (what everything shares), the
pipeline steps (sources, split, fit, sink, publish, revalidate, augment) that call
`generators/` and `validators/`, and the read API (`consume`, `torch_dataset`) that
downstream training uses. Never imports `flows/` or Prefect."""
