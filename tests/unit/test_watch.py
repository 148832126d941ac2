"""``facesearch index --watch``: the interval parser, the loop, signals and
the command itself (with the fake model)."""

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from facesearch.cli import main
from indexer.store.generations import IndexLock
from indexer.watch import parse_interval, stop_on_signals, watch
from tests.helpers import published_store


@pytest.mark.parametrize(
    "text, seconds",
    [("30s", 30), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("1h0m5s", 3605), ("2m30s", 150), ("90", 90),
     ("2.5", 2.5), (" 15M ", 900)],
)
def test_parse_interval(text: str, seconds: float):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "-5", "15x", "m", "1h30", "30m1h", "1.5h", "nan", "inf", "5 m"])
def test_parse_interval_refuses(text: str):
    with pytest.raises(ValueError):
        parse_interval(text)


class RecordingStop(threading.Event):
    """A stop event whose waits return at once and are recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return self.is_set()


def test_watch_runs_every_interval_start_to_start():
    now = [0.0]
    durations = iter([3.0, 12.0, 1.0])

    def run_once() -> None:
        now[0] += next(durations)

    stop = RecordingStop()
    assert watch(run_once, 10.0, stop, max_runs=3, clock=lambda: now[0]) == 3
    assert stop.waits == [7.0, 0.0]  # a run longer than the interval: the next starts at once; none after the last


def test_watch_stops_after_the_run_in_progress():
    stop = threading.Event()
    calls = []

    def run_once() -> None:
        calls.append(1)
        stop.set()

    assert watch(run_once, 3600.0, stop) == 1 and calls == [1]


def test_the_first_signal_sets_stop_and_the_second_is_left_to_the_previous_handler():
    before = signal.getsignal(signal.SIGTERM)
    before_int = signal.getsignal(signal.SIGINT)
    seen = []
    with stop_on_signals(seen.append) as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5) and seen == ["SIGTERM"]
        assert signal.getsignal(signal.SIGTERM) is before
    assert signal.getsignal(signal.SIGTERM) is before and signal.getsignal(signal.SIGINT) is before_int


def watch_args(data_dir: Path, photos: Path, *extra: str) -> list[str]:
    return ["index", "--data-dir", str(data_dir), "--workers", "1", "--watch", *extra, str(photos)]


def run_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " reindex " in line]


def test_watch_runs_until_max_runs(fake_model, runner, data_dir: Path, photos: Path):
    result = runner.invoke(main, watch_args(data_dir, photos, "--interval", "0.01", "--max-runs", "2", "--json"))
    assert result.exit_code == 0, result.output
    first, second = [json.loads(line) for line in result.stdout.splitlines()]
    assert (first["faces_added"], first["published"], first["generation"]) == (15, True, "g000001")
    assert (second["faces_added"], second["published"], second["generation"]) == (0, False, "g000001")
    assert "started_at" in first and first["errors"] == []
    lines = run_lines(result.stderr)
    assert len(lines) == 2
    assert "15 photos seen" in lines[0] and "faces +15 -0" in lines[0] and lines[0].endswith("published g000001")
    assert lines[1].endswith("no changes")


def test_watch_ends_cleanly_on_sigterm_after_the_run(fake_model, runner, data_dir: Path, photos: Path, monkeypatch):
    import application.indexing

    index_paths = application.indexing.index_paths

    def index_then_sigterm(*args, **kwargs):
        report = index_paths(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives during the run: it finishes, no other starts
        return report

    monkeypatch.setattr(application.indexing, "index_paths", index_then_sigterm)
    result = runner.invoke(main, watch_args(data_dir, photos, "--interval", "1h"))
    assert result.exit_code == 0, result.output
    assert len(run_lines(result.stderr)) == 1 and "SIGTERM: stopping" in result.stderr


def test_a_failed_run_is_reported_and_the_schedule_goes_on(fake_model, runner, data_dir: Path, photos: Path):
    with IndexLock(data_dir, command="facesearch index elsewhere"):
        result = runner.invoke(main, watch_args(data_dir, photos, "--interval", "0.01", "--max-runs", "2", "--json"))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "reindex failed" in line]
    assert len(lines) == 2 and all("another reindex is running" in line for line in lines)
    assert all("facesearch index elsewhere" in json.loads(line)["failure"] for line in result.stdout.splitlines())


def test_a_vanished_folder_is_a_failed_run_not_a_removal(
    fake_model, runner, data_dir: Path, photos: Path, monkeypatch
):
    import application.indexing

    index_paths = application.indexing.index_paths

    def index_then_unmount(*args, **kwargs):
        report = index_paths(*args, **kwargs)
        photos.rename(photos.with_name("elsewhere"))
        return report

    monkeypatch.setattr(application.indexing, "index_paths", index_then_unmount)
    result = runner.invoke(main, watch_args(data_dir, photos, "--interval", "0.01", "--max-runs", "2", "--json"))
    assert result.exit_code == 0, result.output
    first, second = [json.loads(line) for line in result.stdout.splitlines()]
    assert first["faces_total"] == 15 and "no longer exists" in second["failure"]
    assert published_store(data_dir).count() == 15


@pytest.mark.parametrize(
    "args",
    [["--interval", "15m"], ["--watch", "--full"], ["--watch", "--interval", "soon"], ["--watch", "--interval", "0"],
     ["--max-runs", "2"]],
)
def test_watch_usage_errors(runner, data_dir: Path, photos: Path, args: list[str]):
    result = runner.invoke(main, ["index", "--data-dir", str(data_dir), *args, str(photos)])
    assert result.exit_code == 2
