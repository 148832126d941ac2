"""The ``facesearch`` command: ``index``, ``serve``, ``repair``, ``cluster``."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from config.settings import Settings, load_settings
from indexer.store import EmbeddedStore, StoreError
from indexer.watch import parse_interval, stop_on_signals, watch

if TYPE_CHECKING:
    from indexer.indexing import IndexReport

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = "15m"

CONFIG_OPTION = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="TOML file laid over config/default.toml (else $FACESEARCH_CONFIG).",
)
DATA_DIR_OPTION = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Index directory (else $FACESEARCH_DATA_DIR, else the config file).",
)


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


def _settings(config_file: Path | None, **overrides) -> Settings:
    try:
        return load_settings(config_file, **overrides)
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from None
    except ValueError as exc:  # pydantic's ValidationError
        raise click.UsageError(f"invalid setting: {exc}") from None


def _version_text() -> str:
    from importlib.metadata import version

    from indexer import model

    info = model.runtime_info()
    return (
        f"facesearch {version('facesearch')}, dlib {info['dlib_version']} "
        f"(BLAS {'on' if info['dlib_blas'] else 'off'}, CUDA {'on' if info['dlib_cuda'] else 'off'}), "
        f"model {info['model']}"
    )


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_text())
        ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version, the dlib build and the model, then exit.")
@click.option("-v", "--verbose", count=True, help="More log output (-v: each skipped photo, -vv: debug).")
def main(verbose: int) -> None:
    """facesearch: index photo folders, then ask "who looks like this?"."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@DATA_DIR_OPTION
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object on the last stdout line.")
@click.option("--full", is_flag=True, help="Forget the index and rebuild it from PATHS.")
@click.option("--allow-empty", is_flag=True,
              help="Remove the photos of a PATH that has none left (by default they are kept: an unmounted disk).")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Worker processes (0: one per core).")
@click.option("--detector", type=click.Choice(["hog", "cnn"]), default=None, help="Face detector.")
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
def index(paths, data_dir, config_file, as_json, full, allow_empty, workers, detector, upsample, max_side,
          min_face_size, jitters, progress, watch_, interval, max_runs) -> None:
    """Index every face of the photos under PATHS (folders are walked
    recursively): new photos are added, changed ones re-encoded, and photos
    gone from PATHS removed. Unreadable photos and photos without a face are
    reported, never fatal."""
    from indexer.indexing import index_paths

    if not watch_ and (interval is not None or max_runs is not None):
        raise click.UsageError("--interval and --max-runs go with --watch")
    if watch_ and full:
        raise click.UsageError("--full rebuilds once: run `facesearch index --full` first, then --watch")
    detection = {k: v for k, v in dict(model=detector, upsample=upsample, max_side=max_side,
                                       min_face_size=min_face_size, jitters=jitters).items() if v is not None}
    settings = _settings(config_file, data_dir=data_dir, detection=detection,
                         indexer={"workers": workers} if workers is not None else None)
    if watch_:
        interval_s = interval if interval is not None else parse_interval(DEFAULT_INTERVAL)
        _watch(paths, settings, interval_s, max_runs=max_runs, as_json=as_json, progress=bool(progress))
        return
    try:
        report = index_paths(paths, settings, full=full, allow_empty=allow_empty, progress=progress)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    out = sys.stderr if as_json else sys.stdout
    click.echo(
        f"{report.images_seen} photos seen: {report.images_indexed} indexed, {report.images_unchanged} unchanged, "
        f"{report.images_without_faces} without a face, {len(report.errors)} unreadable, "
        f"{report.images_removed} removed; faces +{report.faces_added} -{report.faces_removed}, "
        f"{report.faces_total} in the index ({report.duration_s:.1f} s, {report.workers} workers) "
        f"in {Path(settings.data_dir).resolve()}",
        file=out,
    )
    for error in report.errors[:20]:
        click.echo(f"  unreadable: {error['path']}: {error['error']}", file=out)
    if len(report.errors) > 20:
        click.echo(f"  ... and {len(report.errors) - 20} more (see --json)", file=out)
    ann = report.approximate_index
    if ann:
        click.echo(f"  top-k search is approximate: {ann['factory']} over {ann['faces']} faces "
                   f"(lists trained at {ann['trained_faces']} faces; index.search)", file=out)
    if as_json:
        click.echo(json.dumps(report.to_dict()))


