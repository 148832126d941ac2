"""``facesearch people``: the corrections from the command line, over the
synthetic index of four people (``people_index``), through click's runner."""

from __future__ import annotations

import json

from application.audit import AuditLog
from facesearch.cli import main
from tests.helpers import client_of, faces_of


def run(runner, people_index, *args, code: int = 0):
    result = runner.invoke(main, ["people", *args[:1], *args[1:], "--data-dir", str(people_index)])
    assert result.exit_code == code, result.output
    return result


def last_json(result) -> dict:
    return json.loads(result.output.strip().splitlines()[-1])


def test_name_show_assign_reject_from_the_command_line(runner, people_index):
    client = client_of(people_index)
    anna, ben = faces_of(client, "anna"), faces_of(client, "ben")
    assert "nobody is named yet" in run(runner, people_index, "list").output
    made = last_json(run(runner, people_index, "name", "Anna", *map(str, anna[:3]), "--json"))
    assert made["name"] == "Anna" and made["face_count"] == 3
    # Naming more faces with a name that exists adds them to that person.
    again = last_json(run(runner, people_index, "name", "anna", *map(str, anna[3:]), "--json"))
    assert again["id"] == made["id"] and again["face_count"] == len(anna)
    run(runner, people_index, "name", "Ben", *map(str, ben))
    assert run(runner, people_index, "list").output.splitlines() == [
        f"{made['id']}: Anna ({len(anna)} confirmed, 0 by cluster, 0 suggested)",
        f"{made['id'] + 1}: Ben ({len(ben)} confirmed, 0 by cluster, 0 suggested)",
    ]
    moved = last_json(run(runner, people_index, "assign", "Ben", str(anna[0]), "--json"))
    assert moved["changed"] == 1 and moved["person"]["face_count"] == len(ben) + 1
    out = run(runner, people_index, "reject", str(made["id"] + 1), str(anna[0])).output
    assert out.startswith("1 of 1 faces changed")
    page = last_json(run(runner, people_index, "show", "Anna", "--json", "--order", "farthest", "--limit", "2"))
    assert page["total"] == len(anna) - 1 and len(page["faces"]) == 2
    text = run(runner, people_index, "show", "anna", "--limit", "2", "--order", "farthest").output
    first = page["faces"][0]
    assert f"face {first['face_id']:>8}  confirmed  {first['distance']:.3f}  {first['path']}" in text
    assert "more (--offset 2)" in text
    lines = [line for line in AuditLog.in_data_dir(people_index).read() if line["key"] == "cli"]
    assert [line["path"] for line in lines] == ["people name"] * 3 + ["people assign", "people reject"]
    assert lines[0]["face_ids"] == anna[:3] and lines[-1]["face_ids"] == [anna[0]]


def test_merge_undo_rename_forget(runner, people_index):
    client = client_of(people_index)
    anna = faces_of(client, "anna")
    run(runner, people_index, "name", "Anna", *map(str, anna[:4]))
    run(runner, people_index, "name", "Anna B", *map(str, anna[4:]))
    assert "3 confirmed faces moved" in run(runner, people_index, "merge", "Anna", "Anna B").output
    undone = last_json(run(runner, people_index, "undo-merge", "Anna", "--json"))
    assert [p["name"] for p in undone["restored"]] == ["Anna B"] and undone["left_as_they_are"] == []
    assert "no merge to undo" in run(runner, people_index, "undo-merge", "Anna", code=1).output
    assert "Anna C" in run(runner, people_index, "rename", "Anna B", "Anna C").output
    assert "already called" in run(runner, people_index, "rename", "Anna C", "anna", code=1).output
    assert "forgot Anna C" in run(runner, people_index, "forget", "Anna C", "--yes").output
    recognised = last_json(run(runner, people_index, "recognise", "--everything", "--json"))
    assert recognised["confirmed_faces"] == 4


def test_errors_name_what_is_wrong(runner, people_index):
    assert "no person called 'Zed'" in run(runner, people_index, "assign", "Zed", "1", code=1).output
    assert "no face with id 9999" in run(runner, people_index, "name", "Zed", "1", "9999", code=1).output
    assert "FACE_IDS or --cluster" in run(runner, people_index, "name", "Zed", code=2).output
    assert "no clustering" in run(runner, people_index, "name", "Zed", "--cluster", "0", code=1).output
    run(runner, people_index, "name", "Zed", "1")
    assert "into itself" in run(runner, people_index, "merge", "Zed", "zed", code=1).output


def test_any_correction_is_undone_from_the_command_line(runner, people_index):
    run(runner, people_index, "name", "Ann", "1", "2", "3")
    run(runner, people_index, "reject", "Ann", "3")
    listed = run(runner, people_index, "corrections")
    assert listed.output.splitlines()[0].split("  ")[2] == "reject" and "(undoable)" in listed.output
    rev = listed.output.splitlines()[0].split()[0]
    undone = run(runner, people_index, "undo", rev, "--json")
    assert last_json(undone)["face_ids"] == [3]
    again = run(runner, people_index, "undo", rev, code=1)
    assert "already undone" in again.output
