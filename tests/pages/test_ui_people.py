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
    assert post(client, "/people/cluster", method="kmeans", k="4").status_code == 302
    return client.get("/people").get_data(as_text=True)


def test_clusters_are_rows_with_a_name_field(people_index):
    client = client_of(people_index)
    html = client.get("/people").get_data(as_text=True)
    assert "No clustering has run yet" in html and '<button type="submit">Cluster faces</button>' in html
    html = clustered(client)
    assert html.count('<button type="submit">Save</button>') == 4 and html.count(">Name</label>") == 4
    assert "Strangers · 1 face<" in html and len(re.findall(r"data-face-id=", html)) == 23
    response = post(client, "/people/clusters/0/name", name="Anna")
    assert response.status_code == 302 and response.headers["Location"].endswith("#cluster-0")
    html = client.get("/people").get_data(as_text=True)
    person_id = re.search(r'data-person-id="(\d+)" href="/people/\d+">Anna<', html).group(1)
    assert html.count('<button type="submit">Save</button>') == 3  # the named cluster has no form any more
    assert '<option value="Anna">' in html  # existing names are offered
    assert client.get(f"/people/{person_id}").status_code == 200
    assert "The k-means cost" in html and client.get("/people/cost.png").mimetype == "image/png"


def test_a_persons_faces_and_the_corrections(people_index):
    client = client_of(people_index)
    clustered(client)
    post(client, "/people/clusters/0/name", name="Big")
    post(client, "/people/clusters/1/name", name="Second")
    people_html = client.get("/people").get_data(as_text=True)
    big = int(re.search(r'data-person-id="(\d+)" href="/people/\d+">Big<', people_html).group(1))
    second = int(re.search(r'data-person-id="(\d+)" href="/people/\d+">Second<', people_html).group(1))
    page = client.get(f"/people/{big}").get_data(as_text=True)
    faces = [int(f) for f in re.findall(r'name="face_ids" value="(\d+)"', page)]
    assert len(faces) == 7 and "7 faces, newest first" in page
    assert all(f'<label class="pick"><input type="checkbox" name="face_ids" value="{f}"> '
               f'Select face {f}</label>' in page for f in faces)
    # Not this person.
    assert post(client, f"/people/{big}/faces", action="reject", face_ids=[faces[0]]).status_code == 302
    assert "6 faces, newest first" in client.get(f"/people/{big}").get_data(as_text=True)
    # Moved to a new person, then to an existing one.
    post(client, f"/people/{big}/faces", action="move", new_name="Third", face_ids=[faces[1]])
    assert "5 faces" in client.get(f"/people/{big}").get_data(as_text=True)
    post(client, f"/people/{big}/faces", action="move", target=str(second), face_ids=[faces[2]])
    assert "7 faces" in client.get(f"/people/{second}").get_data(as_text=True)
    # Merge and undo.
    post(client, f"/people/{big}/merge", other=str(second))
    merged = client.get(f"/people/{big}").get_data(as_text=True)
    assert "11 faces" in merged and "Undo merge" in merged
    assert client.get(f"/people/{second}").status_code == 404
    post(client, f"/people/{big}/undo-merge")
    assert "4 faces" in client.get(f"/people/{big}").get_data(as_text=True)
    assert "7 faces" in client.get(f"/people/{second}").get_data(as_text=True)
    # Erase needs its confirmation.
    refused = post(client, f"/people/{big}/faces", action="erase", face_ids=[faces[3]])
    assert refused.status_code == 422 and "erased for good" in refused.get_data(as_text=True)
    assert post(client, f"/people/{big}/faces", action="erase", confirm_erase="yes",
                face_ids=[faces[3]]).status_code == 302
    assert client.get(f"/faces/{faces[3]}/thumbnail.jpg").status_code == 404
    # Nothing selected, or nothing to do.
    assert post(client, f"/people/{big}/faces", action="reject").status_code == 422
    assert post(client, f"/people/{big}/faces", action="dance", face_ids=[faces[4]]).status_code == 422


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
    refused = post(reader, "/people/clusters/0/name", name="Sneaky")
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
