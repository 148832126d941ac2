"""Helpers shared by the benchmarks: where the data is, the LFW photo list,
timing, percentiles, printed tables and the atomic JSON result files."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_LFW = SHARED_DATA / "lfw-devtrain"
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
MISSING_DATA_EXIT = 2
LFW_HINT = " (give its location with --lfw DIR)"


def require_dir(path: Path, what: str, hint: str = "") -> Path:
    """``path`` resolved, or exit with status 2 saying what is missing (and ``hint``)."""
    if not path.is_dir():
        _missing(f"{what} not found at {path}{hint}")
    return path.resolve()


def require_file(path: Path, what: str, hint: str = "") -> Path:
    """``path`` resolved, or exit with status 2 saying what is missing (and ``hint``)."""
    if not path.is_file():
        _missing(f"{what} not found at {path}{hint}")
    return path.resolve()


def _missing(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(MISSING_DATA_EXIT)


def lfw_photos(lfw: Path) -> list[Path]:
    """Every ``Person/Person_NNNN.jpg`` under ``lfw``, sorted."""
    return sorted(lfw.glob("*/*.jpg"))


def spread_subset(items: Sequence[Path], limit: int) -> list[Path]:
    """``limit`` items taken evenly along ``items`` (every len/limit-th one),
    so that a sorted list of people is covered from A to Z; all when
    ``limit`` is 0 or not smaller than the list."""
    total = len(items)
    if limit <= 0 or limit >= total:
        return list(items)
    return [items[i * total // limit] for i in range(limit)]


def now() -> float:
    """Monotonic seconds."""
    return time.perf_counter()


def percentile_ms(seconds: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of durations in seconds, in milliseconds."""
    values = np.asarray(list(seconds), dtype=np.float64)
    return float(np.percentile(values, q) * 1000.0) if len(values) else float("nan")


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    """Print rows as an aligned text table; floats get 3 significant decimals."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    if title:
        print(f"\n{title}")
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths))))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def machine_info() -> dict[str, Any]:
    """Where a result was measured."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_results(name: str, results: dict[str, Any]) -> Path:
    """Write ``results`` (plus machine info) to ``benchmarks/results/NAME.json``
    atomically: a temporary file beside it, then a rename."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = RESULTS_DIR / f"{name}.json"
    payload = _finite({"benchmark": name, "machine": machine_info(), **results})
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=RESULTS_DIR)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, default=_json_default, allow_nan=False)
            handle.write("\n")
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    print(f"\nresults written to {target}")
    return target


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinite floats replaced by None (strict JSON)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
