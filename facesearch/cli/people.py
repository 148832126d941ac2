"""``facesearch people``: the people and their corrections from the command
line, for people who script. The same functions as the HTTP API
(``application.people``), the same checks (face ids must be in the published
index) and one audit line per correction (``"key": "cli"``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from application import people as people_app
from application.audit import AuditLog
from application.errors import PersonNotFoundError
from application.indexing import AnnotationsDB, FaceStore, opened_index
from application.schemas import MAX_CORRECTION_FACES, PeopleResponse, PersonFacesParams
from config.settings import Settings
from facesearch.cli.common import CONFIG_OPTION, DATA_DIR_OPTION, cli_settings, echo

ACTOR = "cli"
JSON_OPTION = click.option("--json", "as_json", is_flag=True,
                           help="Print the result as one JSON object (as the HTTP API returns it) on stdout.")
FACE_IDS = click.argument("face_ids", nargs=-1, required=True, type=click.IntRange(min=0))


@dataclass
class Opened:
    settings: Settings
    root: Path
    store: FaceStore
    annotations: AnnotationsDB

    def audit(self, path: str, **record) -> None:
        if self.settings.service.audit_log:
            AuditLog.of(self.root, self.settings.service).write(
                {"key": ACTOR, "address": None, "method": "CLI", "path": path, "status": 0, **record})


@contextmanager
def opened(data_dir, config_file) -> Iterator[Opened]:
    """The published index (read-only) and the annotations; the audit log
    checked first (a change is made only where it can be recorded)."""
    settings = cli_settings(config_file, data_dir=data_dir)
    with opened_index(settings) as index:
        if settings.service.audit_log:
            AuditLog.of(index.root, settings.service).check()
        yield Opened(settings, index.root, index.store, index.annotations)


def person_id_of(annotations: AnnotationsDB, person: str) -> int:
    """A person given by id or by name (case-insensitive)."""
    if person.isdigit():
        return annotations.person(int(person)).person_id
    found = annotations.person_by_name(person)
    if found is None:
        raise PersonNotFoundError(f"no person called {person!r} (facesearch people list)")
    return found.person_id


def check_count(face_ids) -> list[int]:
    if len(face_ids) > MAX_CORRECTION_FACES:
        raise click.UsageError(f"at most {MAX_CORRECTION_FACES:,} face ids at a time")
    return list(face_ids)


def summary(person) -> str:
    counts = person.counts
    return (f"{person.person_id}: {person.name} ({counts['confirmed']} confirmed, {counts['cluster']} by cluster, "
            f"{counts['suggested']} suggested)")


@click.group()
def people() -> None:
    """The people: list, show, name, assign, reject, merge and undo a merge,
    rename, forget, recognise; the corrections and the undo of any. PERSON
    is an id or a name."""


@people.command("list")
@DATA_DIR_OPTION
@CONFIG_OPTION
@JSON_OPTION
def list_people(data_dir, config_file, as_json) -> None:
    """Every person, by name, with their faces by source."""
    with opened(data_dir, config_file) as o:
        everyone = o.annotations.people()
        if as_json:
            echo(PeopleResponse(people=[people_app.person_model(p) for p in everyone]).model_dump_json())
            return
        if not everyone:
            echo("nobody is named yet: facesearch people name NAME FACE_ID... (or --cluster ID)")
        for person in everyone:
            echo(summary(person))


@people.command()
@click.argument("person")
@DATA_DIR_OPTION
@CONFIG_OPTION
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Faces listed.")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Faces skipped.")
@click.option("--order", type=click.Choice(["newest", "oldest", "nearest", "farthest"]), default="newest",
              show_default=True, help="newest/oldest photo first, or by distance to their other confirmed faces.")
@click.option("--source", type=click.Choice(["confirmed", "cluster", "suggested"]), default=None,
              help="Only faces of this source.")
@JSON_OPTION
def show(person, data_dir, config_file, limit, offset, order, source, as_json) -> None:
    """A person and their faces: id, source, distance, file."""
    with opened(data_dir, config_file) as o:
        person_id = person_id_of(o.annotations, person)
        page = people_app.person_faces(o.store, o.annotations, person_id, PersonFacesParams(
            limit=limit, offset=offset, order=order, source=source))
        if as_json:
            echo(page.model_dump_json())
            return
        echo(summary(o.annotations.person(person_id)))
        for face in page.faces:
            distance = "-" if face.distance is None else f"{face.distance:.3f}"
            at = f" at {face.timestamp:.1f} s" if face.timestamp is not None else ""
            echo(f"  face {face.face_id:>8}  {face.source:<9}  {distance:>5}  {face.path}{at}")
        if page.total > offset + len(page.faces):
            echo(f"  ... {page.total - offset - len(page.faces)} more (--offset {offset + len(page.faces)})")


@people.command()
@click.argument("name")
@click.argument("face_ids", nargs=-1, type=click.IntRange(min=0))
@DATA_DIR_OPTION
@CONFIG_OPTION
@click.option("--cluster", "cluster_id", type=click.IntRange(min=0), default=None,
              help="Name this cluster of the last clustering instead of faces.")
@JSON_OPTION
def name(name, face_ids, data_dir, config_file, cluster_id, as_json) -> None:
    """Give faces (or a cluster of the last clustering) a name: they become
    the confirmed faces of the person called NAME, created when new."""
    if bool(face_ids) == (cluster_id is not None):
        raise click.UsageError("give FACE_IDS or --cluster, one of the two")
    with opened(data_dir, config_file) as o:
        if cluster_id is not None:
            done = o.annotations.name_cluster_faces(cluster_id, name, actor=ACTOR)
            person = done.person
            o.audit("people name", params={"cluster_id": cluster_id, "person_id": person.person_id},
                    face_ids=done.face_ids, results=done.changed)
        else:
            existing = o.annotations.person_by_name(name)
            ids = check_count(face_ids)
            if existing is None:
                done = people_app.create_person(o.store, o.annotations, name, ids, ACTOR)
            else:
                done = people_app.assign(o.store, o.annotations, existing.person_id, ids, ACTOR)
            person = done.person
            o.audit("people name", params={"person_id": person.person_id}, face_ids=done.face_ids,
                    results=done.changed)
        _print_person(person, as_json)


@people.command()
@click.argument("person")
@FACE_IDS
@DATA_DIR_OPTION
@CONFIG_OPTION
@JSON_OPTION
def assign(person, face_ids, data_dir, config_file, as_json) -> None:
    """Move faces to PERSON: they become their confirmed faces."""
    _correct("people assign", people_app.assign, person, face_ids, data_dir, config_file, as_json)


@people.command()
@click.argument("person")
@FACE_IDS
@DATA_DIR_OPTION
@CONFIG_OPTION
@JSON_OPTION
def reject(person, face_ids, data_dir, config_file, as_json) -> None:
    """Not this person: the faces are never attributed to PERSON again by a
    clustering or a suggestion."""
    _correct("people reject", people_app.reject, person, face_ids, data_dir, config_file, as_json)


def _correct(path: str, correction, person, face_ids, data_dir, config_file, as_json) -> None:
    with opened(data_dir, config_file) as o:
        person_id = person_id_of(o.annotations, person)
        done = correction(o.store, o.annotations, person_id, check_count(face_ids), ACTOR)
        o.audit(path, params={"person_id": person_id}, face_ids=done.face_ids, results=done.changed)
        if as_json:
            echo(people_app.correction_response(done).model_dump_json())
            return
        echo(f"{done.changed} of {len(done.face_ids)} faces changed; {summary(done.person)}")


@people.command()
@click.argument("person")
@click.argument("others", nargs=-1, required=True)
@DATA_DIR_OPTION
@CONFIG_OPTION
@JSON_OPTION
def merge(person, others, data_dir, config_file, as_json) -> None:
    """Merge OTHERS into PERSON (their faces, rejections and suggestions
    move, and they are gone); `undo-merge PERSON` takes it back."""
    with opened(data_dir, config_file) as o:
        person_id = person_id_of(o.annotations, person)
        ids = [person_id_of(o.annotations, other) for other in others]
        done = o.annotations.merge(person_id, ids, actor=ACTOR)
        o.audit("people merge", params={"person_id": person_id, "people": ids}, face_ids=done.face_ids,
                results=done.changed)
        if not as_json:
            echo(f"merged {len(ids)} into {person_id}, {done.changed} confirmed faces moved")
        _print_person(done.person, as_json)


@people.command("undo-merge")
@click.argument("person")
@DATA_DIR_OPTION
@CONFIG_OPTION
@JSON_OPTION
def undo_merge(person, data_dir, config_file, as_json) -> None:
    """Undo PERSON's last merge. Faces changed since the merge stay as they are (listed)."""
    with opened(data_dir, config_file) as o:
        person_id = person_id_of(o.annotations, person)
        report = o.annotations.undo_merge(person_id, actor=ACTOR)
        o.audit("people undo-merge", params={"person_id": person_id, "merge_id": report.merge_id,
                                             "people": report.restored_people},
                face_ids=report.restored_face_ids, results=report.faces_restored)
        response = people_app.undo_response(o.annotations, report)
        if as_json:
            echo(response.model_dump_json())
            return
        echo(f"undid merge {report.merge_id}: {', '.join(p.name for p in response.restored)} back, "
                   f"{report.faces_restored} faces restored")
        if report.left_as_they_are:
            echo(f"  changed since the merge, left as they are: faces {report.left_as_they_are}")


