"""The image output contract: PNG bytes in an Arrow struct column with Hugging Face
`datasets` metadata, and an exact round trip through a Parquet file."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.data import ImageData
from pipeline.core.errors import BadInputError
from pipeline.core.images import IMAGE_TYPE, decode_png, encode_png, images_to_table, table_to_images
from pipeline.sources.image import load_images
from pipeline.core.spec import SourceSpec
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_images(SourceSpec(modality="image", path=ROOT / "data" / "sources" / "digits.parquet"))


def test_png_round_trip_grey_and_rgb(digits):
    grey = digits.images[5]
    assert np.array_equal(decode_png(encode_png(grey)), grey)
    rgb = np.random.default_rng(0).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    out = decode_png(encode_png(rgb))
    assert out.shape == (6, 10, 3) and np.array_equal(out, rgb)
    assert encode_png(grey)[:8] == b"\x89PNG\r\n\x1a\n"


def test_parquet_round_trip_is_identical(tmp_path, digits):
    batch = ImageData(images=digits.images[:50], labels=digits.labels[:50], label_name="label")
    table = images_to_table(batch)
    assert table.schema.field("image").type == IMAGE_TYPE
    assert table.column("image").combine_chunks().field("path").null_count == 50
    pq.write_table(table, tmp_path / "part.parquet")
    back = table_to_images(pq.read_table(tmp_path / "part.parquet"))
    assert np.array_equal(back.images, batch.images) and back.images.dtype == np.uint8
    assert back.labels.tolist() == batch.labels.tolist() and back.label_name == "label"


def test_huggingface_metadata_describes_the_image_feature(tmp_path, digits):
    table = images_to_table(ImageData(images=digits.images[:3], labels=np.array(["a", "b", "a"]), label_name="kind"))
    pq.write_table(table, tmp_path / "p.parquet")
    meta = pq.read_schema(tmp_path / "p.parquet").metadata
    features = json.loads(meta[b"huggingface"])["info"]["features"]
    assert features == {"image": {"_type": "Image"}, "kind": {"dtype": "string", "_type": "Value"}}
    unlabelled = images_to_table(ImageData(images=digits.images[:2]))
    assert unlabelled.column_names == ["image"]
    assert table_to_images(unlabelled).labels is None


def test_undecodable_bytes_name_the_row(digits):
    png = pa.array([encode_png(digits.images[0]), b"garbage"], type=pa.binary())
    image = pa.StructArray.from_arrays([png, pa.nulls(2, pa.string())], fields=list(IMAGE_TYPE))
    with pytest.raises(BadInputError, match="row 1 .* not a decodable image"):
        table_to_images(pa.table({"image": image}))