def _watch(
    paths: tuple[Path, ...], settings: Settings, interval_s: float, *, max_runs: int | None, as_json: bool,
    progress: bool,
) -> None:
    """``index --watch``: a run every ``interval_s`` seconds until a signal
    (or ``max_runs`` runs). A run that fails (another reindex holds the lock,
    a PATH is gone...) is reported and the schedule goes on."""
    from indexer.indexing import index_paths
    from indexer.store.metadata import utc_now

    def run_once() -> None:
        started, started_at = time.monotonic(), utc_now()
        try:
            gone = [str(p) for p in paths if not p.exists()]
            if gone:  # an unmounted share must not look like deleted photos
                raise StoreError(f"{', '.join(gone)} no longer exists (unmounted?): nothing indexed or removed")
            report = index_paths(paths, settings, progress=progress)
        except (StoreError, OSError) as exc:
            failure = str(exc)
        except Exception as exc:  # a bug: show it, keep the schedule
            log.exception("reindex run failed")
            failure = f"{type(exc).__name__}: {exc}"
        else:
            click.echo(f"{_now()} {_run_line(report)}", err=True)
            if as_json:
                click.echo(json.dumps({"started_at": started_at, **report.to_dict()}))
            return
        click.echo(f"{_now()} reindex failed after {time.monotonic() - started:.1f} s: {failure}", err=True)
        if as_json:
            click.echo(json.dumps({"started_at": started_at, "failure": failure}))

    def on_signal(name: str) -> None:
        click.echo(f"{_now()} {name}: stopping after the run in progress, if any (again: at once)", err=True)

    click.echo(f"{_now()} reindexing {len(paths)} folder(s) every {interval_s:g} s into "
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
    )


@main.command()
@DATA_DIR_OPTION
@CONFIG_OPTION
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8000).")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Server processes (0: one per core).")
@click.option("--insecure", is_flag=True,
              help="Allow binding to an address other than loopback with no API key configured.")
def serve(data_dir, config_file, host, port, workers, insecure) -> None:
    """Serve the HTTP API with gunicorn until stopped (Ctrl-C)."""
    from service.access import KeyConfigError, is_loopback, parse_keys
    from service.server import run_server

    service = {k: v for k, v in dict(host=host, port=port, workers=workers).items() if v is not None}
    settings = _settings(config_file, data_dir=data_dir, service=service)
    try:
        keys = parse_keys(settings.api_keys, settings.read_keys)
    except KeyConfigError as exc:
        raise click.ClickException(f"API keys: {exc}") from None
    if not keys and not is_loopback(settings.service.host):
        if not insecure:
            raise click.ClickException(
                f"refusing to serve faces on {settings.service.host} with no API key: anyone who can reach it could "
                "search for anyone. Configure keys (FACESEARCH_API_KEYS, see `facesearch hash-key`), bind to "
                "127.0.0.1, or pass --insecure."
            )
        click.echo(f"facesearch: WARNING: serving on {settings.service.host} with no API key (--insecure)", err=True)
    try:
        run_server(settings)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@DATA_DIR_OPTION
@CONFIG_OPTION
@click.option("--face", "face_ids", type=int, multiple=True, help="A face id to erase (repeatable).")
@click.option("--person", default=None, help="Erase every face of this person (name or id) and forget them.")
@click.option("--cluster", "cluster_id", type=click.IntRange(min=0), default=None,
              help="Erase every member face of this cluster of the last clustering.")
@click.option("--probe", "probes", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="Erase every face near the largest face of this photo (repeatable).")
@click.option("--max-distance", type=click.FloatRange(0, 1.0, min_open=True), default=None,
              help="Euclidean radius around each probe (default erasure.max_distance, 0.45).")
