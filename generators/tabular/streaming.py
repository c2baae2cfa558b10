"""Training batches from a table streamed in record batches (pipeline/sources/stream.py):
each shuffled frame is encoded as it arrives, so memory holds one frame, not the table."""

from __future__ import annotations

from itertools import count
from typing import Iterator

import torch

from generators.tabular.encoding import TableEncoder
from pipeline.core.data import RowStream


def streamed_batches(
    stream: RowStream, encoder: TableEncoder, size: int, *, seed: int, device: torch.device
) -> Iterator[torch.Tensor]:
    """Endless batches of `size` encoded rows: pass after pass over the stream's rows,
    each pass in its own shuffled order (`seed` + pass number), so the same seed reads
    the same batches. A frame's last rows short of a whole batch are skipped, unless the
    frame is smaller than one batch (a tiny source)."""
    for n in count():
        for frame in stream.frames(seed + n):
            matrix = torch.from_numpy(encoder.transform(frame)).to(device)
            for batch in matrix.split(size):
                if len(batch) == size or len(matrix) < size:
                    yield batch
