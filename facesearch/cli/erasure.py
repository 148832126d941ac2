"""``facesearch erase``: faces deleted for good (``application.erasure``)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from facesearch.cli.common import CONFIG_OPTION, DATA_DIR_OPTION, cli_settings, echo, runtime
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
    from application.audit import AuditLog, hash_bytes
    from application.erasure import ErasureTarget
    from application.erasure import erase as erase_target
    from application.indexing import opened_index
    from application.probes import probes_of_photos

    if not (face_ids or person or cluster_id is not None or probes):
        raise click.UsageError("say what to erase: --face, --person, --cluster or --probe")
    settings = cli_settings(config_file, data_dir=data_dir)
    with opened_index(settings) as index:
        audit = AuditLog.of(index.root, settings.service) if settings.service.audit_log else None
        if audit is not None:
            audit.check()  # nothing is erased that could not be recorded
        target = ErasureTarget(
            face_ids=list(face_ids), cluster_id=cluster_id, max_distance=max_distance,
            person_id=person_id_of(index.annotations, person) if person is not None else None,
            probes=probes_of_photos(runtime().face_model(settings), [(str(p), p.read_bytes()) for p in probes],
                                    settings, index.detection or settings.detection),
        )
        preview = erase_target(index.root, index.store, index.annotations, target, settings, dry_run=True,
                               generation=index.generation)
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
            report = erase_target(index.root, index.store, index.annotations, target, settings, dry_run=False,
                                  generation=index.generation)
            echo(f"erased {report.faces_erased} faces from {len(report.photos)} files; "
                 f"index generation {report.generation}", file=out)
        if audit is not None:
            audit.write({
                "key": "cli", "address": None, "method": "CLI", "path": "erase", "status": 0,
                "query": [hash_bytes(p.read_bytes()) for p in probes],
                "params": {**target.described(settings), "person": person, "dry_run": dry_run},
                "results": report.faces_erased, "face_ids": report.face_ids,
            })
        if as_json:
            echo(json.dumps(asdict(report)))
