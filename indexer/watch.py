"""``facesearch index --watch``: reindex on an interval until stopped."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_DURATION = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")


def parse_interval(text: str) -> float:
    """Seconds in an interval written ``30s``, ``15m``, ``1h``, ``1h30m``
    (hours, minutes, seconds, in that order, each at most once) or as plain
    seconds (``90``, ``2.5``). Raises ValueError unless it is more than 0."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        match = _DURATION.fullmatch(value)
        if not value or match is None:
            raise ValueError(f"{text!r} is not an interval: write e.g. 30s, 15m, 1h, 1h30m or seconds") from None
        seconds = float(int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + int(match["s"] or 0))
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{text!r}: the interval must be a finite number of seconds above 0")
    return seconds


def watch(
    run_once: Callable[[], None],
    interval_s: float,
    stop: threading.Event,
    *,
    max_runs: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Call ``run_once`` every ``interval_s`` seconds, start to start (at
    once when a run took longer), until ``stop`` is set or ``max_runs`` runs
    were made; ``stop`` set during a run ends the loop after it. Returns the
    number of runs."""
    runs = 0
    while not stop.is_set():
        started = clock()
        run_once()
        runs += 1
        if max_runs is not None and runs >= max_runs:
            break
        stop.wait(max(0.0, interval_s - (clock() - started)))
    return runs


@contextmanager
def stop_on_signals(
    on_signal: Callable[[str], None], signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
) -> Iterator[threading.Event]:
    """An event that the first SIGINT or SIGTERM received inside sets, after
    calling ``on_signal`` with its name, instead of interrupting the run in
    progress. The previous handlers come back then, so a second signal
    interrupts at once (a reindex killed this way is resumed by the next
    one). Call from the main thread."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def handle(signum: int, _frame: object) -> None:
        restore()
        on_signal(signal.Signals(signum).name)
        stop.set()

    for sig in signals:
        signal.signal(sig, handle)
    try:
        yield stop
    finally:
        restore()
