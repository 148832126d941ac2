"""``facesearch erase``: faces deleted for good (``indexer.erasure``)."""

from __future__ import annotations

import json
import sys
from contextlib import closing
from pathlib import Path

import click

from facesearch.cli.common import CONFIG_OPTION, DATA_DIR_OPTION, cli_settings, echo, open_index
from facesearch.cli.people import person_id_of


@click.command()
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

    from application.audit import AuditLog, hash_bytes
    from application.errors import TooManyHits
    from application.recall import faces_within
    from indexer.erasure import erase_faces, preview_erasure
    from indexer.faces import find_faces
    from indexer.images import ImageError, decode_rgb
    from indexer.indexing import detection_from_signature
    from indexer.store import generations
    from indexer.store.annotations import ClusterNotFoundError, NoClusteringError, PersonNotFoundError
    from indexer.store.generations import IndexBusyError

    if not (face_ids or person or cluster_id is not None or probes):
        raise click.UsageError("say what to erase: --face, --person, --cluster or --probe")
    settings = cli_settings(config_file, data_dir=data_dir)
    root, store, annotations = open_index(settings)
    with closing(annotations):
        ids = set(face_ids)
        person_id = None
        try:
            with closing(store):
                if person is not None:
                    person_id = person_id_of(annotations, person)
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
        echo(f"{preview.faces_erased} indexed faces in {len(preview.photos)} files"
                   f"{' and the person ' + person if person is not None else ''} to erase", file=out)
        for path in preview.photos[:20]:
            echo(f"  {path}", file=out)
        if len(preview.photos) > 20:
            echo(f"  ... and {len(preview.photos) - 20} more files", file=out)
        report = preview
        if not dry_run:
            if not yes and not click.confirm("Erase them for good?", err=True):
                raise click.ClickException("nothing erased")
            try:
                report = erase_faces(root, sorted(ids), annotations, person_id=person_id, settings=settings)
            except IndexBusyError as exc:
                raise click.ClickException(f"{exc} Retry the erasure afterwards.") from None
            echo(f"erased {report.faces_erased} faces from {len(report.photos)} files; "
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
            echo(json.dumps(asdict(report)))
