"""Rebuild `digits.parquet` from scikit-learn's bundled handwritten digits (no network).

The 1797 8x8 images hold 17 grey levels (0-16); they are scaled to 0-255 uint8 and
written in synthpipe's own image output format, so the source and the synthetic data
are read by the same code. Run: `python data/sources/make_digits.py`."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from sklearn.datasets import load_digits

from pipeline.core.data import ImageData
from pipeline.core.images import images_to_table

if __name__ == "__main__":
    digits = load_digits()
    images = np.round(digits.images * 255 / 16).astype(np.uint8)[:, :, :, None]
    table = images_to_table(ImageData(images=images, labels=digits.target.astype(np.int64), label_name="label"))
    pq.write_table(table, Path(__file__).with_name("digits.parquet"))
