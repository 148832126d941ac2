"""Sightings over time as the bars of a chart: a count per day (per month
when the days span more than ``MAX_DAYS``), for the sightings page and a
person's page. Times are POSIX seconds read as UTC, like EXIF capture times;
sightings with no time are left out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from indexer.store import FaceStore

MAX_DAYS = 400


def faces_timeline(store: FaceStore, times: dict[int, float | None]) -> dict[str, Any] | None:
    """``timeline`` of faces (face id -> when seen), their times said to be
    file dates when every dated one is only its file's (``FaceStore.file_dated``)."""
    dated = [f for f, t in times.items() if t is not None]
    return timeline(times.values(), file_dates=bool(dated) and len(store.file_dated(dated)) == len(dated))


def timeline(times: Iterable[float | None], *, file_dates: bool = False) -> dict[str, Any] | None:
    """Bars on a time axis in a 100 x 100 box (``x``, ``width``,
    ``height``, ``label``; a day or month with no sighting is a gap), the
    first and last day or month, the highest count and the unit; None when
    no sighting has a time. ``file_dates``: the times are only the files'
    modification times (no capture date): said on the chart, and no chart
    when they all fall on one day (the day the files were copied says
    nothing). Counted with numpy (10,000 times in ~2 ms)."""
    seconds = np.array([t for t in times if t is not None], dtype=np.float64)
    if not len(seconds):
        return None
    if file_dates and np.floor(seconds.min() / 86400) == np.floor(seconds.max() / 86400):
        return None
    days = np.floor(seconds).astype("datetime64[s]").astype("datetime64[D]")
    by_month = int((days.max() - days.min()).astype(np.int64)) + 1 > MAX_DAYS
    slots, counts = np.unique(days.astype("datetime64[M]") if by_month else days, return_counts=True)
    first, last = slots[0], slots[-1]
    span = int((last - first).astype(np.int64)) + 1
    top = int(counts.max())
    bars = [{"x": int((slot - first).astype(np.int64)) * 100 / span, "width": 100 / span * 0.8,
             "height": int(n) / top * 100, "label": f"{slot}: {int(n)}"}
            for slot, n in zip(slots, counts)]
    return {"bars": bars, "first": str(first), "last": str(last), "top": top,
            "unit": "month" if by_month else "day", "file_dates": file_dates}
