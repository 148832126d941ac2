"""The clustering and people endpoints and the ``cluster`` command, over a
synthetic index of four well-separated people and one stranger
(``people_index`` in conftest)."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from application.clustering import MAX_COST_POINTS, cost_ks
from application.pictures import CELL, GAP, TEXT
from application.schemas import ClusterRequest
from config.settings import load_settings
from facesearch.cli import main
from indexer.clustering import METHODS
from service import create_app
from tests.helpers import PEOPLE_SIZES, assert_error, person_faces, put_person, store_at

FACES = sum(PEOPLE_SIZES.values()) + 1


def person_of_path(path: str) -> str:
    return path.split("/")[-2]


def cluster_of(body: dict, name: str) -> dict:
    """The cluster that holds every face of the made-up person ``name``."""
    holding = [c for c in body["clusters"] if any(person_of_path(m["path"]) == name for m in c["members"])]
    assert len(holding) == 1, holding
    assert all(person_of_path(m["path"]) == name for m in holding[0]["members"])
    return holding[0]


def all_face_ids(body: dict) -> list[int]:
    return [m["face_id"] for c in body["clusters"] for m in c["members"]] + [s["face_id"] for s in body["strangers"]]


def png(response) -> Image.Image:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    image.load()
    assert image.format == "PNG" and image.width > 0 and image.height > 0
    return image


def test_post_clusters_groups_every_face_once(people_client):
    response = people_client.post("/api/v1/clusters", json={"k": 4})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert {"method", "k", "clusters", "strangers", "run_id", "created_at", "params"} <= set(body)
    assert body["method"] == "kmeans" and body["k"] == 4 and len(body["clusters"]) == 4
    ids = all_face_ids(body)
    assert len(ids) == len(set(ids)) == FACES == body["faces"]
    assert [c["id"] for c in body["clusters"]] == [0, 1, 2, 3]
    for cluster in body["clusters"]:
        assert set(cluster) == {"id", "size", "name", "person_id", "members"}
        assert cluster["size"] == len(cluster["members"]) and cluster["name"] is None
        distances = [m["distance"] for m in cluster["members"]]
        assert distances == sorted(distances) and all(0 <= d < 0.6 for d in distances)
    sizes = [c["size"] for c in body["clusters"]]
    assert sizes == sorted(sizes, reverse=True)
    for name in PEOPLE_SIZES:
        cluster_of(body, name)
    [stranger] = body["strangers"]
    assert person_of_path(stranger["path"]) == "stranger"
    assert stranger["distance"] > 0.6 and 0 <= stranger["nearest_cluster"] < 4


def test_the_stored_run_reads_back_as_posted(people_client):
    assert_error(people_client.get("/api/v1/clusters"), 404, "no_clustering")
    posted = people_client.post("/api/v1/clusters", json={"k": 4, "stranger_distance": 0.5, "seed": 3}).get_json()
    assert posted["params"]["seed"] == 3
    assert people_client.get("/api/v1/clusters").get_json() == posted
    again = people_client.post("/api/v1/clusters").get_json()  # no body: the configured defaults
    assert again["run_id"] == posted["run_id"] + 1 and sorted(all_face_ids(again)) == sorted(all_face_ids(posted))
    assert people_client.get("/api/v1/clusters").get_json() == again


@pytest.mark.parametrize(
    "body",
    [
        {"k": 0},
        {"k": -2},
        {"k": FACES + 1},
        {"stranger_distance": -0.1},
        {"stranger_distance": 0},
        {"neighbour_distance": -0.1},
        {"threshold": -1},
        {"method": "dbscan"},
        {"k": "3"},
        {"k": 2.5},
        {"k": True},
        {"surprise": 1},
        [1, 2],
    ],
)
def test_bad_cluster_parameters_are_422(people_client, body):
    error = assert_error(people_client.post("/api/v1/clusters", json=body), 422, "invalid_request")
    if body == {"k": FACES + 1}:
        assert str(FACES) in error["message"]
    assert_error(people_client.get("/api/v1/clusters"), 404, "no_clustering")  # nothing was stored


def test_an_index_above_max_faces_is_refused(people_index: Path):
    client = create_app(load_settings(data_dir=people_index, clustering={"max_faces": FACES - 1})).test_client()
    error = assert_error(client.post("/api/v1/clusters", json={"k": 2}), 422, "invalid_request")
    assert "max_faces" in error["message"]
    assert_error(client.get("/api/v1/clusters/cost"), 422, "invalid_request")


def test_malformed_cluster_body_is_400(people_client):
    response = people_client.post("/api/v1/clusters", data="{oops", content_type="application/json")
    assert_error(response, 400, "invalid_json")


def test_request_methods_are_the_algorithms_methods():
    assert set(ClusterRequest.model_fields["method"].annotation.__args__[0].__args__) == set(METHODS)


def test_an_empty_index_gives_an_empty_clustering(data_dir: Path):
    store_at(data_dir).checkpoint()
    client = create_app(load_settings(data_dir=data_dir)).test_client()
    body = client.post("/api/v1/clusters", json={}).get_json()
    assert {k: body[k] for k in ("method", "k", "clusters", "strangers")} == {
        "method": "kmeans", "k": 0, "clusters": [], "strangers": []
    }
    assert client.get("/api/v1/clusters").get_json() == body
    assert_error(client.post("/api/v1/clusters", json={"k": 1}), 422, "invalid_request")
    assert client.get("/api/v1/clusters/cost").get_json()["points"] == []
    png(client.get("/api/v1/clusters/cost.png"))
    png(client.get("/api/v1/clusters/contact-sheet.png"))


def test_naming_a_cluster_names_its_faces_in_clusters_people_and_search(people_client):
    assert_error(people_client.put("/api/v1/clusters/0", json={"name": "Anna"}), 404, "no_clustering")
    body = people_client.post("/api/v1/clusters", json={"k": 4}).get_json()
    anna = cluster_of(body, "anna")
    response = people_client.put(f"/api/v1/clusters/{anna['id']}", json={"name": "Anna K."})
    assert response.status_code == 200, response.get_data(as_text=True)
    person = response.get_json()
    assert person["name"] == "Anna K." and person["face_count"] == PEOPLE_SIZES["anna"]
    assert person["clusters"] == [anna["id"]]

    named = people_client.get("/api/v1/clusters").get_json()
    assert {c["id"]: c["name"] for c in named["clusters"]} == {
        c["id"]: ("Anna K." if c["id"] == anna["id"] else None) for c in body["clusters"]
    }
    assert cluster_of(named, "anna")["person_id"] == person["id"]
    assert people_client.get("/api/v1/people").get_json() == {"people": [person]}
    assert people_client.get(f"/api/v1/people/{person['id']}").get_json() == person

    query = person_faces("anna", 1)[0].tolist()
    found = people_client.post("/api/v1/search", json={"embedding": query, "k": FACES}).get_json()
    matches = found["faces"][0]["matches"]
    assert {m["person"] for m in matches if person_of_path(m["path"]) == "anna"} == {"Anna K."}
    assert {m["person"] for m in matches if person_of_path(m["path"]) != "anna"} == {None}


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "   "}, {"name": "x" * 101}, {"name": 5}, {},
                                  {"name": "A", "x": 1}])
def test_bad_names_are_422(people_client, body):
    people_client.post("/api/v1/clusters", json={"k": 4})
    assert_error(people_client.put("/api/v1/clusters/0", json=body), 422, "invalid_request")
    assert people_client.get("/api/v1/people").get_json() == {"people": []}


def test_unknown_cluster_is_404(people_client):
    people_client.post("/api/v1/clusters", json={"k": 4})
    assert_error(people_client.put("/api/v1/clusters/4", json={"name": "Anna"}), 404, "cluster_not_found")
    assert_error(people_client.put("/api/v1/clusters/-1", json={"name": "Anna"}), 404)


def test_names_survive_reindexing_and_reclustering(people_index: Path, people_client):
    body = people_client.post("/api/v1/clusters", json={"k": 4}).get_json()
    people_client.put(f"/api/v1/clusters/{cluster_of(body, 'anna')['id']}", json={"name": "Anna"})
    people_client.put(f"/api/v1/clusters/{cluster_of(body, 'dora')['id']}", json={"name": "Dora"})

    # Reindex: one photo of Anna is gone, a new person with the most photos arrives.
    store = store_at(people_index)
    assert store.remove_file("/photos/anna/0.jpg") == 1
    put_person(store, "eve", 9)
    store.checkpoint()
    store.close()
    client = create_app(load_settings(data_dir=people_index)).test_client()

    again = client.post("/api/v1/clusters", json={"k": 5}).get_json()
    assert len(all_face_ids(again)) == FACES - 1 + 9
    assert cluster_of(again, "eve")["id"] == 0  # the largest: the ids have moved
    names = {c["id"]: c["name"] for c in again["clusters"]}
    assert names.pop(cluster_of(again, "anna")["id"]) == "Anna"
    assert names.pop(cluster_of(again, "dora")["id"]) == "Dora"
    assert set(names.values()) == {None}
    people = {p["name"]: p for p in client.get("/api/v1/people").get_json()["people"]}
    assert people["Anna"]["face_count"] == PEOPLE_SIZES["anna"] - 1  # the removed face's label is gone
    assert people["Anna"]["clusters"] == [cluster_of(again, "anna")["id"]]


def test_rename_and_forget_a_person(people_client):
    body = people_client.post("/api/v1/clusters", json={"k": 4}).get_json()
    anna = people_client.put(f"/api/v1/clusters/{cluster_of(body, 'anna')['id']}", json={"name": "Anna"}).get_json()
    ben = people_client.put(f"/api/v1/clusters/{cluster_of(body, 'ben')['id']}", json={"name": "Ben"}).get_json()
    renamed = people_client.patch(f"/api/v1/people/{anna['id']}", json={"name": "Annabel"})
    assert renamed.status_code == 200 and renamed.get_json() == {**anna, "name": "Annabel"}
    assert_error(people_client.patch(f"/api/v1/people/{anna['id']}", json={"name": "ben"}), 409, "name_taken")
    assert_error(people_client.patch(f"/api/v1/people/{anna['id']}", json={"name": ""}), 422, "invalid_request")
    assert_error(people_client.patch("/api/v1/people/999", json={"name": "Zed"}), 404, "person_not_found")
    assert cluster_of(people_client.get("/api/v1/clusters").get_json(), "anna")["name"] == "Annabel"

    response = people_client.delete(f"/api/v1/people/{ben['id']}")
    assert response.status_code == 204 and response.data == b""
    assert_error(people_client.get(f"/api/v1/people/{ben['id']}"), 404, "person_not_found")
    assert_error(people_client.delete(f"/api/v1/people/{ben['id']}"), 404, "person_not_found")
    after = people_client.get("/api/v1/clusters").get_json()
    assert cluster_of(after, "ben")["name"] is None and sorted(all_face_ids(after)) == sorted(all_face_ids(body))
    assert [p["name"] for p in people_client.get("/api/v1/people").get_json()["people"]] == ["Annabel"]


def test_cost_curve(people_client, people_index: Path):
    response = people_client.get("/api/v1/clusters/cost?k_min=1&k_max=6")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["unit"] == "sum of squared Euclidean distances" and body["faces"] == FACES
    assert [p["k"] for p in body["points"]] == [1, 2, 3, 4, 5, 6]
    _, _, x = store_at(people_index, readonly=True).all_embeddings()
    x = x.astype(np.float64)
    assert body["points"][0]["cost"] == pytest.approx(((x - x.mean(0)) ** 2).sum(), rel=1e-3)  # k = 1: squared
    costs = [p["cost"] for p in body["points"]]
    # With four people and a stranger, 5 clusters leave only the spread within each person.
    assert costs[4] < costs[0] / 20 and costs[5] <= costs[4] * 1.01
    everything = people_client.get("/api/v1/clusters/cost").get_json()["points"]
    assert [p["k"] for p in everything] == list(range(1, FACES + 1))
    stepped = people_client.get("/api/v1/clusters/cost?k_min=2&k_max=10&step=4").get_json()["points"]
    assert [p["k"] for p in stepped] == [2, 6, 10]
    chart = png(people_client.get("/api/v1/clusters/cost.png?k_max=8"))
    assert chart.size == (800, 480)


@pytest.mark.parametrize(
    "query",
    ["k_min=0", f"k_max={FACES + 1}", "k_min=5&k_max=3", "step=0", "k_max=abc", "k_min=-1", "kmax=3"],
)
def test_bad_cost_ranges_are_422(people_client, query):
    assert_error(people_client.get(f"/api/v1/clusters/cost?{query}"), 422, "invalid_request")
    assert_error(people_client.get(f"/api/v1/clusters/cost.png?{query}"), 422, "invalid_request")


def test_cost_ranges_are_bounded():
    assert cost_ks(10_000) == list(range(1, MAX_COST_POINTS + 1))
    assert len(cost_ks(10_000, 1, 10_000)) <= MAX_COST_POINTS
    assert cost_ks(10_000, 100, 1000)[:3] == [100, 119, 138]
    with pytest.raises(ValueError, match="at most"):
        cost_ks(10_000, 1, 100, 1)


def test_automatically_chosen_k_is_reported_for_the_chart(people_client):
    assert people_client.get("/api/v1/clusters/cost?k_max=3").get_json()["chosen_k"] is None
    people_client.post("/api/v1/clusters", json={"k": 3})
    assert people_client.get("/api/v1/clusters/cost?k_max=3").get_json()["chosen_k"] is None
    auto = people_client.post("/api/v1/clusters", json={}).get_json()
    chosen = people_client.get("/api/v1/clusters/cost?k_max=3").get_json()["chosen_k"]
    assert chosen == auto["params"]["k_chosen"] == len(PEOPLE_SIZES)  # the stranger is nobody's group
    people_client.post("/api/v1/clusters", json={"method": "threshold"})
    assert people_client.get("/api/v1/clusters/cost?k_max=3").get_json()["chosen_k"] is None


def test_contact_sheet(people_client):
    assert_error(people_client.get("/api/v1/clusters/contact-sheet.png"), 404, "no_clustering")
    body = people_client.post("/api/v1/clusters", json={"k": 4}).get_json()
    people_client.put(f"/api/v1/clusters/{cluster_of(body, 'anna')['id']}", json={"name": "Anna"})
    full = png(people_client.get("/api/v1/clusters/contact-sheet.png"))
    one_row = png(people_client.get("/api/v1/clusters/contact-sheet.png?max_clusters=1&max_per_row=2"))
    wide = png(people_client.get("/api/v1/clusters/contact-sheet.png?max_per_row=20"))
    assert one_row.height < full.height and wide.width > full.width
    # The thumbnails are the stored ones: the first cell shows the largest cluster's colour.
    first_row = GAP + TEXT + 2 * GAP
    first = full.convert("RGB").getpixel((GAP + CELL // 2, first_row + TEXT + GAP + CELL // 2))
    assert first != (255, 255, 255) and first != (220, 220, 220)
    assert_error(people_client.get("/api/v1/clusters/contact-sheet.png?max_per_row=0"), 422, "invalid_request")


def test_openapi_lists_the_clustering_endpoints(people_client):
    doc = people_client.get("/api/v1/openapi.json").get_json()
    assert {"post", "get"} <= set(doc["paths"]["/api/v1/clusters"])
    assert {"get", "patch", "delete"} <= set(doc["paths"]["/api/v1/people/{person_id}"])
    for path in ["/api/v1/clusters/{cluster_id}", "/api/v1/clusters/cost", "/api/v1/clusters/cost.png",
                 "/api/v1/clusters/contact-sheet.png", "/api/v1/people"]:
        assert path in doc["paths"]
    schemas = doc["components"]["schemas"]
    assert {"ClusterRequest", "ClustersResponse", "PersonModel", "CostResponse"} <= set(schemas)
    assert "person" in schemas["Match"]["properties"]


def test_api_keys_guard_the_clustering_endpoints(people_index: Path):
    client = create_app(load_settings(data_dir=people_index, api_keys=["cluster-admin-key-1"])).test_client()
    assert_error(client.post("/api/v1/clusters", json={}), 401, "unauthorized")
    assert_error(client.get("/api/v1/people"), 401, "unauthorized")
    assert client.post("/api/v1/clusters", json={"k": 2},
                       headers={"X-API-Key": "cluster-admin-key-1"}).status_code == 200


def test_cli_cluster_stores_a_run_the_service_reads(runner, people_index: Path, tmp_path: Path):
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(main, ["cluster", "--data-dir", str(people_index), "--k", "4", "--json",
                                  "--contact-sheet", str(sheet)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed["k"] == 4 and len(all_face_ids(printed)) == FACES
    assert Image.open(sheet).format == "PNG"
    client = create_app(load_settings(data_dir=people_index)).test_client()
    assert client.get("/api/v1/clusters").get_json() == printed

    client.put(f"/api/v1/clusters/{cluster_of(printed, 'ben')['id']}", json={"name": "Ben"})
    summary = runner.invoke(main, ["cluster", "--data-dir", str(people_index), "--k", "4"])
    assert summary.exit_code == 0 and f"{FACES} faces in 4 clusters and 1 strangers" in summary.output
    assert ": Ben (6 faces)" in summary.output


def test_cli_cluster_errors(runner, people_index: Path, tmp_path: Path):
    too_many = runner.invoke(main, ["cluster", "--data-dir", str(people_index), "--k", str(FACES + 1)])
    assert too_many.exit_code == 2 and str(FACES) in too_many.output
    bad = runner.invoke(main, ["cluster", "--data-dir", str(people_index), "--method", "dbscan"])
    assert bad.exit_code == 2
    missing = runner.invoke(main, ["cluster", "--data-dir", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "facesearch index" in missing.output


def test_cost_curve_work_is_bounded(people_client, monkeypatch):
    import application.clustering

    monkeypatch.setattr(application.clustering, "MAX_COST_WORK", FACES * 5)
    assert people_client.get("/api/v1/clusters/cost?k_min=1&k_max=2").status_code == 200
    body = assert_error(people_client.get("/api/v1/clusters/cost?k_min=1&k_max=3"), 422, "invalid_request")
    assert "too much work" in body["message"]