@people.command("corrections")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500), help="How many, newest first.")
@DATA_DIR_OPTION
@CONFIG_OPTION
@JSON_OPTION
def list_corrections(limit, data_dir, config_file, as_json) -> None:
    """The last corrections of people, newest first; `undo REV` takes one back."""
    with opened(data_dir, config_file) as o:
        response = people_app.corrections_response(o.annotations, limit)
        if as_json:
            echo(response.model_dump_json())
            return
        for c in response.corrections:
            state = ("undone by " + str(c.undone_by)) if c.undone_by else ("undoable" if c.undoable else "final")
            echo(f"{c.rev}  {c.at}  {c.action}  {c.person_name or '-'}  {c.faces} faces  ({state})")


@people.command()
@click.argument("rev", type=click.IntRange(min=1))
@DATA_DIR_OPTION
@CONFIG_OPTION
@JSON_OPTION
def undo(rev, data_dir, config_file, as_json) -> None:
    """Undo correction REV (see `corrections`); undoing an undo redoes it.
    Faces changed since stay as they are (listed)."""
    with opened(data_dir, config_file) as o:
        undone = people_app.undo(o.annotations, rev, ACTOR)
        o.audit("people undo", params={"undo": rev}, face_ids=undone.face_ids, results=len(undone.face_ids))
        if as_json:
            echo(people_app.undone_response(undone).model_dump_json())
            return
        echo(f"undid correction {rev} ({undone.action}): {len(undone.face_ids)} faces back; "
             f"undo it with `facesearch people undo {undone.rev}`")
        if undone.left_as_they_are:
            echo(f"  changed since, left as they are: faces {undone.left_as_they_are}")


