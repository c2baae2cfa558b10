"""PNG encoding and the Arrow image column.

The output contract follows the Hugging Face `datasets` Image convention, so
`datasets.load_dataset("parquet", ...)` reads our files as an Image feature with no
configuration: the column `image` is a struct `{bytes: binary, path: string}` (PNG bytes,
null path) and the schema carries a `huggingface` metadata key holding
`{"info": {"features": {...}}}`, the JSON that `datasets`' ArrowWriter writes (its
`asdict` of the features, which drops default fields: `{"_type": "Image"}`). Labels are
written as a plain `Value` feature with the source's own values (not a `ClassLabel`,
which would replace them by indices)."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
from PIL import Image

from pipeline.core.data import ImageData
from pipeline.core.errors import BadInputError

IMAGE_COLUMN = "image"
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
HF_METADATA_KEY = b"huggingface"

# Pillow modes read as one grey channel; every other mode (palette, alpha, CMYK, ...)
# becomes RGB. Alpha is dropped: generators model the visible pixels only.
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})

# Arrow types whose `datasets` Value dtype name differs from str(type).
_HF_DTYPES = {pa.float64(): "float64", pa.float32(): "float32", pa.float16(): "float16"}


def to_array(image: Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    """A decoded Pillow image as uint8 `(H, W, C)`, C = 1 (grey) or 3 (RGB), optionally
    resized to `size` = (height, width)."""
    if image.mode.startswith("I;16"):  # 16-bit grey: keep the high byte, not a clipped value
        image = Image.fromarray((np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8))
    image = image.convert("L" if image.mode in GRAY_MODES else "RGB")
    if size is not None and (image.height, image.width) != tuple(size):
        image = image.resize((size[1], size[0]), Image.Resampling.BICUBIC)
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def encode_png(image: np.ndarray) -> bytes:
    """One uint8 `(H, W, C)` image as PNG bytes (mode "L" or "RGB")."""
    pil = Image.fromarray(image[:, :, 0] if image.shape[-1] == 1 else image)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """Inverse of `encode_png` (any format Pillow reads); raises Pillow's own errors."""
    with Image.open(io.BytesIO(data)) as pil:
        pil.load()
        return to_array(pil)


def hf_features(table_schema: pa.Schema) -> dict:
    """The `huggingface` metadata value for an image table: Image for `image`, Value for
    every other column."""
    features = {}
    for field in table_schema:
        if field.name == IMAGE_COLUMN:
            features[field.name] = {"_type": "Image"}
        else:
            features[field.name] = {"dtype": _HF_DTYPES.get(field.type, str(field.type)), "_type": "Value"}
    return {"info": {"features": features}}


def images_to_table(batch: ImageData) -> pa.Table:
    """An `ImageData` batch as the output contract's Arrow table (PNG bytes, null paths,
    the label column when present, `huggingface` schema metadata)."""
    png = pa.array([encode_png(image) for image in batch.images], type=pa.binary())
    image = pa.StructArray.from_arrays([png, pa.nulls(len(png), pa.string())], fields=list(IMAGE_TYPE))
    columns: dict[str, pa.Array] = {IMAGE_COLUMN: image}
    if batch.labels is not None:
        columns[batch.label_name or "label"] = pa.array(np.asarray(batch.labels).tolist())
    table = pa.table(columns)
    return table.replace_schema_metadata({HF_METADATA_KEY: json.dumps(hf_features(table.schema))})


def table_to_images(table: pa.Table, *, label: str | None = None) -> ImageData:
    """Inverse of `images_to_table`: decode every PNG. The label column is `label` when
    given, else the table's one non-image column if it has one."""
    if IMAGE_COLUMN not in table.column_names:
        raise BadInputError(f"table has no {IMAGE_COLUMN!r} column; columns: {', '.join(table.column_names)}")
    others = [c for c in table.column_names if c != IMAGE_COLUMN]
    if label is None and len(others) == 1:
        label = others[0]
    images = []
    for row, data in enumerate(table.column(IMAGE_COLUMN).combine_chunks().field("bytes").to_pylist()):
        try:
            images.append(decode_png(data))
        except Exception as err:  # Pillow raises many types for bad bytes
            raise BadInputError(f"row {row} of the {IMAGE_COLUMN!r} column is not a decodable image: {err}") from None
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise BadInputError(f"images in the table have different shapes: {sorted(shapes)[:2]}")
    stacked = np.stack(images) if images else np.zeros((0, 0, 0, 1), dtype=np.uint8)
    labels = np.asarray(table.column(label).to_pylist()) if label is not None else None
    return ImageData(images=stacked, labels=labels, label_name=label)