@click.option("--dry-run", is_flag=True, help="Only list the faces that would be erased.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object on the last stdout line.")
def erase(data_dir, config_file, face_ids, person, cluster_id, probes, max_distance, dry_run, yes, as_json) -> None:
    """Delete faces from the index for good: their embeddings, thumbnails,
    metadata, labels and places in stored clusterings, in every index
    generation on disk. Reindexing the same files does not bring them back.
    The photo files are not touched."""
    from dataclasses import asdict

    from indexer.erasure import erase_faces, preview_erasure
    from indexer.faces import find_faces
    from indexer.images import ImageError, decode_rgb
    from indexer.indexing import detection_from_signature
    from indexer.store.annotations import AnnotationsDB, ClusterNotFoundError, NoClusteringError, PersonNotFoundError
    from indexer.store import generations
    from indexer.store.generations import IndexBusyError
    from service.audit import AuditLog, hash_bytes
    from service.recall import TooManyHits, faces_within

    if not (face_ids or person or cluster_id is not None or probes):
        raise click.UsageError("say what to erase: --face, --person, --cluster or --probe")
    settings = _settings(config_file, data_dir=data_dir)
    root = Path(settings.data_dir).expanduser().resolve()
    try:
        store = EmbeddedStore.open_published(root)
        annotations = AnnotationsDB.open(root)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    with closing(annotations):
        ids = set(face_ids)
        person_id = None
        try:
            with closing(store):
                if person is not None:
                    person_id = _person_id(annotations, person)
                    ids.update(annotations.faces_of_person(person_id))
                if cluster_id is not None:
                    ids.update(annotations.faces_of_cluster(cluster_id))
                radius = max_distance or settings.erasure.max_distance
                for probe in probes:
                    detection = detection_from_signature(store.manifest.get("detection")) or settings.detection
                    faces = find_faces(decode_rgb(probe.read_bytes(), max_pixels=settings.indexer.max_image_pixels),
                                       detection, max_faces=1)
                    if not faces:
                        raise click.ClickException(f"{probe}: no face found")
                    ids.update(faces_within(store, faces[0].embedding[None], radius, settings.recall.max_hits))
                preview = preview_erasure(store, sorted(ids), generations.current_name(root))
        except (PersonNotFoundError, NoClusteringError, ClusterNotFoundError, TooManyHits) as exc:
            raise click.ClickException(str(exc)) from None
        except ImageError as exc:
            raise click.ClickException(f"a probe photo cannot be read: {exc}") from None
        out = sys.stderr if as_json else sys.stdout
        click.echo(f"{preview.faces_erased} indexed faces in {len(preview.photos)} files"
                   f"{' and the person ' + person if person is not None else ''} to erase", file=out)
        for path in preview.photos[:20]:
            click.echo(f"  {path}", file=out)
        if len(preview.photos) > 20:
            click.echo(f"  ... and {len(preview.photos) - 20} more files", file=out)
        report = preview
        if not dry_run:
            if not yes and not click.confirm("Erase them for good?", err=True):
                raise click.ClickException("nothing erased")
            try:
                report = erase_faces(root, sorted(ids), annotations, person_id=person_id)
            except IndexBusyError as exc:
                raise click.ClickException(f"{exc} Retry the erasure afterwards.") from None
            click.echo(f"erased {report.faces_erased} faces from {len(report.photos)} files; "
                       f"index generation {report.generation}", file=out)
        if settings.service.audit_log:
            AuditLog.in_data_dir(root).write({
                "key": "cli", "address": None, "method": "CLI", "path": "erase", "status": 0,
                "query": [hash_bytes(p.read_bytes()) for p in probes],
                "params": {"faces": list(face_ids), "person": person, "cluster": cluster_id,
                           "max_distance": max_distance, "dry_run": dry_run},
                "results": report.faces_erased, "face_ids": report.face_ids,
            })
        if as_json:
            click.echo(json.dumps(asdict(report)))


def _person_id(annotations, person: str) -> int:
    """A person given by id or by name (case-insensitive)."""
    from indexer.store.annotations import PersonNotFoundError

    if person.isdigit():
        return int(person)
    for known in annotations.people():
        if known.name.casefold() == person.casefold():
            return known.person_id
    raise PersonNotFoundError(f"no person called {person!r}")


