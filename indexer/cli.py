"""The ``facesearch`` command: ``index``, ``serve``, ``repair``, ``cluster``."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import closing
from pathlib import Path

import click

from config.settings import Settings, load_settings
from indexer.store import EmbeddedStore, StoreError

CONFIG_OPTION = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="TOML file laid over config/default.toml (else $FACESEARCH_CONFIG).",
)
DATA_DIR_OPTION = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Index directory (else $FACESEARCH_DATA_DIR, else the config file).",
)


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
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Worker processes (0: one per core).")
@click.option("--detector", type=click.Choice(["hog", "cnn"]), default=None, help="Face detector.")
@click.option("--upsample", type=click.IntRange(0, 4), default=None, help="Detector upsampling count.")
@click.option("--max-side", type=click.IntRange(min=0), default=None,
              help="Detect on a copy downscaled to this longest side, pixels (0: never).")
@click.option("--min-face-size", type=click.IntRange(min=0), default=None, help="Smallest face kept, pixels.")
@click.option("--jitters", type=click.IntRange(1, 100), default=None, help="Encoding re-samples per face.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def index(paths, data_dir, config_file, as_json, full, workers, detector, upsample, max_side, min_face_size,
          jitters, progress) -> None:
    """Index every face of the photos under PATHS (folders are walked
    recursively): new photos are added, changed ones re-encoded, and photos
    gone from PATHS removed. Unreadable photos and photos without a face are
    reported, never fatal."""
    from indexer.indexing import index_paths

    detection = {k: v for k, v in dict(model=detector, upsample=upsample, max_side=max_side,
                                       min_face_size=min_face_size, jitters=jitters).items() if v is not None}
    settings = _settings(config_file, data_dir=data_dir, detection=detection,
                         indexer={"workers": workers} if workers is not None else None)
    try:
        report = index_paths(paths, settings, full=full, progress=progress)
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
    if as_json:
        click.echo(json.dumps(report.to_dict()))


@main.command()
@DATA_DIR_OPTION
@CONFIG_OPTION
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8000).")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Server processes (0: one per core).")
def serve(data_dir, config_file, host, port, workers) -> None:
    """Serve the HTTP API with gunicorn until stopped (Ctrl-C)."""
    from service.server import run_server

    service = {k: v for k, v in dict(host=host, port=port, workers=workers).items() if v is not None}
    settings = _settings(config_file, data_dir=data_dir, service=service)
    try:
        run_server(settings)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@DATA_DIR_OPTION
@CONFIG_OPTION
def repair(data_dir, config_file) -> None:
    """Rebuild the FAISS index and the manifest from the metadata database
    (after a crash or a damaged index file). No photo is re-encoded."""
    settings = _settings(config_file, data_dir=data_dir)
    db_path = Path(settings.data_dir).expanduser() / "metadata.sqlite3"
    if not db_path.exists():
        raise click.ClickException(f"no metadata database at {db_path}: nothing to repair; run `facesearch index`")
    try:
        store = EmbeddedStore.open(settings.data_dir, repair=True)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        # Opening has already rebuilt an inconsistent index; do it only once.
        count = store.count() if store.repaired else store.rebuild_index()
    finally:
        store.close()
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
        store = EmbeddedStore.open(settings.data_dir, readonly=True)
        annotations = AnnotationsDB.open(store.data_dir)
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
        f"({response.method}, {response.duration_s:.1f} s), stored as run {response.run_id} in {store.data_dir}",
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
