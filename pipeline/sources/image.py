"""Image sources: a folder of PNG/JPEG files (class subfolders become labels) or a
Parquet file with an image struct column `{bytes, path}` (what Hugging Face `datasets`
and our own sink write), read into one `ImageData` of a single size and mode."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipeline.core.data import ImageData
from pipeline.core.errors import SourceError
from pipeline.core.images import IMAGE_COLUMN, to_array
from pipeline.sources.fingerprint import existing_source
from pipeline.core.spec import SourceSpec

log = logging.getLogger(__name__)

EXTENSIONS = (".png", ".jpg", ".jpeg")
PARQUET = (".parquet", ".pq")
DEFAULT_LABEL = "label"  # label column name for class subfolders when source.label is not set


def load_images(spec: SourceSpec) -> ImageData:
    """Read `spec.path` into uint8 `(N, H, W, C)` images, resized to `spec.size` when set.

    Grey sources stay one channel; a source with any colour image becomes RGB. Unreadable
    files stop the load (`on_bad_image: fail`) or are skipped, logged and listed in
    `ImageData.skipped` (`skip`)."""
    path = existing_source(spec.path)
    if path.is_dir():
        names, openers, labels, label_name = _folder(path, spec.label)
    elif path.suffix.lower() in PARQUET:
        names, openers, labels, label_name = _parquet(path, spec.label)
    else:
        raise SourceError(
            f"image source {path} must be a folder of PNG/JPEG files or a Parquet file with an image column"
        )
    images, keep, skipped = _decode_all(names, openers, spec)
    if not images:
        raise SourceError(f"every image in {path} is unreadable ({len(skipped)} skipped); check the source files")
    if skipped:
        log.warning("skipped %d unreadable image(s) in %s: %s", len(skipped), path, ", ".join(skipped[:10]))
    sizes = {image.shape[:2] for image in images}
    if len(sizes) > 1:
        first = next(i for i, image in enumerate(images) if image.shape[:2] != images[0].shape[:2])
        raise SourceError(
            f"images have different sizes ({names[keep[0]]} is {_hw(images[0])}, {names[keep[first]]} is "
            f"{_hw(images[first])}); set source.size: [height, width] to resize them all"
        )
    if any(image.shape[-1] == 3 for image in images):
        images = [np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image for image in images]
    return ImageData(
        images=np.stack(images),
        labels=None if labels is None else labels[keep],
        label_name=label_name,
        skipped=skipped,
    )


def _hw(image: np.ndarray) -> str:
    return f"{image.shape[0]}x{image.shape[1]}"


def _decode_all(
    names: list[str], openers: list[Callable[[], Image.Image]], spec: SourceSpec
) -> tuple[list[np.ndarray], list[int], list[str]]:
    """Decode every image; returns (arrays, indices kept, names skipped)."""
    images, keep, skipped = [], [], []
    for index, (name, opener) in enumerate(zip(names, openers)):
        try:
            with opener() as pil:
                pil.load()  # Pillow opens lazily: a truncated file only fails here
                images.append(to_array(pil, spec.size))
            keep.append(index)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            if spec.on_bad_image == "fail":
                raise SourceError(
                    f"cannot read image {name}: {err} (fix or remove it, or set source.on_bad_image: skip)"
                ) from None
            skipped.append(name)
    return images, keep, skipped


def _folder(root: Path, label: str | None) -> tuple[list[str], list, np.ndarray | None, str | None]:
    """Image files under `root`: directly inside it (no labels) or one level of class
    subfolders (the subfolder name is the label), never both."""
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(root).parts)  # hidden files and folders
    )
    if not files:
        raise SourceError(f"no PNG or JPEG images in {root}; put images in the folder or in class subfolders")
    depths = {len(p.relative_to(root).parts) for p in files}
    if depths != {1} and 1 in depths:
        raise SourceError(
            f"{root} has images both at its top level and in subfolders; put every image in a class subfolder or none"
        )
    names = [str(p) for p in files]
    openers = [lambda p=p: Image.open(p) for p in files]
    if depths == {1}:
        if label is not None:
            raise SourceError(f"source.label is {label!r} but {root} has no class subfolders; remove source.label")
        return names, openers, None, None
    labels = np.asarray([p.relative_to(root).parts[0] for p in files])
    return names, openers, labels, label or DEFAULT_LABEL


def _parquet(path: Path, label: str | None) -> tuple[list[str], list, np.ndarray | None, str | None]:
    """Rows of a Parquet file's image column; paths without bytes resolve from the file's folder."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise SourceError(f"cannot read Parquet file {path}: it is corrupt or not Parquet ({err})") from None
    column = _image_column(table, path)
    if table.num_rows == 0:
        raise SourceError(f"{path} has no rows; an image source needs at least one image")
    if label is None and DEFAULT_LABEL in table.column_names:
        label = DEFAULT_LABEL
    if label is not None and label not in table.column_names:
        raise SourceError(f"source.label {label!r} is not a column of {path}; columns: {', '.join(table.column_names)}")
    struct = table.column(column).combine_chunks()
    data = struct.field("bytes").to_pylist()
    paths = struct.field("path").to_pylist() if struct.type.get_field_index("path") >= 0 else [None] * len(data)
    names, openers = [], []
    for row, (raw, rel) in enumerate(zip(data, paths)):
        names.append(f"{path} row {row}" + (f" ({rel})" if rel else ""))
        if raw is not None:
            openers.append(lambda raw=raw: Image.open(io.BytesIO(raw)))
        elif rel is not None:
            openers.append(lambda rel=rel: Image.open(path.parent / rel))
        else:
            openers.append(lambda: _raise(OSError("the row has neither image bytes nor a path")))
    labels = None
    if label is not None:
        values = table.column(label)
        if values.null_count:
            raise SourceError(
                f"label column {label!r} of {path} has {values.null_count} missing values; fill or drop them"
            )
        labels = np.asarray(values.to_pylist())
    return names, openers, labels, label


def _image_column(table: pa.Table, path: Path) -> str:
    """`image` when present, else the one struct column with a `bytes` field."""
    candidates = [
        f.name for f in table.schema
        if pa.types.is_struct(f.type) and f.type.get_field_index("bytes") >= 0
    ]
    if IMAGE_COLUMN in candidates:
        return IMAGE_COLUMN
    if len(candidates) == 1:
        return candidates[0]
    raise SourceError(
        f"{path} has {'no' if not candidates else 'several'} image columns (struct {{bytes, path}}); "
        f"name the image column {IMAGE_COLUMN!r}"
    )


def _raise(err: Exception):
    raise err
