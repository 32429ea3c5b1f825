"""Which parts of a slice-gradient buffer have been written: so it needn't start as zeros.

All slices of one tensor add their gradients into one buffer
(``Tensor._accumulate_at``). Most slicing picks a range of one axis and all of
the others (``projected[t]``, the gate blocks ``z[:, k*u:(k+1)*u]``, ``x[:, t]``),
and the slices rarely overlap. Such a buffer starts uninitialised
(``np.empty``); each slice that touches nothing written yet is copied in,
where ``+=`` into zeros would write the memory twice and read it once. A
``Coverage`` remembers the written ranges of that one axis; before anyone
reads the buffer, whatever no slice wrote is set to zero (often nothing).
"""

from __future__ import annotations

import bisect
import numbers

import numpy as np


def interval_of(index: object, shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(axis, start, stop) if ``index`` picks the range start:stop of one axis and all of
    every other axis; else None (steps, None, ..., or ranges on several axes)."""
    parts = index if isinstance(index, tuple) else (index,)
    if not shape or len(parts) > len(shape):
        return None
    found = None
    for axis, part in enumerate(parts):
        size = shape[axis]
        if isinstance(part, slice):
            start, stop, step = part.indices(size)
            if step != 1:
                return None
            if start == 0 and stop == size:
                continue
        elif isinstance(part, numbers.Integral) and not isinstance(part, bool):
            start = int(part) % size
            stop = start + 1
        else:
            return None
        if found is not None or start >= stop:
            return None
        found = (axis, start, stop)
    return found or (0, 0, shape[0])


class Coverage:
    """The ranges written so far on one axis of ``buffer``, merged where they touch."""

    __slots__ = ("buffer", "axis", "size", "starts", "stops", "written", "complete")

    def __init__(self, buffer: np.ndarray, axis: int):
        self.buffer, self.axis, self.size = buffer, axis, buffer.shape[axis]
        self.starts: list[int] = []
        self.stops: list[int] = []
        self.written = 0
        self.complete = False  # every index of the axis written

    def claim(self, axis: int, start: int, stop: int) -> bool:
        """Record start:stop as written and return True, if it overlaps nothing written yet."""
        if axis != self.axis:
            return False
        starts, stops = self.starts, self.stops
        i = bisect.bisect_right(starts, start)
        if (i and stops[i - 1] > start) or (i < len(starts) and starts[i] < stop):
            return False
        self.written += stop - start
        self.complete = self.written == self.size
        joins_left = bool(i) and stops[i - 1] == start
        joins_right = i < len(starts) and starts[i] == stop
        if joins_left and joins_right:
            stops[i - 1] = stops.pop(i)
            del starts[i]
        elif joins_left:
            stops[i - 1] = stop
        elif joins_right:
            starts[i] = start
        else:
            starts.insert(i, start)
            stops.insert(i, stop)
        return True

    def zero_the_rest(self) -> None:
        """Set what no range wrote to zero."""
        buffer = self.buffer
        lead = (slice(None),) * self.axis
        previous = 0
        for start, stop in zip([*self.starts, self.size], [*self.stops, self.size], strict=True):
            if start > previous:
                buffer[(*lead, slice(previous, start))] = 0
            previous = stop
