"""People over HTTP: create, assign, reject, merge and undo, a person's faces
by source, errors in the contract's shape, scopes and the audit log, and
corrections while a reindex runs. Over the synthetic index of four people
and a stranger (``people_index``: anna 7, ben 6, carl 5, dora 4 faces)."""

from __future__ import annotations

import pytest

from application.audit import AuditLog
from application.schemas import MAX_CORRECTION_FACES
from indexer.store.generations import IndexLock
from tests.helpers import PEOPLE_SIZES, assert_error, client_of, faces_of, person_faces


@pytest.fixture
def client(people_index):
    return client_of(people_index)




def listing(client, person_id: int, **query) -> dict:
    response = client.get(f"/api/v1/people/{person_id}/faces", query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_create_a_person_from_faces(client):
    anna = faces_of(client, "anna")
    response = client.post("/api/v1/people", json={"name": " Anna ", "face_ids": anna[:3]})
    assert response.status_code == 201, response.get_json()
    person = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/people/{person['id']}")
    assert person["name"] == "Anna" and person["face_count"] == 3 and person["cover_face_id"] == anna[0]
    assert person["counts"] == {"confirmed": 3, "cluster": 0, "suggested": 0} and person["last_merge"] is None
    assert client.get(f"/api/v1/people/{person['id']}").get_json() == person
    body = listing(client, person["id"])
    assert body["total"] == 3 and {f["face_id"] for f in body["faces"]} == set(anna[:3])
    assert {f["source"] for f in body["faces"]} == {"confirmed"}
    # Each confirmed face's distance is to the person's nearest other confirmed face.
    assert all(0 < f["distance"] < 0.6 for f in body["faces"])
    face = client.get(f"/api/v1/faces/{anna[0]}").get_json()
    assert (face["person"], face["person_id"], face["person_source"]) == ("Anna", person["id"], "confirmed")
    assert face["photo_id"] >= 1
    assert_error(client.post("/api/v1/people", json={"name": "anna", "face_ids": [anna[4]]}), 409, "name_taken")


@pytest.mark.parametrize("body, status, code", [
    ({"name": "X", "face_ids": []}, 422, "invalid_request"),
    ({"name": "X"}, 422, "invalid_request"),
    ({"name": "", "face_ids": [1]}, 422, "invalid_request"),
    ({"name": "X", "face_ids": ["1"]}, 422, "invalid_request"),
    ({"name": "X", "face_ids": [-1]}, 422, "invalid_request"),
    ({"name": "X", "face_ids": list(range(1, MAX_CORRECTION_FACES + 2))}, 422, "invalid_request"),
    ({"name": "X", "face_ids": [1, 9999, 8888]}, 404, "face_not_found"),
])
def test_bad_person_requests(client, body, status, code):
    error = assert_error(client.post("/api/v1/people", json=body), status, code)
    if code == "face_not_found":
        assert "8888, 9999" in error["message"] and "1," not in error["message"]
    assert client.get("/api/v1/people").get_json()["people"] == []  # nothing was made


def test_assign_moves_faces_and_reject_takes_them_off(client):
    anna, ben = faces_of(client, "anna"), faces_of(client, "ben")
    a = client.post("/api/v1/people", json={"name": "Anna", "face_ids": anna}).get_json()
    b = client.post("/api/v1/people", json={"name": "Ben", "face_ids": ben[:2]}).get_json()
    # Two of Anna's faces were Ben's: move them.
    moved = client.post(f"/api/v1/people/{b['id']}/faces", json={"face_ids": [anna[0], anna[1], ben[0]]})
    assert moved.status_code == 200
    body = moved.get_json()
    assert body["changed"] == 2 and body["face_ids"] == sorted([anna[0], anna[1], ben[0]])
    assert body["person"]["face_count"] == 4
    assert client.get(f"/api/v1/people/{a['id']}").get_json()["face_count"] == len(anna) - 2
    # Not this person: back off Ben, and onto nobody.
    rejected = client.post(f"/api/v1/people/{b['id']}/rejections", json={"face_ids": [anna[0], anna[1]]}).get_json()
    assert rejected["changed"] == 2 and rejected["person"]["face_count"] == 2
    face = client.get(f"/api/v1/faces/{anna[0]}").get_json()
    assert face["person"] is None and face["person_source"] is None
    # Errors: unknown person (before unknown faces), unknown faces, empty list.
    assert "77" in assert_error(client.post("/api/v1/people/77/faces", json={"face_ids": [9999]}),
                                404, "person_not_found")["message"]
    assert "9999" in assert_error(client.post(f"/api/v1/people/{a['id']}/rejections", json={"face_ids": [9999]}),
                                  404, "face_not_found")["message"]
    assert_error(client.post(f"/api/v1/people/{a['id']}/faces", json={"face_ids": []}), 422, "invalid_request")


def test_a_rejection_survives_reclustering_and_naming(client):
    anna = faces_of(client, "anna")
    run = client.post("/api/v1/clusters", json={"k": 4}).get_json()
    cluster = next(c["id"] for c in run["clusters"] if anna[0] in {m["face_id"] for m in c["members"]})
    person = client.put(f"/api/v1/clusters/{cluster}", json={"name": "Anna"}).get_json()
    client.post(f"/api/v1/people/{person['id']}/rejections", json={"face_ids": [anna[0]]})
    for _ in range(2):
        run = client.post("/api/v1/clusters", json={"k": 4}).get_json()  # the face is clustered with her again
        again = next(c for c in run["clusters"] if anna[0] in {m["face_id"] for m in c["members"]})
        assert again["name"] == "Anna"
        assert anna[0] not in {f["face_id"] for f in listing(client, person["id"])["faces"]}
        assert client.put(f"/api/v1/clusters/{again['id']}", json={"name": "Anna"}).get_json()["face_count"] == 6
        match = client.post("/api/v1/search", json={"embedding": person_faces("anna", 1)[0].tolist(), "k": 7})
        by_id = {m["face_id"]: m for m in match.get_json()["faces"][0]["matches"]}
        assert by_id[anna[0]]["person"] is None and by_id[anna[1]]["person_source"] == "confirmed"


def test_naming_a_cluster_is_audited_with_its_faces(people_index):
    client = client_of(people_index)
    run = client.post("/api/v1/clusters", json={"k": 4}).get_json()
    members = sorted(m["face_id"] for m in run["clusters"][0]["members"])
    client.put("/api/v1/clusters/0", json={"name": "First"})
    line = AuditLog.in_data_dir(people_index).read()[-1]
    assert line["method"] == "PUT" and line["face_ids"] == members and line["results"] == len(members)


def test_cluster_faces_listed_by_source_and_paged(client):
    run = client.post("/api/v1/clusters", json={"k": 4}).get_json()
    anna = faces_of(client, "anna")
    cluster = next(c for c in run["clusters"] if anna[0] in {m["face_id"] for m in c["members"]})
    person = client.post("/api/v1/people", json={"name": "Anna", "face_ids": anna[:2]}).get_json()
    # The cluster is mapped to her at the next run: the rest of it counts as "cluster".
    client.post("/api/v1/clusters", json={"k": 4})
    body = listing(client, person["id"], limit=3, order="nearest")
    assert body["total"] == len(cluster["members"]) and body["counts"] == {
        "confirmed": 2, "cluster": len(anna) - 2, "suggested": 0}
    assert len(body["faces"]) == 3 and [f["distance"] for f in body["faces"]] == sorted(
        f["distance"] for f in body["faces"])
    rest = listing(client, person["id"], limit=3, offset=3, order="nearest")
    assert {f["face_id"] for f in body["faces"]}.isdisjoint(f["face_id"] for f in rest["faces"])
    farthest = listing(client, person["id"], order="farthest")["faces"]
    assert [f["distance"] for f in farthest] == sorted((f["distance"] for f in farthest), reverse=True)
    assert {f["face_id"] for f in listing(client, person["id"], source="cluster")["faces"]} == set(anna[2:])
    assert_error(client.get(f"/api/v1/people/{person['id']}/faces?order=best"), 422, "invalid_request")
    assert_error(client.get(f"/api/v1/people/{person['id']}/faces?limit=0"), 422, "invalid_request")
    assert_error(client.get("/api/v1/people/99/faces"), 404, "person_not_found")


def test_merge_and_undo(client):
    anna, ben = faces_of(client, "anna"), faces_of(client, "ben")
    a = client.post("/api/v1/people", json={"name": "Anna", "face_ids": anna[:4]}).get_json()
    a2 = client.post("/api/v1/people", json={"name": "Anna B.", "face_ids": anna[4:]}).get_json()
    b = client.post("/api/v1/people", json={"name": "Ben", "face_ids": ben}).get_json()
    client.post(f"/api/v1/people/{a2['id']}/rejections", json={"face_ids": [ben[0]]})

    merged = client.post(f"/api/v1/people/{a['id']}/merge", json={"people": [a2["id"]]})
    assert merged.status_code == 200
    person = merged.get_json()
    assert person["face_count"] == len(anna) and person["last_merge"]["people"] == [{"id": a2["id"], "name": "Anna B."}]
    assert person["last_merge"]["faces_moved"] == len(anna) - 4 and person["last_merge"]["actor"] is None
    assert_error(client.get(f"/api/v1/people/{a2['id']}"), 404, "person_not_found")
    assert client.get(f"/api/v1/people/{a['id']}/merges").get_json()["merges"][0]["undone_at"] is None

    # Ben's first face was moved to Anna since: undo leaves it there.
    client.post(f"/api/v1/people/{a['id']}/faces", json={"face_ids": [ben[0]]})
    client.post(f"/api/v1/people/{b['id']}/faces", json={"face_ids": [anna[5]]})
    undone = client.post(f"/api/v1/people/{a['id']}/merge/undo")
    assert undone.status_code == 200
    body = undone.get_json()
    assert [p["id"] for p in body["restored"]] == [a2["id"]] and body["restored"][0]["name"] == "Anna B."
    assert body["left_as_they_are"] == [anna[5]] and body["faces_restored"] == len(anna) - 5
    assert body["rejections_restored"] == 1 and body["person"]["last_merge"] is None
    assert client.get(f"/api/v1/people/{a2['id']}").get_json()["face_count"] == len(anna) - 5
    assert_error(client.post(f"/api/v1/people/{a['id']}/merge/undo"), 404, "merge_not_found")


@pytest.mark.parametrize("people, status, code", [
    ("self", 422, "invalid_request"),
    ([], 422, "invalid_request"),
    ([404, 405], 404, "person_not_found"),
    (["2"], 422, "invalid_request"),
])
def test_bad_merges(client, people, status, code):
    anna = faces_of(client, "anna")
    a = client.post("/api/v1/people", json={"name": "Anna", "face_ids": anna}).get_json()
    body = {"people": [a["id"]] if people == "self" else people}
    error = assert_error(client.post(f"/api/v1/people/{a['id']}/merge", json=body), status, code)
    if code == "person_not_found":
        assert "404, 405" in error["message"]
    assert_error(client.post("/api/v1/people/999/merge", json={"people": [a["id"]]}), 404, "person_not_found")


def test_corrections_need_the_admin_scope_and_are_audited(people_index):
    admin = client_of(people_index, api_keys=["admin-key-0000001"], read_keys=["read-key-00000001"])
    read = {"X-API-Key": "read-key-00000001"}
    anna = faces_of_with(admin, "anna", {"X-API-Key": "admin-key-0000001"})
    made = admin.post("/api/v1/people", json={"name": "Anna", "face_ids": anna[:2]},
                      headers={"X-API-Key": "admin-key-0000001"})
    assert made.status_code == 201
    person_id = made.get_json()["id"]
    for method, url, body in [
        ("POST", "/api/v1/people", {"name": "B", "face_ids": anna[2:3]}),
        ("POST", f"/api/v1/people/{person_id}/faces", {"face_ids": anna[2:3]}),
        ("POST", f"/api/v1/people/{person_id}/rejections", {"face_ids": anna[:1]}),
        ("POST", f"/api/v1/people/{person_id}/merge", {"people": [person_id + 1]}),
        ("POST", f"/api/v1/people/{person_id}/merge/undo", None),
        ("POST", "/api/v1/people/recognise", {}),
    ]:
        assert_error(admin.open(url, method=method, json=body, headers=read), 403, "forbidden")
    assert admin.get(f"/api/v1/people/{person_id}/faces", headers=read).status_code == 200
    admin.post(f"/api/v1/people/{person_id}/rejections", json={"face_ids": anna[:1]},
               headers={"X-API-Key": "admin-key-0000001"})
    lines = [line for line in AuditLog.in_data_dir(people_index).read() if line["path"].startswith("/api/v1/people")]
    created, rejected = lines[0], lines[-1]
    assert created["method"] == "POST" and created["status"] == 201 and created["face_ids"] == anna[:2]
    assert created["key"].startswith("admin-") and created["params"] == {"person_id": person_id}
    assert rejected["path"].endswith("/rejections") and rejected["face_ids"] == anna[:1] and rejected["results"] == 1
    assert [line["status"] for line in lines[1:-1]] == [403] * 6 + [200]


def faces_of_with(client, name: str, headers: dict) -> list[int]:
    hits = client.post("/api/v1/recall", json={"embeddings": [person_faces(name, 1)[0].tolist()],
                                               "max_distance": 0.5}, headers=headers).get_json()
    return sorted(m["face_id"] for m in hits["matches"] if f"/{name}/" in m["path"])


def test_corrections_work_while_a_reindex_runs(people_index):
    client = client_of(people_index)
    anna = faces_of(client, "anna")
    with IndexLock(people_index, command="facesearch index /photos"):
        person = client.post("/api/v1/people", json={"name": "Anna", "face_ids": anna}).get_json()
        assert client.post(f"/api/v1/people/{person['id']}/rejections", json={"face_ids": anna[:1]}).status_code == 200
        # Recognition waits for the reindex, which recognises when it ends.
        assert_error(client.post("/api/v1/people/recognise", json={}), 409, "index_busy")
    assert client.post("/api/v1/people/recognise", json={}).status_code == 200


def test_search_and_recall_matches_carry_the_person_and_source(client):
    anna = faces_of(client, "anna")
    person = client.post("/api/v1/people", json={"name": "Anna", "face_ids": anna[:3]}).get_json()
    probe = person_faces("anna", 1)[0].tolist()
    matches = client.post("/api/v1/search", json={"embedding": probe, "k": 10}).get_json()["faces"][0]["matches"]
    for match in matches:
        confirmed = match["face_id"] in anna[:3]
        assert match["person"] == ("Anna" if confirmed else None)
        assert match["person_id"] == (person["id"] if confirmed else None)
        assert match["person_source"] == ("confirmed" if confirmed else None)
        assert match["photo_id"] >= 1
    hits = client.post("/api/v1/recall", json={"embeddings": [probe], "max_distance": 0.5}).get_json()["matches"]
    assert {h["face_id"] for h in hits if h["person_source"] == "confirmed"} == set(anna[:3])


def test_deleting_a_person_forgets_their_corrections(client):
    anna = faces_of(client, "anna")
    person = client.post("/api/v1/people", json={"name": "Anna", "face_ids": anna}).get_json()
    client.post(f"/api/v1/people/{person['id']}/rejections", json={"face_ids": anna[:1]})
    assert client.delete(f"/api/v1/people/{person['id']}").status_code == 204
    assert client.get(f"/api/v1/faces/{anna[1]}").get_json()["person"] is None
    assert client.post("/api/v1/people", json={"name": "Anna", "face_ids": anna[:1]}).status_code == 201
    assert client.get("/api/v1/health").get_json()["faces"] == sum(PEOPLE_SIZES.values()) + 1  # nothing erased


def test_any_correction_is_undone_over_the_api(people_index):
    client = client_of(people_index)
    made = client.post("/api/v1/people", json={"name": "Zed", "face_ids": [1, 2]}).get_json()
    moved = client.post(f"/api/v1/people/{made['id']}/rejections", json={"face_ids": [2]})
    assert moved.status_code == 200
    journal = client.get("/api/v1/corrections?limit=5").get_json()["corrections"]
    assert [c["action"] for c in journal] == ["reject", "create"] and all(c["undoable"] for c in journal)
    undone = client.post(f"/api/v1/corrections/{journal[0]['rev']}/undo")
    assert undone.status_code == 200, undone.get_json()
    body = undone.get_json()
    assert body["target"] == journal[0]["rev"] and body["action"] == "reject" and body["face_ids"] == [2]
    assert client.get(f"/api/v1/people/{made['id']}").get_json()["face_count"] == 2
    again = client.post(f"/api/v1/corrections/{journal[0]['rev']}/undo")
    assert again.status_code == 404 and "already undone" in again.get_json()["error"]["message"]
    redone = client.post(f"/api/v1/corrections/{body['rev']}/undo")  # the undo undone: rejected again
    assert redone.status_code == 200 and client.get(f"/api/v1/people/{made['id']}").get_json()["face_count"] == 1
