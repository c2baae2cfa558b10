"""The sampler's channel order: one-hot spans grouped by width, class-major.

A row's spans differ in width (flights: 2 to 105 classes), so a softmax per span is a loop
of narrow, strided slices, and a scatter over the whole row (`span_log_softmax`, what
training uses) costs most of a sampling step on wide spans (Stat2Data/Hawks: 907 and 308
classes). The sampler instead runs in a permuted channel order: the continuous channels,
then for each span width w the k spans of that width as one contiguous block: one softmax
per width, no gather or scatter per step. Spans narrower than `CLASS_MAJOR_BELOW` are laid
out class-major (class c of span j at c * k + j), their softmax over w reading k-wide
vectors; wider ones span-major, a last-dimension softmax (torch vectorises that one only
from about 16 classes: on flights' 2048-row blocks a 12-class span took 490 us span-major
and 150 us class-major, a 105-class one 320 us and 1,270 us). The denoiser is
permuted to match (its input columns and output rows), which computes the same function
(its output layer run per group, for contiguous logits, was slower: 0.70 ms against 0.18 on
flights' 213 channels in bfloat16, 2048 rows). Noise is drawn in the encoder's order and the
result is put back in it.
"""

from __future__ import annotations

import torch

CLASS_MAJOR_BELOW = 16


class SpanOrder:
    """The permutation (`order[i]`: the encoder channel at sampling position i) and the
    width groups as (start, width, count) in sampling positions."""

    def __init__(self, n_continuous: int, spans: list[tuple[int, int]]) -> None:
        order = list(range(n_continuous))
        self.groups: list[tuple[int, int, int]] = []
        for width in sorted({b - a for a, b in spans}):
            starts = [a for a, b in spans if b - a == width]
            self.groups.append((len(order), width, len(starts)))
            if width < CLASS_MAJOR_BELOW:
                order += [a + c for c in range(width) for a in starts]
            else:
                order += [a + c for a in starts for c in range(width)]
        self.order = torch.tensor(order, dtype=torch.long)
        self.inverse = torch.empty_like(self.order)
        self.inverse[self.order] = torch.arange(len(order))

    def softmax(self, logits: torch.Tensor, *, log: bool) -> list[torch.Tensor]:
        """Per group, the (rows, w * k) class-major float32 (log-)probabilities of `logits`
        (rows in sampling order; float32 or the bfloat16 denoiser's): softmax within each span."""
        rows, parts = len(logits), []
        for start, width, count in self.groups:
            block = logits[:, start : start + width * count]
            if width == 1:  # one-class spans (a constant column's): p = 1 exactly, log p = 0
                parts.append(torch.full((rows, count), 0.0 if log else 1.0, device=logits.device))
                continue
            block, dim = (block.view(rows, width, count), 1) if width < CLASS_MAJOR_BELOW else (
                block.view(rows, count, width), 2)
            probs = block.log_softmax(dim, dtype=torch.float32) if log else block.softmax(dim, dtype=torch.float32)
            parts.append(probs.view(rows, -1))
        return parts
