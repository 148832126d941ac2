""""Are these the same person?" through the API and the page: pairs of
people and unnamed groups nearest first, "same" joining them, "different"
remembered (never asked again, and neither clustering nor recognition puts
the two together), each answer undoable. Over the synthetic index of
four people (``people_index``), clustered into more groups than people."""

from __future__ import annotations

import re

from indexer.people.annotations import AnnotationsDB
from tests.helpers import client_of, csrf_token_of


def split_people(client) -> dict:
    """Cluster the four people (and the stranger) with k = 8: 6 groups, two
    people split in two."""
    assert client.post("/api/v1/clusters", json={"k": 8}).get_json()["k"] == 6
    return client.get("/api/v1/review/pairs").get_json()


def test_split_people_are_asked_about_nearest_first(people_index):
    client = client_of(people_index)
    pairs = split_people(client)["pairs"]
    assert len(pairs) == 2 and pairs[0]["distance"] <= pairs[1]["distance"] < 0.6
    for pair in pairs:
        assert pair["a"]["cluster_id"] is not None and pair["a"]["person_id"] is None
        assert pair["a"]["faces"] >= len(pair["a"]["face_ids"]) >= 1
    assert client.get("/api/v1/review/pairs?limit=1").get_json()["pairs"] == pairs[:1]
    bad = client.post("/api/v1/review/pairs", json={"a": {"person_id": 1, "cluster_id": 2}, "b": {"cluster_id": 1},
                                                    "same": True})
    assert bad.status_code == 422


def test_same_person_joins_and_different_is_remembered(people_index):
    client = client_of(people_index)
    first, second = split_people(client)["pairs"]
    joined = client.post("/api/v1/review/pairs", json={"a": first["a"], "b": first["b"], "same": True})
    assert joined.status_code == 200, joined.get_json()
    body = joined.get_json()
    assert body["same"] and len(body["face_ids"]) == first["b"]["faces"]
    run = client.get("/api/v1/clusters").get_json()
    sizes = {c["id"]: c["size"] for c in run["clusters"]}
    assert sizes[first["a"]["cluster_id"]] == first["a"]["faces"] + first["b"]["faces"]
    left = client.get("/api/v1/review/pairs").get_json()["pairs"]
    assert [(p["a"]["cluster_id"], p["b"]["cluster_id"]) for p in left] == [
        (second["a"]["cluster_id"], second["b"]["cluster_id"])]
    different = client.post("/api/v1/review/pairs", json={"a": second["a"], "b": second["b"], "same": False})
    assert different.status_code == 200 and not different.get_json()["same"]
    assert client.get("/api/v1/review/pairs").get_json()["pairs"] == []  # never asked again
    # A new clustering never puts the two sides together again.
    a_faces = set(second["a"]["face_ids"])
    b_faces = set(second["b"]["face_ids"])
    for k in (3, 4, 5):
        assert client.post("/api/v1/clusters", json={"k": k}).status_code == 200
        for cluster in client.get("/api/v1/clusters").get_json()["clusters"]:
            members = {m["face_id"] for m in cluster["members"]}
            assert not (members & a_faces and members & b_faces), (k, cluster["id"])


def test_a_different_answer_keeps_recognition_off_the_other_side(people_index, fake_model):
    client = client_of(people_index, model=fake_model)
    assert client.post("/api/v1/clusters", json={"k": 4}).status_code == 200
    groups = client.get("/api/v1/clusters").get_json()["clusters"]
    a, b = groups[0], groups[1]
    person = client.post("/api/v1/people", json={"name": "Anna", "face_ids": [m["face_id"] for m in a["members"]]})
    person_id = person.get_json()["id"]
    answer = client.post("/api/v1/review/pairs", json={"a": {"person_id": person_id},
                                                       "b": {"cluster_id": b["id"]}, "same": False})
    assert answer.status_code == 200
    annotations = AnnotationsDB.open(people_index)
    try:
        vetoed = annotations.recognition_input().rejections
    finally:
        annotations.close()
    assert {(m["face_id"], person_id) for m in b["members"]} <= vetoed


def test_different_people_undone_are_asked_about_again(people_index):
    client = client_of(people_index)
    first, _ = split_people(client)["pairs"]
    answer = client.post("/api/v1/review/pairs", json={"a": first["a"], "b": first["b"], "same": False}).get_json()
    assert len(client.get("/api/v1/review/pairs").get_json()["pairs"]) == 1
    annotations = AnnotationsDB.open(people_index)
    try:
        undone = annotations.undo(answer["correction"])
        assert len(client.get("/api/v1/review/pairs").get_json()["pairs"]) == 2
        annotations.undo(undone.rev)
        assert len(client.get("/api/v1/review/pairs").get_json()["pairs"]) == 1
    finally:
        annotations.close()


def test_the_review_page_asks_and_answers_in_place(people_index):
    client = client_of(people_index)
    html = client.get("/review").get_data(as_text=True)
    assert "No question left" in html
    split_people(client)
    html = client.get("/review").get_data(as_text=True)
    assert html.count("data-pair") == 2 and html.count(">Same person</button>") == 2
    assert html.count(">Different people</button>") == 2 and "data-face-id=" in html
    token = csrf_token_of(html)
    fields = dict(re.findall(r'<input type="hidden" name="([ab]_(?:person|cluster))" value="(\d+)">', html)[:2])
    response = client.post("/review", data={"csrf_token": token, "action": "different", **fields})
    assert response.status_code == 303
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Remembered: different people" in html and html.count("data-pair") == 1
    assert '<button type="submit" name="action" value="undo">Undo</button>' in html
    stale = client.post("/review", data={"csrf_token": token, "action": "same"})
    assert stale.status_code == 422 and "out of date" in stale.get_data(as_text=True)


def test_the_doubtful_suggestions_are_asked_about(people_index):
    client = client_of(people_index)
    anna = client.post("/api/v1/people", json={"name": "Anna", "face_ids": [1, 2, 3]}).get_json()["id"]
    annotations = AnnotationsDB.open(people_index)
    try:
        annotations.save_suggestions([4, 5], {4: (anna, 0.31), 5: (anna, 0.47)}, max_rev=0, watermark=0)
    finally:
        annotations.close()
    html = client.get("/review").get_data(as_text=True)
    assert html.count("data-question") == 2 and html.index('value="5"') < html.index('value="4"')  # least sure first
    token = csrf_token_of(html)
    response = client.post("/review", data={"csrf_token": token, "action": "is_not", "face_id": "5",
                                            "person_id": str(anna)})
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Marked 1 face as not <a" in html and html.count("data-question") == 1
    response = client.post("/review", data={"csrf_token": token, "action": "is", "face_id": "4",
                                            "person_id": str(anna)})
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Confirmed 1 face as <a" in html and "data-question" not in html
