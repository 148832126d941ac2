"""``GET /api/v1/faces/<id>/explanation`` agrees with the decisions taken:
the face's source and person, the recognition rule's branch, the last
grouping's stranger flags; over the synthetic people index (anna 7, ben 6,
carl 5, dora 4 faces and a stranger) and, in ``test_real_faces_agree``,
over the real photos of tests/data with the real model."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from config.settings import load_settings
from indexer.people.annotations import AnnotationsDB
from indexer.people.recognition import suggest
from tests.helpers import assert_error, client_of, faces_of, published_store


@pytest.fixture
def client(people_index):
    return client_of(people_index)


def explain(client, face_id: int) -> dict:
    response = client.get(f"/api/v1/faces/{face_id}/explanation")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def cluster(client, **body) -> dict:
    response = client.post("/api/v1/clusters", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_before_anything_is_named_or_grouped(client):
    anna = faces_of(client, "anna")
    body = explain(client, anna[0])
    assert (body["face_id"], body["person"], body["source"], body["stranger"]) == (anna[0], None, None, False)
    assert body["rule"] == "not_grouped" and body["margin"] is None and body["recognition"] is None
    # Nobody is named: the evidence is the nearest indexed faces, nearest first, anna's own.
    distances = [e["distance"] for e in body["evidence"]]
    assert distances == sorted(distances) and {e["face_id"] for e in body["evidence"]} <= set(anna[1:])
    assert any("no one is named" in line for line in body["because"])
    assert_error(client.get("/api/v1/faces/99999/explanation"), 404, "face_not_found")


def test_confirmed_cluster_and_stranger(client):
    run = cluster(client)
    stranger = run["strangers"][0]["face_id"]
    group = next(c for c in run["clusters"] if {m["face_id"] for m in c["members"]} == set(faces_of(client, "anna")))
    body = explain(client, stranger)
    assert body["stranger"] is True and body["rule"] == "stranger" and body["person"] is None
    assert body["group"]["group"] is None
    # The stated reason is the flag's: farther than the stranger distance, or no face near.
    place = body["group"]
    assert (place["centre_distance"] > place["stranger_distance"]
            or place["nearest_face_distance"] > place["neighbour_distance"])
    assert "stranger" in body["because"][0]
    member = group["members"][0]["face_id"]
    body = explain(client, member)
    assert body["rule"] == "unnamed_group" and body["group"]["group"] == group["id"] and not body["stranger"]
    assert body["group"]["centre_distance"] == pytest.approx(group["members"][0]["distance"], abs=1e-4)

    assert client.put(f"/api/v1/clusters/{group['id']}", json={"name": "Anna"}).status_code == 200
    body = explain(client, member)
    assert (body["person"], body["source"], body["rule"]) == ("Anna", "confirmed", "confirmed")
    # Anna's other confirmed faces are the evidence, the face itself never.
    assert member not in {e["face_id"] for e in body["evidence"]}
    assert {e["person"] for e in body["evidence"]} == {"Anna"} and body["runner_up"] is None
    assert body["nearest"]["person"] == "Anna"
    assert body["evidence"][0]["distance"] == pytest.approx(body["nearest"]["distance"], abs=1e-4)


def test_suggested_faces_give_the_rule_branch_that_suggested_them(client, people_index):
    anna, ben = faces_of(client, "anna"), faces_of(client, "ben")
    for name, faces in (("Anna", anna[:3]), ("Ben", ben[:3])):
        assert client.post("/api/v1/people", json={"name": name, "face_ids": faces}).status_code == 201
    assert client.post("/api/v1/people/recognise", json={}).status_code == 200
    for face_id in anna[3:]:
        body = explain(client, face_id)
        assert (body["person"], body["source"]) == ("Anna", "suggested")
        assert body["rule"] in ("recognised_close", "recognised_support") and body["current"] is True
        assert body["rule"] == "recognised_" + body["recognition"]["branch"]
        assert body["runner_up"]["person"] == "Ben"
        assert body["margin"] == pytest.approx(body["runner_up"]["distance"] - body["nearest"]["distance"], abs=1e-4)
        # The evidence: Anna's nearest confirmed faces, and Ben's nearest, nearest first.
        people = [e["person"] for e in body["evidence"]]
        assert people.count("Ben") == 1 and people.count("Anna") == 3
        assert [e["distance"] for e in body["evidence"]] == sorted(e["distance"] for e in body["evidence"])
    # A face nobody is named for: the rule's failing condition is given.
    carl = faces_of(client, "carl")[0]
    body = explain(client, carl)
    assert body["person"] is None and body["recognition"]["branch"] is None
    assert body["recognition"]["failed"] == "max_distance" and body["recognition"]["d1"] > 0.5
    assert any("farther than 0.50" in line for line in body["because"])
    # Rejected: the suggestion goes, and the explanation says who it is not.
    person = client.get("/api/v1/people").get_json()["people"]
    anna_id = next(p["id"] for p in person if p["name"] == "Anna")
    assert client.post(f"/api/v1/people/{anna_id}/rejections", json={"face_ids": [anna[4]]}).status_code == 200
    body = explain(client, anna[4])
    assert body["person"] is None and any("not Anna" in line for line in body["because"])


def test_a_suggestion_the_confirmed_faces_no_longer_support(client):
    anna = faces_of(client, "anna")
    assert client.post("/api/v1/people", json={"name": "Anna", "face_ids": anna[:2]}).status_code == 201
    assert client.post("/api/v1/people/recognise", json={}).status_code == 200
    assert explain(client, anna[5])["source"] == "suggested"
    # Anna's confirmed faces go to someone else: today's rule no longer names Anna.
    assert client.post("/api/v1/people", json={"name": "Other", "face_ids": anna[:2]}).status_code == 201
    body = explain(client, anna[5])
    assert (body["person"], body["source"], body["current"], body["rule"]) == ("Anna", "suggested", False, "recognised")
    assert any("would suggest Other" in line for line in body["because"])


def agrees(data_dir, face_ids) -> Counter:
    """Every explanation agrees with the decisions on record; the rules met, counted."""
    settings = load_settings(data_dir=data_dir)
    client = client_of(data_dir)
    db = AnnotationsDB.open(data_dir)
    store = published_store(data_dir)
    try:
        people = db.attributions(face_ids)
        run = db.last_run()
        flags = dict(zip(run.face_ids.tolist(), run.clusters.tolist())) if run else {}
        snapshot = db.recognition_input()
        confirmed = np.array(snapshot.confirmed, dtype=np.int64)
        rules: Counter = Counter()
        for face_id in face_ids:
            body = explain(client, face_id)
            rules[body["rule"]] += 1
            who = people.get(face_id)
            assert body["person_id"] == (who.person_id if who else None), face_id
            assert body["source"] == (who.source if who else None)
            assert body["stranger"] == (who is None and flags.get(face_id) == -1)
            if who is None or who.source != "suggested":
                continue
            # The rule, applied as recognition applies it, gives the same person and branch.
            others = confirmed[confirmed[:, 0] != face_id]
            found = suggest(store.vectors_of(np.array([face_id])), store.vectors_of(others[:, 0]), others[:, 1],
                            settings.recognition, snapshot.rejections, np.array([face_id]))
            assert int(found.person[0]) == who.person_id and body["current"]
            assert body["recognition"]["branch"] in ("close", "support")
        return rules
    finally:
        db.close()
        store.close()


def test_synthetic_faces_agree(client, people_index):
    run = cluster(client)
    anna = faces_of(client, "anna")
    group = next(c["id"] for c in run["clusters"] if anna[0] in {m["face_id"] for m in c["members"]})
    assert client.put(f"/api/v1/clusters/{group}", json={"name": "Anna"}).status_code == 200
    ben = faces_of(client, "ben")
    assert client.post("/api/v1/people", json={"name": "Ben", "face_ids": ben[:2]}).status_code == 201
    assert client.post("/api/v1/people/recognise", json={}).status_code == 200
    rules = agrees(people_index, [f for name in ("anna", "ben", "carl", "dora", "stranger")
                                  for f in faces_of(client, name)])
    assert rules["confirmed"] == 7 + 2 and rules["recognised_close"] == 4 and rules["stranger"] == 1, rules


def test_real_faces_agree(real_index, tmp_path):
    """tests/data's photos with the real model: a grouping, two people
    named from it, recognition; every face's explanation agrees."""
    import shutil

    data_dir = tmp_path / "index"
    shutil.copytree(real_index, data_dir)
    client = client_of(data_dir)
    run = cluster(client)
    named = 0
    for group in run["clusters"][:2]:
        faces = [m["face_id"] for m in group["members"]]
        assert client.post("/api/v1/people", json={"name": f"P{group['id']}", "face_ids": faces[:1]}).status_code == 201
        named += 1
    assert named and client.post("/api/v1/people/recognise", json={}).status_code == 200
    store = published_store(data_dir)
    ids = store.face_ids().tolist()
    store.close()
    rules = agrees(data_dir, ids)
    assert rules["confirmed"] == 2 and sum(rules.values()) == len(ids), rules


