"""Recognition of named people: the rule on hand-placed vectors, then
through ``facesearch index`` runs with a fake encoder of fixed vectors
(suggestions made, re-evaluated when confirmed faces change, never against
a rejection), and once with the real model on ``tests/data``."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from config.settings import RecognitionSettings, load_settings
from indexer.indexing import index_paths
from indexer.people.annotations import AnnotationsDB
from indexer.people.recognition import suggest
from service import create_app
from tests.helpers import (
    DATA,
    LFW_PEOPLE,
    face_of,
    fake_vector,
    person_faces,
    published_store,
    sources,
    write_coded_photo,
)

DIM = 128


def e(i: int, length: float = 1.0) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[i] = length
    return v


def one(x: np.ndarray, confirmed: list[np.ndarray], people: list[int], **kw) -> tuple[int, float]:
    found = suggest(x[None], np.stack(confirmed), np.array(people), **kw)
    return int(found.person[0]), float(found.distance[0])


# Person 1's confirmed faces c1, c2, c3 (their mean m = 0.1 e1 + 0.1 e2); person 2 far away.
C = [np.zeros(DIM, np.float32), e(1, 0.3), e(2, 0.3)]
FAR = e(3, 2.0)
CONFIRMED, PEOPLE = [*C, FAR], [1, 1, 1, 2]
MEAN = (C[0] + C[1] + C[2]) / 3


def test_a_near_copy_of_a_confirmed_face_is_the_person():
    person, distance = one(e(4, 0.35), CONFIRMED, PEOPLE)
    assert person == 1 and distance == pytest.approx(0.35, abs=1e-6)


def test_one_lookalike_photo_is_not_enough():
    # 0.45 from c2 (the plain rule's 0.5 would take it), but 0.50 from the mean of c1, c2, c3.
    x = C[1] + e(5, 0.45)
    assert np.linalg.norm(x - MEAN) > 0.44
    assert one(x, CONFIRMED, PEOPLE) == (-1, pytest.approx(float("nan"), nan_ok=True))


def test_near_the_persons_faces_as_a_group():
    x = MEAN + e(6, 0.4)  # 0.42 from c1: not a near copy, but 0.40 from their mean
    person, distance = one(x, CONFIRMED, PEOPLE)
    assert person == 1 and distance == pytest.approx(np.linalg.norm(x - C[0]), abs=1e-5)


def test_someone_else_nearly_as_near_is_no_suggestion():
    x = e(1, 0.45)  # 0.45 from person 1 at 0, 0.45 from person 2 at 0.9 e1
    assert one(x, [np.zeros(DIM, np.float32), e(1, 0.9)], [1, 2])[0] == -1
    assert one(e(1, 0.3), [np.zeros(DIM, np.float32), e(1, 0.9)], [1, 2])[0] == 1  # 0.3 against 0.6: clear


def test_the_support_distance_depends_on_how_many_confirmed_faces():
    x = e(7, 0.48)
    assert one(x, [np.zeros(DIM, np.float32), FAR], [1, 2])[0] == 1  # one confirmed face: within 0.50
    strict = RecognitionSettings(support_distance=[0.44])
    assert one(x, [np.zeros(DIM, np.float32), FAR], [1, 2], rule=strict)[0] == -1


def test_a_rejection_is_never_suggested():
    found = suggest(np.stack([e(4, 0.35), e(5, 0.35)]), np.stack(CONFIRMED), np.array(PEOPLE),
                    rejected={(11, 1)}, face_ids=np.array([11, 12]))
    assert found.person.tolist() == [-1, 1]


def test_nothing_confirmed_suggests_nothing():
    found = suggest(np.stack([e(4)]), np.zeros((0, DIM), np.float32), np.zeros(0, np.int64))
    assert found.person.tolist() == [-1]


# -- through index runs, with a fake encoder of fixed vectors ----------------








def test_index_runs_suggest_reevaluate_and_respect_rejections(coded, tmp_path, data_dir, fake_model):
    settings = load_settings(data_dir=data_dir, indexer={"workers": 1})
    photos = tmp_path / "photos"
    anna = [write_coded_photo(coded, photos, f"anna{i}", v) for i, v in enumerate(person_faces("anna", 8))]
    ben = [write_coded_photo(coded, photos, f"ben{i}", v) for i, v in enumerate(person_faces("ben", 4))]
    write_coded_photo(coded, photos, "stranger0", fake_vector(b"stranger0"))
    for path in anna[6:]:
        path.rename(tmp_path / path.name)  # not there yet
    assert index_paths([photos], settings,
                       model=fake_model).recognition is not None  # nobody is named: nothing to suggest
    annotations = AnnotationsDB.open(data_dir)
    a = annotations.create_person("Anna", [face_of(data_dir, p) for p in anna[:2]]).person
    annotations.create_person("Ben", [face_of(data_dir, ben[0])])

    for path in anna[6:]:
        (tmp_path / path.name).rename(path)
    write_coded_photo(coded, photos, "stranger1", fake_vector(b"stranger1"))
    report = index_paths([photos], settings, model=fake_model)
    # Anna's other old faces (she is new) and her two new ones; Ben's three old ones.
    assert report.recognition["suggested"] == 4 + 2 + 3
    assert sources(annotations, a.person_id) == {
        **{face_of(data_dir, p): "confirmed" for p in anna[:2]},
        **{face_of(data_dir, p): "suggested" for p in anna[2:]}}
    strangers = [face_of(data_dir, photos / f"stranger{i}.png") for i in range(2)]
    assert annotations.attributions(strangers) == {}

    # "Not her": the suggestion goes, and no later run brings it back.
    rejected = face_of(data_dir, anna[7])
    annotations.reject(a.person_id, [rejected])
    for _ in range(2):
        index_paths([photos], settings,
                    model=fake_model)  # nothing changed on disk: recognition runs for the correction
        assert rejected not in sources(annotations, a.person_id)
    client = create_app(load_settings(data_dir=data_dir), model=fake_model).test_client()
    assert client.post("/api/v1/people/recognise", json={"everything": True}).status_code == 200
    assert rejected not in sources(annotations, a.person_id)

    # A suggestion confirmed is confirmed.
    annotations.assign(a.person_id, [face_of(data_dir, anna[2])])
    assert sources(annotations, a.person_id)[face_of(data_dir, anna[2])] == "confirmed"

    # Her confirmed faces gone (all three rejected): her suggestions go at the next recognition.
    annotations.reject(a.person_id, [face_of(data_dir, p) for p in anna[:3]])
    body = client.post("/api/v1/people/recognise").get_json()
    assert body["people_reevaluated"] >= 1
    assert sources(annotations, a.person_id) == {}
    annotations.close()


def test_recognition_can_be_turned_off(coded, tmp_path, data_dir, fake_model):
    settings = load_settings(data_dir=data_dir, indexer={"workers": 1}, recognition={"enabled": False})
    photos = tmp_path / "photos"
    anna = [write_coded_photo(coded, photos, f"anna{i}", v) for i, v in enumerate(person_faces("anna", 3))]
    index_paths([photos], settings, model=fake_model)
    annotations = AnnotationsDB.open(data_dir)
    a = annotations.create_person("Anna", [face_of(data_dir, anna[0])]).person
    write_coded_photo(coded, photos, "anna9", person_faces("anna", 10)[9])
    assert index_paths([photos], settings, model=fake_model).recognition is None
    assert set(sources(annotations, a.person_id).values()) == {"confirmed"}


@pytest.mark.model
def test_the_real_model_recognises_new_photos_of_named_people(real_model, tmp_path, data_dir):
    """tests/data: 5 people x 3 photos. Name each from its first photo; the
    second and third arrive later. Nothing may be named wrongly."""
    settings = load_settings(data_dir=data_dir, indexer={"workers": 2})
    photos = tmp_path / "photos"
    for person in LFW_PEOPLE:
        (photos / person).mkdir(parents=True)
        shutil.copy(DATA / "lfw" / person / f"{person}_0001.jpg", photos / person)
    index_paths([photos], settings, model=real_model)
    annotations = AnnotationsDB.open(data_dir)
    named = {}
    for person in LFW_PEOPLE:
        face = face_of(data_dir, photos / person / f"{person}_0001.jpg")
        named[annotations.create_person(person, [face]).person.person_id] = person
    for person in LFW_PEOPLE:
        for n in (2, 3):
            shutil.copy(DATA / "lfw" / person / f"{person}_{n:04d}.jpg", photos / person)
    report = index_paths([photos], settings, model=real_model)
    store = published_store(data_dir)
    suggested = {}
    for face_id, who in annotations.attributions(store.face_ids().tolist()).items():
        if who.source == "suggested":
            suggested[store.faces([face_id])[face_id].path] = named[who.person_id]
    store.close()
    assert report.recognition["suggested"] == len(suggested)
    assert all(f"/{person}/" in path for path, person in suggested.items()), suggested  # no wrong name
    assert len(suggested) >= 6, suggested  # most of the 10 new photos
