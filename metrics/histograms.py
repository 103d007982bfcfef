"""Exact percentiles from bucketed durations: the pure half of the rollup's duration histograms.

A duration is a whole number of microseconds. Each falls in one bucket of ``BOUNDS`` (about 12%
wide: a 3-bit mantissa on a power of two), and the rollup keeps, per UTC day, figure and
severity, every bucket's count and sum (``DurationBucket``) and every value with its bucket
(``DurationValue``). A period's median and p90 are then found exactly: the summed counts say which
bucket holds each rank and its rank within the bucket, and only that bucket's values are read, in
order, from the rank on (``window``). The interpolation is PostgreSQL's ``percentile_cont``.
No ORM here.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence

PERCENTILES = (0.5, 0.9)


def _bounds() -> tuple[int, ...]:
    bounds = list(range(1, 16))
    for exponent in range(4, 53):  # up to 2**53 microseconds: 285 years
        bounds.extend((8 + j) << (exponent - 3) for j in range(8))
    return tuple(bounds)


#: Lower bounds of buckets 1..N; bucket 0 holds what is below 1 µs (zero and negative durations).
BOUNDS = _bounds()


def bucket_of(value: int) -> int:
    """The bucket of ``value`` (microseconds): buckets are ordered as their values are."""
    return bisect_right(BOUNDS, value)


def positions(count: int, share: float) -> tuple[float, int, int]:
    """``percentile_cont``'s position of ``share`` among ``count`` sorted values and the two ranks
    (0-based) it interpolates between."""
    pos = share * (count - 1)
    return pos, math.floor(pos), math.ceil(pos)


def interpolate(pos: float, low: float, high: float) -> float:
    """``percentile_cont``'s value between the values at ranks floor(pos) and ceil(pos)."""
    return low + (high - low) * (pos - math.floor(pos))


def locate(counts: Sequence[tuple[int, int]], rank: int) -> tuple[int, int]:
    """The bucket holding ``rank`` (0-based) of the values counted by ``counts`` (``(bucket, n)``
    sorted by bucket), and the rank within that bucket."""
    seen = 0
    for bucket, n in counts:
        if rank < seen + n:
            return bucket, rank - seen
        seen += n
    raise ValueError(f"Rank {rank} is beyond the {seen} values counted.")


def window(first: int, last: int, extra: Iterable[int]) -> tuple[int, int]:
    """Which stored values to read so that ranks ``first`` to ``last`` of a bucket's values
    (stored plus ``extra``, the few read from the source) can be told: ``(offset, limit)`` into
    the stored values in order. Each extra value can move a stored one at most one rank later."""
    e = len(list(extra)) if not isinstance(extra, Sequence) else len(extra)
    offset = max(0, first - e)
    return offset, last - offset + e + 1


def ranked(offset: int, stored: Sequence[int], extra: Sequence[int], *, complete: bool) -> dict[int, int]:
    """Values by their rank within the bucket, from the stored values read at ``offset`` (in
    order; ``complete`` when the read reached the bucket's last stored value) and the extra ones.

    Every stored value before ``offset`` is at most ``stored[0]``; so is every extra value below
    it, so the merged list starts at rank ``offset + #extra below stored[0]``. It is valid up to
    ``stored[-1]`` (or to its end when the read was complete).
    """
    extra = sorted(extra)
    if not stored:
        # Nothing stored from the offset on: the offset was 0 (``window``), so only extras remain.
        return dict(enumerate(extra))
    head = stored[0]
    below = [x for x in extra if x < head]
    merged = sorted([*stored, *(x for x in extra if x >= head)])
    if not complete:
        merged = [x for x in merged if x <= stored[-1]]
    start = offset + len(below)
    result = {start + i: x for i, x in enumerate(merged)}
    if offset == 0:
        result.update(enumerate(below))
    return result