def test_lookalikes_are_other_people_nearest_first(client):
    ids = {}
    for name in ("anna", "ben", "carl", "dora"):
        response = client.post("/api/v1/people", json={"name": name.title(), "face_ids": faces_of(client, name)})
        ids[name] = response.get_json()["id"]
    store_faces = {name: faces_of(client, name) for name in ids}
    body = client.get(f"/api/v1/people/{ids['anna']}/lookalikes").get_json()
    found = body["people"]
    assert [p["name"] for p in found] and "Anna" not in {p["name"] for p in found}
    assert {p["person_id"] for p in found} == {ids["ben"], ids["carl"], ids["dora"]}
    assert [p["distance"] for p in found] == sorted(p["distance"] for p in found)
    for p in found:
        name = p["name"].lower()
        assert p["face_id"] in store_faces["anna"] and p["other_face_id"] in store_faces[name]
        assert p["pair_distance"] <= p["distance"]
    # The distance is the mean of the 3 nearest pairs, checked by brute force.
    from tests.helpers import person_faces
    anna = np.array(person_faces("anna", 7))
    for p in found:
        theirs = np.array(person_faces(p["name"].lower(), len(store_faces[p["name"].lower()])))
        nearest = np.sort(np.linalg.norm(theirs[:, None] - anna[None], axis=2).min(axis=1))[:3]
        assert p["distance"] == pytest.approx(nearest.mean(), abs=1e-3)
    assert len(client.get(f"/api/v1/people/{ids['anna']}/lookalikes?limit=1").get_json()["people"]) == 1
    assert_error(client.get(f"/api/v1/people/{ids['anna']}/lookalikes?limit=0"), 422)
    assert_error(client.get("/api/v1/people/9999/lookalikes"), 404)


