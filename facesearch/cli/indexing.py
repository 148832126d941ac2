"""``facesearch index`` (once or ``--watch``) and ``facesearch repair``."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from application.indexing import StoreError, parse_interval, stop_on_signals, watch
from config.settings import Settings
from facesearch.cli.common import CONFIG_OPTION, DATA_DIR_OPTION, cli_settings, echo, runtime

if TYPE_CHECKING:
    from application.indexing import IndexReport

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = "15m"


class Interval(click.ParamType):
    """An interval (``30s``, ``15m``, ``1h30m`` or seconds) as seconds."""

    name = "interval"

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_interval(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@DATA_DIR_OPTION
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object on the last stdout line.")
@click.option("--full", is_flag=True, help="Forget the index and rebuild it from PATHS.")
@click.option("--allow-empty", is_flag=True,
              help="Remove the photos of a PATH that has none left (by default they are kept: an unmounted disk).")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Worker processes (0: one per core).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="A Dask scheduler (tcp://host:8786): its workers detect and encode (indexer.scheduler).")
@click.option("--detector", type=click.Choice(["yunet", "hog", "cnn"]), default=None,
              help="Face detector (default: yunet; an index keeps the one it was built with until --full).")
@click.option("--upsample", type=click.IntRange(0, 4), default=None, help="Detector upsampling count.")
@click.option("--max-side", type=click.IntRange(min=0), default=None,
              help="Detect on a copy downscaled to this longest side, pixels (0: never).")
@click.option("--min-face-size", type=click.IntRange(min=0), default=None, help="Smallest face kept, pixels.")
@click.option("--jitters", type=click.IntRange(1, 100), default=None, help="Encoding re-samples per face.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: on a terminal, and never with --watch).")
@click.option("--watch", "watch_", is_flag=True,
              help="Reindex every --interval until stopped (SIGINT, SIGTERM: after the run in progress), "
                   "one line per run on stderr (with --json, also one JSON object per run on stdout).")
@click.option("--interval", type=Interval(), default=None,
              help=f"With --watch: from the start of a run to the start of the next: 30s, 15m, 1h, 1h30m or "
                   f"seconds (default {DEFAULT_INTERVAL}).")
@click.option("--max-runs", type=click.IntRange(min=1), default=None, hidden=True,
              help="With --watch: stop after this many runs.")
def index(paths, data_dir, config_file, as_json, full, allow_empty, workers, scheduler, detector, upsample, max_side,
          min_face_size, jitters, progress, watch_, interval, max_runs) -> None:
    """Index every face of the photos under PATHS (folders are walked
    recursively): new photos are added, changed ones re-encoded, and photos
    gone from PATHS removed. Unreadable photos and photos without a face are
    reported, never fatal."""
    from application.indexing import index_paths

    if not watch_ and (interval is not None or max_runs is not None):
        raise click.UsageError("--interval and --max-runs go with --watch")
    if watch_ and full:
        raise click.UsageError("--full rebuilds once: run `facesearch index --full` first, then --watch")
    detection = {k: v for k, v in dict(model=detector, upsample=upsample, max_side=max_side,
                                       min_face_size=min_face_size, jitters=jitters).items() if v is not None}
    indexer = {k: v for k, v in dict(workers=workers, scheduler=scheduler).items() if v is not None}
    settings = cli_settings(config_file, data_dir=data_dir, detection=detection, indexer=indexer or None)
    if watch_:
        interval_s = interval if interval is not None else parse_interval(DEFAULT_INTERVAL)
        _watch(paths, settings, interval_s, max_runs=max_runs, as_json=as_json, progress=bool(progress))
        return
    report = index_paths(paths, settings, full=full, allow_empty=allow_empty, progress=progress,
                         model=runtime().face_model(settings))
    out = sys.stderr if as_json else sys.stdout
    echo(
        f"{report.images_seen} photos seen: {report.images_indexed} indexed, {report.images_unchanged} unchanged, "
        f"{report.images_without_faces} without a face, {len(report.errors)} unreadable, "
        f"{report.images_removed} removed; faces +{report.faces_added} -{report.faces_removed}, "
        f"{report.faces_total} in the index ({report.duration_s:.1f} s, {_workers(report)}) "
        f"in {Path(settings.data_dir).resolve()}",
        file=out,
    )
    for error in report.errors[:20]:
        echo(f"  unreadable: {error['path']}: {error['error']}", file=out)
    if len(report.errors) > 20:
        echo(f"  ... and {len(report.errors) - 20} more (see --json)", file=out)
    if report.detector != settings.detection.model:
        echo(f"  faces found with {report.detector}, which built this index; {settings.detection.model} is the "
             "default now: `facesearch index --full` re-encodes every photo with it", file=out)
    if report.video_frames_skipped:
        searched, skipped = report.video_frames_searched, report.video_frames_skipped
        echo(f"  video: {searched} sampled frames searched, {skipped} skipped where nothing moved "
             f"({skipped / (searched + skipped):.0%}; video.motion_gating)", file=out)
    ann = report.approximate_index
    if ann:
        echo(f"  top-k search is approximate: {ann['factory']} over {ann['faces']} faces "
                   f"(lists trained at {ann['trained_faces']} faces; index.search)", file=out)
    recognition = report.recognition
    if recognition and "error" in recognition:
        echo(f"  recognition of named people failed: {recognition['error']}", file=out)
    elif recognition and recognition["evaluated"]:
        echo(f"  recognition: {recognition['suggested']} faces suggested to named people of "
                   f"{recognition['evaluated']} evaluated ({recognition['duration_s']:.1f} s)", file=out)
    if as_json:
        echo(json.dumps(report.to_dict()))


def _workers(report) -> str:
    if report.scheduler:
        return f"{report.workers} Dask workers of {report.scheduler}"
    return f"{report.workers} workers"


def _watch(
    paths: tuple[Path, ...], settings: Settings, interval_s: float, *, max_runs: int | None, as_json: bool,
    progress: bool,
) -> None:
    """``index --watch``: a run every ``interval_s`` seconds until a signal
    (or ``max_runs`` runs). A run that fails (another reindex holds the lock,
    a PATH is gone...) is reported and the schedule goes on."""
    from application.indexing import DistributedError, index_paths, utc_now

    model = runtime().face_model(settings)

    def run_once() -> None:
        started, started_at = time.monotonic(), utc_now()
        try:
            gone = [str(p) for p in paths if not p.exists()]
            if gone:  # an unmounted share must not look like deleted photos
                raise StoreError(f"{', '.join(gone)} no longer exists (unmounted?): nothing indexed or removed")
            report = index_paths(paths, settings, progress=progress, model=model)
        except (StoreError, DistributedError, OSError) as exc:
            failure = str(exc)
        except Exception as exc:  # a bug: show it, keep the schedule
            log.exception("reindex run failed")
            failure = f"{type(exc).__name__}: {exc}"
        else:
            echo(f"{_now()} {_run_line(report)}", err=True)
            if as_json:
                echo(json.dumps({"started_at": started_at, **report.to_dict()}))
            return
        echo(f"{_now()} reindex failed after {time.monotonic() - started:.1f} s: {failure}", err=True)
        if as_json:
            echo(json.dumps({"started_at": started_at, "failure": failure}))

    def on_signal(name: str) -> None:
        echo(f"{_now()} {name}: stopping after the run in progress, if any (again: at once)", err=True)

    echo(f"{_now()} reindexing {len(paths)} folder(s) every {interval_s:g} s into "
               f"{Path(settings.data_dir).resolve()}; SIGINT or SIGTERM stops", err=True)
    with stop_on_signals(on_signal) as stop:
        watch(run_once, interval_s, stop, max_runs=max_runs)


def _now() -> str:
    """Local time with its UTC offset, to the second."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _run_line(report: IndexReport) -> str:
    """One line for one run of ``index --watch``."""
    outcome = f"published {report.generation}" if report.published else "no changes"
    return (
        f"reindex {report.duration_s:.1f} s: {report.images_seen} photos seen, {report.images_indexed} indexed, "
        f"{report.images_moved} moved, {report.images_removed} removed; faces +{report.faces_added} "
        f"-{report.faces_removed}, {report.faces_total} in the index; {len(report.errors)} unreadable; {outcome}"
        + (f"; {report.recognition['suggested']} suggested to named people"
           if report.recognition and report.recognition.get("suggested") else "")
    )


@click.command()
@DATA_DIR_OPTION
@CONFIG_OPTION
def repair(data_dir, config_file) -> None:
    """Rebuild the FAISS index and the manifest from the metadata database
    (after a crash or a damaged index file). No photo is re-encoded."""
    from application.indexing import repair_index

    settings = cli_settings(config_file, data_dir=data_dir)
    count = repair_index(settings)
    echo(f"rebuilt the index of {count} faces in {Path(settings.data_dir).resolve()}")
