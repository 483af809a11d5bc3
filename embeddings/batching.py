"""Batches of similar-length texts: every inference batch is padded to its longest text, so grouping by length
is the cheapest speed-up an encoder gets. The adapter, the ONNX models and the ingest all batch this way."""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def length_batches(lengths: Sequence[int], batch_size: int, *, longest_first: bool = False) -> Iterator[list[int]]:
    """Indices into `lengths`, in batches of at most `batch_size`, each batch holding texts of similar length.

    Ties keep input order (the sort is stable), so the same input always gives the same batches. Callers put
    each result back at its index, so their output stays in input order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    sign = -1 if longest_first else 1
    order = sorted(range(len(lengths)), key=lambda i: sign * lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
