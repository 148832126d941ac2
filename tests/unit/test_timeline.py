"""Counts over time for the sightings and person pages: a bar per day on a
time axis (gaps for days without sightings), months once the days span more
than MAX_DAYS, summed, and nothing without times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from application.timeline import MAX_DAYS, timeline


def at(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def test_days_on_a_time_axis_with_gaps():
    chart = timeline([at("2026-03-01T08:00"), at("2026-03-01T20:00"), at("2026-03-04T09:00"), None])
    assert chart["unit"] == "day" and (chart["first"], chart["last"], chart["top"]) == ("2026-03-01", "2026-03-04", 2)
    assert [b["label"] for b in chart["bars"]] == ["2026-03-01: 2", "2026-03-04: 1"]
    first, last = chart["bars"]
    assert (first["x"], first["height"]) == (0, 100)
    assert last["x"] == pytest.approx(75) and last["height"] == pytest.approx(50)  # day 4 of 4, half as many
    assert all(b["x"] + b["width"] <= 100 for b in chart["bars"])


def test_a_long_span_counts_months_summed():
    days = ["2024-01-02", "2024-01-30", "2024-01-31", "2025-06-15"]
    assert (at(days[-1]) - at(days[0])) / 86400 > MAX_DAYS
    chart = timeline(at(d) for d in days)
    assert chart["unit"] == "month" and (chart["first"], chart["last"]) == ("2024-01", "2025-06")
    assert [b["label"] for b in chart["bars"]] == ["2024-01: 3", "2025-06: 1"]
    assert chart["bars"][1]["x"] == pytest.approx(17 * 100 / 18)


def test_no_times_no_chart():
    assert timeline([]) is None and timeline([None, None]) is None


def test_file_dates_are_said_and_one_day_of_them_is_no_chart():
    day = 1_700_000_000.0
    assert timeline([day, day + 60], file_dates=True) is None  # the day the files were copied
    spread = timeline([day, day + 3 * 86400], file_dates=True)
    assert spread is not None and spread["file_dates"]
    assert timeline([day, day + 60])["file_dates"] is False  # capture dates: a chart of one day
