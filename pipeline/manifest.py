"""manifest.json: everything needed to trust, reproduce and trace a run."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
LIBRARIES = ("synthpipe", "torch", "sdv", "pandas", "pyarrow", "prefect", "great-expectations", "scikit-learn", "numpy")


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for lib in LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = None
    return out


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write atomically (temp file + replace): `synth validate` rewrites it in place."""
    manifest = {"written_at": datetime.now(timezone.utc).isoformat(), **manifest}
    path = run_dir / MANIFEST
    tmp = run_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    os.replace(tmp, path)
    return path


def read_manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / MANIFEST).read_text())


def source_layout(source: Any) -> dict[str, Any]:
    """What a reader needs besides the schema: sequence keys for time series, size,
    mode and classes for images."""
    from pipeline.data import ImageData, TimeSeriesData

    if isinstance(source, TimeSeriesData):
        return {"entity": source.entity, "time": source.time, "static": list(source.static),
                "features": list(source.features)}
    if isinstance(source, ImageData):
        classes = None if source.labels is None else sorted({v.item() if hasattr(v, "item") else v for v in source.labels})
        return {"height": source.size[0], "width": source.size[1], "mode": source.mode,
                "label": source.label_name, "classes": classes}
    return {}
