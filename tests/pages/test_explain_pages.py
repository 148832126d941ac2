"""The evidence pages through Flask's test client: "Why?" for a named, a
suggested and a stranger face; "Compare" of two real faces; "Looks like";
the strangers in likeness rows; and the links to them from the other pages."""

from __future__ import annotations

import html as htmllib
import io
import re

import numpy as np
from PIL import Image

from tests.helpers import client_of, faces_of, store_at


def text_of(html: str) -> str:
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_why_a_face_is_who_it_is(people_index):
    client = client_of(people_index)
    anna, ben = faces_of(client, "anna"), faces_of(client, "ben")
    anna_id = client.post("/api/v1/people", json={"name": "Anna", "face_ids": anna[:3]}).get_json()["id"]
    client.post("/api/v1/people", json={"name": "Ben", "face_ids": ben[:3]})
    client.post("/api/v1/people/recognise", json={})
    response = client.get(f"/faces/{anna[5]}/why")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    words = text_of(page)
    assert "Recognition suggested Anna." in words and "The faces it rests on, nearest first" in words
    # The evidence faces, each with its distance and a Compare link to it.
    evidence = re.findall(r'<li data-evidence>\s*<a class="face" data-face-id="(\d+)"', page)
    assert len(evidence) == 4 and set(map(int, evidence)) <= set(anna[:3]) | set(ben[:3])
    assert f'href="/compare/{anna[5]}/{evidence[0]}"' in page
    assert f'href="/people/{anna_id}/lookalikes"' in page
    carl = faces_of(client, "carl")[0]
    words = text_of(client.get(f"/faces/{carl}/why").get_data(as_text=True))
    assert "Recognition names nobody: the nearest confirmed face" in words and "farther than 0.50" in words
    assert client.get("/faces/99999/why").status_code == 404


def test_the_pages_link_to_why(people_index):
    client = client_of(people_index)
    anna = faces_of(client, "anna")
    person = client.post("/api/v1/people", json={"name": "Anna", "face_ids": anna}).get_json()["id"]
    page = client.get(f"/people/{person}").get_data(as_text=True)
    assert f'href="/faces/{anna[0]}/why"' in page and f'href="/people/{person}/lookalikes"' in page


def test_compare_two_real_faces(client):
    ids: dict[str, int] = {}
    for face_id in range(1, 60):
        body = client.get(f"/api/v1/faces/{face_id}").get_json()
        if "error" not in body:
            ids.setdefault(body["path"].rsplit("/", 1)[-1], face_id)  # a photo's first face
    a, b, far = ids["Colin_Powell_0001.jpg"], ids["Colin_Powell_0002.jpg"], ids["Serena_Williams_0001.jpg"]
    for other in (b, far):
        distance = client.get(f"/api/v1/faces/{a}/compare/{other}").get_json()["distance"]
        page = client.get(f"/compare/{a}/{other}").get_data(as_text=True)
        words = text_of(page)
        verdict = "within 0.50" if distance <= 0.5 else "farther than 0.50"
        assert f"Distance {distance:.3f} : {verdict}" in words, words[:400]
        assert f'src="/compare/{a}/{other}.png"' in page and "Most alike" in words
        assert f'data-face-id="{a}"' in page and f'data-face-id="{other}"' in page
    assert "within 0.50" in text_of(client.get(f"/compare/{a}/{b}").get_data(as_text=True))
    picture = client.get(f"/compare/{a}/{b}.png")
    assert picture.status_code == 200 and picture.mimetype == "image/png"
    assert client.get(f"/compare/{a}/99999").status_code == 404
    # Search by a face offers Compare with each match.
    assert f'href="/compare/{a}/' in client.get(f"/?face_id={a}").get_data(as_text=True)


def test_looks_like(people_index):
    client = client_of(people_index)
    ids = {n: client.post("/api/v1/people", json={"name": n.title(), "face_ids": faces_of(client, n)}).get_json()["id"]
           for n in ("anna", "ben", "carl")}
    page = client.get(f"/people/{ids['anna']}/lookalikes").get_data(as_text=True)
    people = re.findall(r'<li data-lookalike data-person-id="(\d+)"', page)
    assert sorted(map(int, people)) == sorted([ids["ben"], ids["carl"]])
    assert "Compare these two" in page
    dora = client.post("/api/v1/people", json={"name": "Dora", "face_ids": faces_of(client, "dora")[:1]})
    lonely = client.get(f"/people/{dora.get_json()['id']}/lookalikes")
    assert lonely.status_code == 200
    assert client.get("/people/9999/lookalikes").status_code == 404


def test_strangers_in_rows_of_lookalikes(data_dir):
    """Six one-photo strangers: two trios whose faces are ~0.55 apart
    (alike, not one person: the grouping leaves them strangers), the trios
    far apart; the likeness page shows them as two rows of three."""
    store = store_at(data_dir)
    rng = np.random.default_rng(3)
    for trio in range(2):
        centre = rng.normal(0, 0.12, 128).astype(np.float32)
        for i in range(3):
            noise = rng.normal(0, 1, 128).astype(np.float32)
            put_vector(store, f"t{trio}p{i}", centre + 0.39 * noise / np.linalg.norm(noise))
    store.checkpoint()
    store.close()
    client = client_of(data_dir)
    run = client.post("/api/v1/clusters", json={}).get_json()
    assert len(run["strangers"]) == 6
    page = client.get("/lookalikes").get_data(as_text=True)
    rows = re.findall(r'<section class="cluster likeness" data-likeness-row.*?</section>', page, re.S)
    assert len(rows) == 2
    trios = [{client.get(f"/api/v1/faces/{f}").get_json()["path"].split("/")[2][:2]
              for f in re.findall(r'data-face-id="(\d+)"', row)} for row in rows]
    assert sorted(map(sorted, trios)) == [["t0"], ["t1"]]
    assert 'href="/lookalikes"' in client.get("/people").get_data(as_text=True)
    # The contact sheet adds the two rows (and a note) when asked.
    from application.pictures import CELL, GAP, TEXT

    plain = Image.open(io.BytesIO(client.get("/api/v1/clusters/contact-sheet.png").data))
    alike = Image.open(io.BytesIO(client.get("/api/v1/clusters/contact-sheet.png?likeness=true").data))
    assert alike.height - plain.height == 2 * (TEXT + GAP + CELL + 2 * GAP) + TEXT + GAP


def put_vector(store, name: str, vector: np.ndarray) -> None:
    from indexer.model import Box
    from indexer.store import FileRecord, NewFace

    record = FileRecord(path=f"/photos/{name}/0.jpg", size=1, mtime_ns=1, content_hash=name, width=100, height=100,
                        detection="{}", model="fake")
    out = io.BytesIO()
    Image.new("RGB", (40, 48), (90, 120, 150)).save(out, format="JPEG")
    store.put_file(record, [NewFace(Box(10, 60, 70, 10), vector, out.getvalue())])


def test_the_distance_fields_show_the_trade(people_index):
    client = client_of(people_index)
    words = text_of(client.get("/").get_data(as_text=True))
    assert "Within 0.50: about" in words and "measured on LFW" in words
    for name in ("anna", "ben"):
        client.post("/api/v1/people", json={"name": name.title(), "face_ids": faces_of(client, name)})
    page = client.get("/recall").get_data(as_text=True)
    words = text_of(page)
    assert "from your 2 named people" in words and "Within 0.55: about 100% of the person’s faces found" in words
    assert "data-tradeoff=" in page
    assert "Within 0.45:" in text_of(client.get("/?max_distance=0.45").get_data(as_text=True))
