"""Source fingerprints: sha256 of the content (a file, a Parquet dataset's data files, a
query's result), so a changed source means a refit and the same data never does."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

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


def batches_fingerprint(batches: Iterable[pa.RecordBatch]) -> str:
    """sha256 over a query result: each record batch's schema and its Arrow IPC bytes,
    in result order. Exact (any changed value, row, column, type or row order changes
    it) at the cost of one read of the result; the batches come in fixed sizes
    (`pipeline.sources.sql.BATCH_ROWS`), so the same rows give the same bytes however
    the database stored or cut them. Not the query plus table statistics: those differ
    per engine (SQLite has none unless ANALYZE ran), lag behind writes and miss views,
    joins and `now()`, and a missed change would reuse a model fitted on other data."""
    digest = hashlib.sha256()
    for batch in batches:
        digest.update(batch.schema.remove_metadata().serialize())
        digest.update(batch.serialize())
    return "sha256:" + digest.hexdigest()


def dataset_fingerprint(folder: Path, files: Iterable[Path]) -> str:
    """sha256 over a Parquet dataset's data files: each one's path inside `folder` (the
    partition values live there), size and content hash, sorted by path, so the order the
    file system lists them in does not matter and files the dataset skips (`_SUCCESS`)
    do not count."""
    records = []
    for f in files:
        content = hashlib.sha256()
        with f.open("rb") as fh:
            while block := fh.read(_CHUNK):
                content.update(block)
        records.append(f"{f.relative_to(folder).as_posix()}\0{f.stat().st_size}\0{content.hexdigest()}\n")
    return "sha256:" + hashlib.sha256("".join(sorted(records)).encode()).hexdigest()
