"""The core every other part of synthpipe builds on: source data classes, schema,
errors, progress, the job spec, the sampling plan, the manifest model, the image codec,
the run folder's file names and its one reader, the CPU-thread policy and seeding.

Imports run one way: `pipeline.core` <- `generators/`, `validators/` <- the pipeline
steps (`pipeline/*.py`, `pipeline/sources/`) <- `flows/`. The read API
(`pipeline.consume`, `pipeline.torch_dataset`) needs the core only.
`tests/unit/test_layers.py` holds the rule."""