@people.command()
@click.argument("person")
@click.argument("new_name")
@DATA_DIR_OPTION
@CONFIG_OPTION
@JSON_OPTION
def rename(person, new_name, data_dir, config_file, as_json) -> None:
    """Give PERSON another name."""
    with opened(data_dir, config_file) as o:
        person_id = person_id_of(o.annotations, person)
        renamed = people_app.rename_person(o.annotations, person_id, new_name, ACTOR)
        o.audit("people rename", params={"person_id": person_id})
        _print_person(renamed, as_json)


@people.command()
@click.argument("person")
@DATA_DIR_OPTION
@CONFIG_OPTION
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget(person, data_dir, config_file, yes) -> None:
    """Forget PERSON: their name, confirmed faces, rejections and suggestions.
    The faces stay indexed (to delete faces for good: facesearch erase)."""
    with opened(data_dir, config_file) as o:
        person_id = person_id_of(o.annotations, person)
        known = o.annotations.person(person_id)
        if not yes and not click.confirm(f"Forget {known.name} ({known.face_count} confirmed faces)?", err=True):
            raise click.ClickException("nothing forgotten")
        o.annotations.delete_person(person_id, actor=ACTOR)
        o.audit("people forget", params={"person_id": person_id})
        echo(f"forgot {known.name}")


@people.command()
@DATA_DIR_OPTION
@CONFIG_OPTION
@click.option("--everything", is_flag=True,
              help="Re-evaluate every face near a confirmed face, not only new faces and changed people.")
@JSON_OPTION
def recognise(data_dir, config_file, everything, as_json) -> None:
    """Suggest named people for new faces now (each `facesearch index` run does it too)."""
    with opened(data_dir, config_file) as o:
        result = people_app.recognise(o.root, o.store, o.annotations, o.settings.recognition,
                                          everything=everything)
        o.audit("people recognise", params={"everything": everything}, results=result.suggested)
        if as_json:
            echo(result.model_dump_json())
            return
        echo(f"{result.suggested} suggestions from {result.evaluated} faces evaluated against "
                   f"{result.confirmed_faces} confirmed faces ({result.duration_s:.2f} s)")


def _print_person(person, as_json: bool) -> None:
    if as_json:
        echo(people_app.person_model(person).model_dump_json())
    else:
        echo(summary(person), file=sys.stdout)
