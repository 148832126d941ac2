"""Corrections follow faces that re-encoding gives new ids (``index
--full``): confirmed faces, rejections and merge records move to the face
at the same place of the same file; a file whose content changed is a new
photo, and its corrections go."""

from __future__ import annotations

from config.settings import load_settings
from indexer.indexing import index_paths
from indexer.people.annotations import AnnotationsDB
from service import create_app
from tests.helpers import face_of, person_faces, sources, write_coded_photo


def test_index_full_keeps_what_people_said(coded, tmp_path, data_dir, fake_model):
    settings = load_settings(data_dir=data_dir, indexer={"workers": 1}, recognition={"enabled": False})
    photos = tmp_path / "photos"
    anna = [write_coded_photo(coded, photos, f"anna{i}", v) for i, v in enumerate(person_faces("anna", 4))]
    ben = [write_coded_photo(coded, photos, f"ben{i}", v) for i, v in enumerate(person_faces("ben", 3))]
    index_paths([photos], settings, model=fake_model)
    client = create_app(load_settings(data_dir=data_dir), model=fake_model).test_client()
    a = client.post("/api/v1/people", json={"name": "Anna", "face_ids": [face_of(data_dir, p) for p in anna[:3]]})
    a = a.get_json()
    b = client.post("/api/v1/people", json={"name": "Ben", "face_ids": [face_of(data_dir, ben[0])]}).get_json()
    client.post(f"/api/v1/people/{a['id']}/rejections", json={"face_ids": [face_of(data_dir, anna[3])]})
    client.post(f"/api/v1/people/{a['id']}/merge", json={"people": [b["id"]]})
    before = {face_of(data_dir, p) for p in anna[:3] + ben[:1]}

    # anna2's photo is edited (other bytes): it is a new photo now.
    write_coded_photo(coded, tmp_path / "edited", "anna2-edited", person_faces("anna", 10)[9]).replace(anna[2])
    report = index_paths([photos], settings, full=True, model=fake_model)
    after = {face_of(data_dir, p) for p in anna[:2] + ben[:1]}
    assert after.isdisjoint(before)  # --full gives every face a new id
    assert report.faces_carried_over == 4  # anna0, anna1, ben0 and the rejected anna3
    annotations = AnnotationsDB.open(data_dir)
    assert sources(annotations, a["id"]) == {f: "confirmed" for f in after}
    assert annotations.recognition_input().rejections == {(face_of(data_dir, anna[3]), a["id"])}
    # The merge's record moved too: its undo still gives Ben his face back.
    undone = client.post(f"/api/v1/people/{a['id']}/merge/undo").get_json()
    assert undone["faces_restored"] == 1 and undone["left_as_they_are"] == []
    assert sources(annotations, b["id"]) == {face_of(data_dir, ben[0]): "confirmed"}
    annotations.close()
    # Another --full: nothing is lost a second time (Anna's two, Ben's one, the rejection).
    assert index_paths([photos], settings, full=True, model=fake_model).faces_carried_over == 4
    annotations = AnnotationsDB.open(data_dir)
    assert len(sources(annotations, a["id"])) == 2 and len(sources(annotations, b["id"])) == 1
    annotations.close()
