"""Sources: read a job's source into the modality's `SourceData`, and fingerprint it."""

from __future__ import annotations

from pipeline.core.data import SourceData
from pipeline.sources.fingerprint import fingerprint
from pipeline.sources.tabular import load_tabular, read_table
from pipeline.core.spec import SourceSpec


def load_source(spec: SourceSpec) -> SourceData:
    """Dispatch on modality. Each loader raises `SourceError` with a one-line reason."""
    if spec.modality == "tabular":
        return load_tabular(spec)
    if spec.modality == "timeseries":
        from pipeline.sources.timeseries import load_timeseries

        return load_timeseries(spec)
    from pipeline.sources.image import load_images

    return load_images(spec)


__all__ = ["fingerprint", "load_source", "read_table"]