@main.command("hash-key")
@click.argument("key", required=False)
@click.option("--new", "make_new", is_flag=True, help="Make a new random key and print it with its hashed form.")
def hash_key(key, make_new) -> None:
    """Print the form of an API key to put in a config file
    (`sha256:<hex>`), so that the file does not hold the key itself. The key
    is read from stdin when not given (keeps it out of the shell history)."""
    from service.access import hashed_form, new_key

    if make_new:
        if key:
            raise click.UsageError("give a KEY or --new, not both")
        key = new_key()
        click.echo(f"key:    {key}")
        click.echo(f"config: {hashed_form(key)}")
        return
    if not key:
        key = sys.stdin.readline().strip()
    if not key:
        raise click.UsageError("give the key as an argument or on stdin")
    click.echo(hashed_form(key))


@main.command()
@DATA_DIR_OPTION
@CONFIG_OPTION
def repair(data_dir, config_file) -> None:
    """Rebuild the FAISS index and the manifest from the metadata database
    (after a crash or a damaged index file). No photo is re-encoded."""
    from indexer.indexing import repair_index

    settings = _settings(config_file, data_dir=data_dir)
    try:
        count = repair_index(settings)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"rebuilt the index of {count} faces in {Path(settings.data_dir).resolve()}")


@main.command()
@DATA_DIR_OPTION
@CONFIG_OPTION
@click.option("--method", type=click.Choice(["kmeans", "threshold"]), default=None,
              help="kmeans (k given or automatic, then strangers) or threshold (no k). Default from the config.")
@click.option("--k", type=click.IntRange(min=1), default=None, help="Clusters for kmeans (default: automatic).")
@click.option("--stranger-distance", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Euclidean distance from the cluster's centre beyond which a face is a stranger.")
@click.option("--neighbour-distance", type=click.FloatRange(min=0, min_open=True), default=None,
              help="kmeans: a face with no other face this near (Euclidean) is a stranger.")
@click.option("--threshold", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Longest link the threshold method may use (Euclidean).")
@click.option("--seed", type=int, default=None, help="Random seed (kmeans).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the run as one JSON object (as POST /api/v1/clusters returns it) on the last stdout line.")
@click.option("--contact-sheet", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Also write a PNG of the clusters' thumbnails to this file.")
def cluster(data_dir, config_file, method, k, stranger_distance, neighbour_distance, threshold, seed, as_json,
            contact_sheet) -> None:
    """Group every indexed face into people and store the run, as
    POST /api/v1/clusters does (names given to clusters carry over)."""
    from indexer.store.annotations import AnnotationsDB
    from service.clustering import (
        cluster_params,
        clusters_response,
        contact_sheet_png,
        run_clustering,
    )
    from service.schemas import ClusterRequest

    settings = _settings(config_file, data_dir=data_dir)
    request = ClusterRequest(method=method, k=k, stranger_distance=stranger_distance,
                             neighbour_distance=neighbour_distance, threshold=threshold, seed=seed)
    try:
        store = EmbeddedStore.open_published(settings.data_dir)
        annotations = AnnotationsDB.open(Path(settings.data_dir).expanduser().resolve())
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    with closing(store), closing(annotations):
        try:
            run = run_clustering(store, annotations, cluster_params(request, settings.clustering), settings.clustering)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        response = clusters_response(store, annotations, run)
        if contact_sheet is not None:
            contact_sheet.write_bytes(contact_sheet_png(store, annotations, run))
    out = sys.stderr if as_json else sys.stdout
    click.echo(
        f"{response.faces} faces in {response.k} clusters and {len(response.strangers)} strangers "
        f"({response.method}, {response.duration_s:.1f} s), stored as run {response.run_id} in {Path(settings.data_dir).resolve()}",
        file=out,
    )
    for item in response.clusters:
        if item.name is not None:
            click.echo(f"  cluster {item.id}: {item.name} ({item.size} faces)", file=out)
    if contact_sheet is not None:
        click.echo(f"contact sheet: {contact_sheet}", file=out)
    if as_json:
        click.echo(response.model_dump_json())


if __name__ == "__main__":
    main()
