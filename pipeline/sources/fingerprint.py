"""Source fingerprint: sha256 of the content, so a changed source means a refit."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.core.errors import SourceError

_CHUNK = 1 << 20


def existing_source(path: str | Path) -> Path:
    """`path` if it exists; the one "source not found" error every entry point gives."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"source not found: {path} (check source.path in the job spec)")
    return path


def fingerprint(path: str | Path) -> str:
    """sha256 over a file's bytes, or over every file of a folder (relative names and
    bytes, in sorted order, hidden files skipped)."""
    path = existing_source(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode() + b"\0")
        with f.open("rb") as fh:
            while block := fh.read(_CHUNK):
                digest.update(block)
    return "sha256:" + digest.hexdigest()
