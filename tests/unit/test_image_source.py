"""Image sources on real digits: class-subfolder folders, Parquet, modes, resizing, and
every bad input with its one-line error."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.core.data import ImageData
from pipeline.core.errors import SourceError
from pipeline.core.images import images_to_table
from pipeline.sources import load_source
from pipeline.sources.image import load_images
from pipeline.core.spec import SourceSpec
from tests.conftest import ROOT

DIGITS = ROOT / "data" / "sources" / "digits.parquet"


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_images(SourceSpec(modality="image", path=DIGITS))


def _spec(path: Path, **kw) -> SourceSpec:
    return SourceSpec(modality="image", path=path, **kw)


def _write_folder(root: Path, data: ImageData, n: int, *, classes: bool = True) -> None:
    for i in range(n):
        folder = root / str(data.labels[i]) if classes else root
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[i, :, :, 0]).save(folder / f"{i:04d}.png")


def test_bundled_digits_are_real_labelled_grey_images(digits):
    assert digits.images.shape == (1797, 8, 8, 1) and digits.images.dtype == np.uint8
    assert digits.mode == "L" and digits.label_name == "label"
    assert sorted(np.unique(digits.labels).tolist()) == list(range(10))
    assert digits.images.max() == 255 and len(np.unique(digits.images)) == 17  # 0..16 scaled


def test_folder_with_class_subfolders_gives_labels_and_pixels(tmp_path, digits):
    _write_folder(tmp_path, digits, 30)
    data = load_source(_spec(tmp_path))
    order = sorted(range(30), key=lambda i: (str(digits.labels[i]), i))  # files are read in path order
    assert data.label_name == "label" and data.labels.tolist() == [str(digits.labels[i]) for i in order]
    np.testing.assert_array_equal(data.images, digits.images[order])


def test_flat_folder_has_no_labels_and_resizes(tmp_path, digits):
    _write_folder(tmp_path, digits, 5, classes=False)
    data = load_images(_spec(tmp_path, size=(16, 12)))
    assert data.labels is None and data.images.shape == (5, 16, 12, 1)


def test_any_colour_image_makes_the_source_rgb(tmp_path, digits):
    _write_folder(tmp_path, digits, 3, classes=False)
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "red.png")
    data = load_images(_spec(tmp_path))
    assert data.mode == "RGB" and data.images.shape == (4, 8, 8, 3)
    grey = data.images[0]
    assert (grey[..., 0] == grey[..., 1]).all()  # grey images are replicated, not tinted
    assert data.images[3, 0, 0].tolist() == [200, 0, 0]  # alpha dropped


def test_parquet_source_with_paths_and_named_label(tmp_path, digits):
    Image.fromarray(digits.images[0, :, :, 0]).save(tmp_path / "a.png")
    image = pa.array([{"bytes": None, "path": "a.png"}], type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    pq.write_table(pa.table({"picture": image, "digit": [7]}), tmp_path / "src.parquet")
    data = load_images(_spec(tmp_path / "src.parquet", label="digit"))
    assert data.labels.tolist() == [7] and data.label_name == "digit"
    np.testing.assert_array_equal(data.images[0], digits.images[0])


def test_truncated_png_fails_naming_the_file_or_is_skipped(tmp_path, digits, caplog):
    _write_folder(tmp_path, digits, 4, classes=False)
    bad = tmp_path / "0001.png"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(SourceError, match=r"cannot read image .*0001\.png.*on_bad_image: skip"):
        load_images(_spec(tmp_path))
    with caplog.at_level(logging.WARNING):
        data = load_images(_spec(tmp_path, on_bad_image="skip"))
    assert len(data) == 3 and data.skipped == [str(bad)]
    assert "0001.png" in caplog.text


def test_mixed_sizes_need_a_target_size(tmp_path, digits):
    _write_folder(tmp_path, digits, 2, classes=False)
    Image.fromarray(np.zeros((10, 6), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(SourceError, match=r"different sizes .*8x8.*10x6.*set source\.size"):
        load_images(_spec(tmp_path))
    assert load_images(_spec(tmp_path, size=(8, 8))).images.shape == (3, 8, 8, 1)


def test_empty_folder_and_mixed_layout_are_refused(tmp_path, digits):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(SourceError, match="no PNG or JPEG images"):
        load_images(_spec(tmp_path / "empty"))
    mixed = tmp_path / "mixed"
    _write_folder(mixed, digits, 2)
    Image.fromarray(digits.images[0, :, :, 0]).save(mixed / "top.png")
    with pytest.raises(SourceError, match="both at its top level and in subfolders"):
        load_images(_spec(mixed))


def test_parquet_errors_name_the_problem(tmp_path, digits):
    table = images_to_table(ImageData(images=digits.images[:3], labels=digits.labels[:3], label_name="label"))
    pq.write_table(table, tmp_path / "ok.parquet")
    with pytest.raises(SourceError, match="'digit' is not a column"):
        load_images(_spec(tmp_path / "ok.parquet", label="digit"))
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "noimage.parquet")
    with pytest.raises(SourceError, match="no image columns"):
        load_images(_spec(tmp_path / "noimage.parquet"))
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(SourceError, match="cannot read Parquet"):
        load_images(_spec(tmp_path / "junk.parquet"))