def test_tradeoff_from_the_named_people(client):
    body = client.get("/api/v1/tradeoff").get_json()
    assert body["source"] == "lfw" and body["people"] == 0 and body["faces"] == 23
    for name in ("anna", "ben"):
        client.post("/api/v1/people", json={"name": name.title(), "face_ids": faces_of(client, name)})
    body = client.get("/api/v1/tradeoff").get_json()
    # 21 + 15 same-person pairs: enough for an estimate of this index's own.
    assert (body["source"], body["people"], body["same_pairs"]) == ("named", 2, 36)
    points = body["points"]
    assert points[0]["max_distance"] == 0.3 and points[-1]["max_distance"] == 0.8
    assert [p["recall"] for p in points] == sorted(p["recall"] for p in points)
    # These made-up people are far apart: everything within 0.5 is the person, and all of them is found.
    at = {p["max_distance"]: p for p in points}
    assert at[0.5]["precision"] == 1.0 and at[0.5]["recall"] == 1.0


def test_recognition_trade_on_the_named_people(client):
    assert client.get("/api/v1/tradeoff").get_json()["recognition"] is None  # nobody named
    for name in ("anna", "ben", "carl", "dora"):
        client.post("/api/v1/people", json={"name": name.title(), "face_ids": faces_of(client, name)})
    client.post("/api/v1/people", json={"name": "Stranger", "face_ids": faces_of(client, "stranger")})
    points = client.get("/api/v1/tradeoff").get_json()["recognition"]
    assert [p["factor"] for p in points] == [0.8, 0.9, 1.0, 1.1, 1.2]
    as_set = points[2]
    assert as_set["max_distance"] == 0.5
    # Well-separated made-up people: every held-out face is named rightly, and the one-face person
    # (a stranger, held out) is named nobody.
    assert (as_set["found"], as_set["right"], as_set["strangers_named"]) == (1.0, 1.0, 0.0)
    page = client.get("/review").get_data(as_text=True)
    assert "How sure recognition is, on your 5 named people" in page
