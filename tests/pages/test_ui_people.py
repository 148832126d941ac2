"""The people pages through Flask's test client: the clusters as rows with
a Name field and Save, a new clustering, a person's faces with the
corrections (not this person, move, merge and undo, erase with its
confirmation), and what a read key may not do. Over the synthetic index
of four people (``people_index``)."""

from __future__ import annotations

import re
from datetime import UTC

from tests.helpers import client_of, csrf_token_of, person_faces, store_at


def post(client, url: str, **form):
    token = csrf_token_of(client.get("/people").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **form})


def clustered(client) -> str:
    response = post(client, "/people", action="cluster", method="kmeans", k="4")
    assert response.status_code == 303 and "done=" in response.headers["Location"]
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(r'role="status">\s*<p>Grouped 23 faces again: 4 groups.</p>', html)
    return html


def followed(client, response) -> str:
    """The page a successful action goes back to (303), as it shows."""
    assert response.status_code == 303, response.get_data(as_text=True)
    return client.get(response.headers["Location"]).get_data(as_text=True)


def status_of(html: str) -> str:
    """The text of the page's role="status" notice ("" without one)."""
    found = re.search(r'role="status">\s*<p>(.*?)</p>', html, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)).strip() if found else ""


def alert_of(html: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</div>', html, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)).strip() if found else ""


def undo(client, html: str, path: str):
    """Press the notice's Undo button on the page at ``path``."""
    rev = re.search(r'name="rev" value="(\d+)">\s*<button type="submit" name="action" value="undo">Undo</button>',
                    html).group(1)
    return post(client, path, action="undo", rev=rev)


def test_clusters_are_rows_with_a_name_field(people_index):
    client = client_of(people_index)
    html = client.get("/people").get_data(as_text=True)
    assert "The faces have not been grouped yet" in html and '<button type="submit">Cluster faces</button>' in html
    html = clustered(client)
    assert html.count('<button type="submit">Save</button>') == 4 and html.count(">Name</label>") == 4
    assert "Strangers · 1 face:" in html and len(re.findall(r"data-face-id=", html)) == 23
    assert all(f'href="/clusters/{c}"' in html for c in range(4))  # each row opens its group
    response = post(client, "/people", action="name", cluster="0", name="Anna", page="1")
    assert "/people?page=1&done=" in response.headers["Location"]  # back to the page it came from
    html = followed(client, response)
    person_id = re.search(r'data-person-id="(\d+)" href="/people/\d+">Anna<', html).group(1)
    assert status_of(html) == "Named 7 faces Anna."
    assert html.count('<button type="submit">Save</button>') == 3  # the named cluster has no form any more
    assert '<option value="Anna">' in html  # existing names are offered
    assert client.get(f"/people/{person_id}").status_code == 200
    assert "The k-means cost" in html and client.get("/people/cost.png").mimetype == "image/png"
    # Undo, on the same page: Anna is gone, the group can be named again; and the undo undone.
    html = followed(client, undo(client, html, "/people"))
    assert status_of(html) == "Undone: named 7 faces Anna." and html.count('<button type="submit">Save</button>') == 4
    html = followed(client, undo(client, html, "/people"))
    assert html.count('<button type="submit">Save</button>') == 3
    # A name left empty: said on the same page, nothing changed.
    refused = post(client, "/people", action="name", cluster="1", name=" ")
    assert refused.status_code == 422 and "Type the name" in alert_of(refused.get_data(as_text=True))


def test_a_clustering_is_undone_back_to_the_one_before(people_index):
    client = client_of(people_index)
    clustered(client)
    post(client, "/people", action="name", cluster="0", name="Anna")
    html = followed(client, post(client, "/people", action="cluster", method="kmeans", k="8"))
    assert "Clustered just now: 6 groups" in html
    html = followed(client, undo(client, html, "/people"))  # back to the 4 groups, Anna's among them
    assert status_of(html).startswith("Undone: grouped 23 faces again") and "Clustered just now: 4 groups" in html
    assert re.search(r'data-person-id="\d+" href="/people/\d+">Anna</a> · <a class="group"', html)
    html = followed(client, undo(client, html, "/people"))  # and redone
    assert "Clustered just now: 6 groups" in html


def test_a_group_is_reviewed_before_it_is_named(people_index):
    client = client_of(people_index)
    clustered(client)
    html = client.get("/clusters/0").get_data(as_text=True)
    faces = [int(f) for f in re.findall(r'name="face_ids" value="(\d+)"', html)]
    assert len(faces) == 7 and "Remove from this group" in html and ">Name</label>" in html
    assert len(re.findall(r"<li class=\"tile\" data-face-id=", html)) == 7
    nothing = post(client, "/clusters/0", action="remove")
    assert nothing.status_code == 422 and "Select one or more faces" in alert_of(nothing.get_data(as_text=True))
    html = followed(client, post(client, "/clusters/0", action="remove", face_ids=faces[-2:]))
    assert status_of(html) == "Took 2 faces out of the group: they are strangers now."
    assert len(re.findall(r'name="face_ids" value=', html)) == 5
    named = post(client, "/clusters/0", action="name", name="Anna")
    html = followed(client, named)
    assert status_of(html) == "Named 5 faces Anna." and re.search(r"<h1>Group [123]</h1>", html)
    # Each naming opens the next group to name, each once, then /people.
    seen, location = {0}, named.headers["Location"]
    while location.startswith("/clusters/"):
        group = int(re.match(r"/clusters/(\d+)\?done=", location).group(1))
        assert group not in seen
        seen.add(group)
        location = post(client, f"/clusters/{group}", action="name", name=f"Person {group}").headers["Location"]
    assert location.startswith("/people?done=") and seen == {0, 1, 2, 3}
    people_html = client.get("/people").get_data(as_text=True)
    assert "Strangers · 3 faces:" in people_html
    assert client.get("/clusters/99").status_code == 404
    # A stranger named where it is shown.
    stranger = re.search(r'<label for="stranger-(\d+)">This is</label>', people_html).group(1)
    response = post(client, "/people", action="name_face", face_id=stranger, name="Zoe")
    assert response.headers["Location"].startswith("/people?done=") and response.headers["Location"].endswith(
        "#strangers")
    html = followed(client, response)
    assert status_of(html) == "Made 1 face the new person Zoe." and "Strangers · 2 faces:" in html
    missing = post(client, "/people", action="name_face", face_id="99999", name="Zoe")
    assert missing.status_code == 404 and "no longer in the index" in alert_of(missing.get_data(as_text=True))


def test_a_persons_faces_and_the_corrections(people_index):
    client = client_of(people_index)
    clustered(client)
    post(client, "/people", action="name", cluster="0", name="Big")
    post(client, "/people", action="name", cluster="1", name="Second")
    people_html = client.get("/people").get_data(as_text=True)
    big = int(re.search(r'data-person-id="(\d+)" href="/people/\d+">Big<', people_html).group(1))
    second = int(re.search(r'data-person-id="(\d+)" href="/people/\d+">Second<', people_html).group(1))
    path = f"/people/{big}"
    page = client.get(path).get_data(as_text=True)
    faces = [int(f) for f in re.findall(r'name="face_ids" value="(\d+)"', page)]
    assert len(faces) == 7 and "7 faces, least like them first" in page
    assert "Select face" not in page and "/photos/" in page  # tiles name their file, not a face id
    assert "7 faces, newest first" in client.get(path + "?order=newest").get_data(as_text=True)
    # Not this person, and its undo.
    rejected = html = followed(client, post(client, path, action="reject", face_ids=[faces[0]]))
    assert "6 faces, least like" in html and status_of(html) == "Marked 1 face as not Big."
    html = followed(client, undo(client, html, path))
    assert "7 faces, least like" in html and status_of(html) == "Undone: marked 1 face as not Big."
    post(client, path, action="reject", face_ids=[faces[0]])
    # Moved to a new person, then to an existing one.
    html = followed(client, post(client, path, action="move", new_name="Third", face_ids=[faces[1]]))
    assert "5 faces" in html and status_of(html) == "Made 1 face the new person Third (taken from Big)."
    html = followed(client, post(client, path, action="move", target=str(second), face_ids=[faces[2]]))
    assert status_of(html) == "Moved 1 face to Second (taken from Big)."
    assert "7 faces" in client.get(f"/people/{second}").get_data(as_text=True)
    # The face to show them with: one, undoable.
    two = post(client, path, action="cover", face_ids=faces[4:6])
    assert two.status_code == 422 and "Select one face only" in alert_of(two.get_data(as_text=True))
    html = followed(client, post(client, path, action="cover", face_ids=[faces[5]]))
    assert status_of(html) == "Chose the face that shows Big."
    home = client.get("/people").get_data(as_text=True)
    assert f'data-face-id="{faces[5]}"><img' in home  # their card on /people
    # Merge: asked once, saying who stays; then undone.
    asked = post(client, path, action="merge", other=str(second))
    assert asked.status_code == 200 and "Merge Second into Big" in asked.get_data(as_text=True)
    assert client.get(f"/people/{second}").status_code == 200  # nothing merged yet
    merged = followed(client, post(client, path, action="merge", other=str(second), confirm="yes"))
    assert "11 faces" in merged and "Undo merge" in merged and status_of(merged) == "Merged Second into Big."
    assert client.get(f"/people/{second}").status_code == 404
    html = followed(client, undo(client, merged, path))
    assert "4 faces" in html and "7 faces" in client.get(f"/people/{second}").get_data(as_text=True)
    # Erase needs its confirmation; the selection is kept when it is missing.
    refused = post(client, path, action="erase", face_ids=[faces[3]])
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "erased for good" in alert_of(text)
    assert f'value="{faces[3]}" checked' in text
    html = followed(client, post(client, path, action="erase", confirm_erase="yes", face_ids=[faces[3]]))
    assert status_of(html) == "Erased 1 face for good." and "Undo" not in status_of(html)
    assert client.get(f"/faces/{faces[3]}/thumbnail.jpg").status_code == 404
    # Nothing selected, or nothing to do: said on the same page.
    nothing = post(client, path, action="reject")
    assert nothing.status_code == 422 and "Select one or more faces" in alert_of(nothing.get_data(as_text=True))
    assert post(client, path, action="dance", face_ids=[faces[4]]).status_code == 422
    # A stale Undo (from another tab) says what happened meanwhile, on the same page.
    again = undo(client, rejected, path)
    assert again.status_code == 404 and "is already undone" in alert_of(again.get_data(as_text=True))


def test_a_face_is_named_on_its_photo(people_index):
    client = client_of(people_index)
    html = client.get("/photos/1").get_data(as_text=True)
    assert ">Name</label>" in html and '<button type="submit" name="action" value="name">Save</button>' in html
    face_id = re.search(r'name="face_id" value="(\d+)"', html).group(1)
    html = followed(client, post(client, "/photos/1", action="name", face_id=face_id, name="Zoe"))
    assert status_of(html) == "Made 1 face the new person Zoe." and "Not Zoe" in html
    html = followed(client, post(client, "/photos/1", action="not", face_id=face_id))
    assert status_of(html) == "Marked 1 face as not Zoe."
    html = followed(client, undo(client, html, "/photos/1"))
    assert "Not Zoe" in html
    missing = post(client, "/photos/1", action="name", face_id="99999", name="Zoe")
    assert missing.status_code == 404 and "no longer in this photo" in alert_of(missing.get_data(as_text=True))


def test_a_read_key_sees_no_controls_and_may_not_change(people_index):
    admin = client_of(people_index, api_keys=["admin-key-0000001"], read_keys=["read-key-00000001"])
    token = csrf_token_of(admin.get("/login").get_data(as_text=True))
    admin.post("/login", data={"api_key": "admin-key-0000001", "csrf_token": token})
    clustered(admin)
    reader = client_of(people_index, api_keys=["admin-key-0000001"], read_keys=["read-key-00000001"])
    token = csrf_token_of(reader.get("/login").get_data(as_text=True))
    reader.post("/login", data={"api_key": "read-key-00000001", "csrf_token": token})
    html = reader.get("/people").get_data(as_text=True)
    assert "Cluster faces" not in html and ">Name</label>" not in html and "data-face-id" in html
    refused = post(reader, "/people", action="name", cluster="0", name="Sneaky")
    assert refused.status_code == 403 and "administrator key" in refused.get_data(as_text=True)
    assert "Sneaky" not in admin.get("/people").get_data(as_text=True)


def test_a_persons_sightings_over_time(data_dir):
    from datetime import datetime

    from indexer.store import FileRecord
    from indexer.store.metadata import Box, NewFace

    days = ["2026-05-01", "2026-05-01", "2026-05-03"]
    store = store_at(data_dir)
    for i, (day, vector) in enumerate(zip(days, person_faces("anna", 3))):
        taken = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
        store.put_file(FileRecord(path=f"/cam/{i}.jpg", size=1, mtime_ns=1, content_hash=f"c{i}", width=100,
                                  height=100, detection="{}", model="fake", taken_at=taken),
                       [NewFace(Box(10, 60, 70, 10), vector, b"")])
    store.checkpoint()
    face_ids = store.all_embeddings()[0].tolist()
    store.close()
    client = client_of(data_dir)
    created = client.post("/api/v1/people", json={"name": "Anna", "face_ids": face_ids})
    assert created.status_code == 201, created.get_json()
    html = client.get(f"/people/{created.get_json()['id']}").get_data(as_text=True)
    assert "Faces of Anna over time, by day: 2026-05-01 to 2026-05-03" in html
    assert [t for t in re.findall(r"<title>([^<]+)</title>", html) if t.startswith("2026")] == \
        ["2026-05-01: 2", "2026-05-03: 1"]


def test_a_missed_face_is_drawn_named_and_taken_back_on_its_photo(tmp_path, fake_model):
    from config.settings import load_settings
    from indexer.indexing import index_paths
    from tests.helpers import DATA, photo_id_of

    photos = tmp_path / "photos"
    photos.mkdir()
    photo = photos / "Tony_Blair_0001.jpg"
    photo.write_bytes((DATA / "lfw" / "Tony_Blair" / photo.name).read_bytes())
    data_dir = tmp_path / "index"
    index_paths([photos], load_settings(data_dir=data_dir, indexer={"workers": 1}), progress=False, model=fake_model)
    client = client_of(data_dir, model=fake_model)
    path = f"/photos/{photo_id_of(data_dir, photo.resolve())}"
    html = client.get(path).get_data(as_text=True)
    assert "Add a face the detector missed" in html and ">Who is it? (optional)</label>" in html
    box = {"left": "10", "top": "10", "width": "70", "height": "70"}

    nothing = post(client, path, action="draw", drawn_name="Zoe")
    assert nothing.status_code == 422 and "Draw a box" in alert_of(nothing.get_data(as_text=True))
    outside = post(client, path, action="draw", **{**box, "width": "900"})
    assert outside.status_code == 422 and "inside the photo" in alert_of(outside.get_data(as_text=True))
    assert 'value="900"' in outside.get_data(as_text=True)  # what was typed is kept

    html = followed(client, post(client, path, action="draw", drawn_name="Zoe", **box))
    assert status_of(html) == "Added the face you drew to the index: made 1 face the new person Zoe."
    assert html.count('class="box"') == 2 and "2. " in html and "Not Zoe" in html
    html = followed(client, post(client, path, action="take_back", face_id=re.search(
        r'name="face_id" value="(\d+)">\s*<input type="hidden" name="rev"', html).group(1),
        rev=re.search(r'name="rev" value="(\d+)"', html).group(1)))
    assert status_of(html) == "Took back the face you drew: it is no longer in the index."
    assert html.count('class="box"') == 1 and "Zoe" not in html.split("</h1>", 1)[1].split("Add a face")[0]


def test_the_pages_offer_the_name_the_recognition_rule_finds(people_index):
    """A group most of whose faces are recognised as a named person is
    offered "Name them <name>"; a stranger recognised, "This is <name>";
    never a person the face was said not to be."""
    client = client_of(people_index)
    clustered(client)
    run = client.get("/api/v1/clusters").get_json()
    group = next(c for c in run["clusters"] if all("/anna/" in m["path"] for m in c["members"]))
    anna = [m["face_id"] for m in group["members"]]
    html = client.get(f"/clusters/{group['id']}").get_data(as_text=True)
    assert "Name them" not in html  # nobody is named yet
    removed = post(client, f"/clusters/{group['id']}", action="remove", face_ids=anna[-2:])
    assert removed.status_code == 303
    person = client.post("/api/v1/people", json={"name": "Anna", "face_ids": anna[:2]}).get_json()
    html = client.get(f"/clusters/{group['id']}").get_data(as_text=True)
    assert re.search(r"\d of these 5 faces look like <a[^>]*>Anna</a>", html)
    people_html = client.get("/people").get_data(as_text=True)
    offered = re.findall(r'name="face_id" value="(\d+)">\s*<input type="hidden" name="page" value="1">\s*'
                         r'<input type="hidden" name="name" value="Anna">', people_html)
    assert sorted(map(int, offered)) == sorted(anna[-2:])  # the two strangers who are Anna
    client.post(f"/api/v1/people/{person['id']}/rejections", json={"face_ids": [anna[-1]]})
    people_html = client.get("/people").get_data(as_text=True)
    assert people_html.count(">This is Anna</button>") == 1  # not the one said not to be her
    html = followed(client, post(client, f"/clusters/{group['id']}", action="name", name="Anna"))
    assert status_of(html).startswith("Named 3 faces Anna")
