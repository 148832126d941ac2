"""The reindex log: ``DATA_DIR/runs.jsonl``, one JSON object per finished
run (appended, flushed and fsynced by the run holding the index lock; 0600).

Each line: ``started_at``, ``finished_at`` (ISO 8601, UTC), ``duration_s``,
``generation`` (published by the run, or the unchanged current one),
``published`` (bool), and the run's report (``images_seen``,
``faces_added``, ``faces_removed``, ``errors``...)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from indexer.store.file_modes import FILE_MODE

RUNS_FILE = "runs.jsonl"
TAIL_BYTES = 1 << 20


def append_run(data_dir: Path, record: dict[str, Any]) -> None:
    path = Path(data_dir) / RUNS_FILE
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def recent_runs(data_dir: Path, limit: int = 1) -> list[dict[str, Any]]:
    """The last ``limit`` runs, newest first (a torn last line, from a crash
    while appending, is skipped)."""
    path = Path(data_dir) / RUNS_FILE
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    out: list[dict[str, Any]] = []
    for raw in reversed(lines):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
            if len(out) >= limit:
                break
    return out


def last_run(data_dir: Path) -> dict[str, Any] | None:
    runs = recent_runs(data_dir, 1)
    return runs[0] if runs else None
