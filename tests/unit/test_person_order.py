"""A person's faces least like them first: with more confirmed faces than
``MAX_REFERENCE_FACES`` the order is taken against a spread of them, and a
wrong face still comes first; the distances shown are exact (checked
against numpy)."""

import numpy as np

from application import people
from application.people import MAX_REFERENCE_FACES
from application.schemas import PersonFacesParams
from indexer.people.annotations import AnnotationsDB
from tests.helpers import put_person, store_at


def test_a_wrong_face_comes_first_among_many_confirmed(data_dir):
    store = store_at(data_dir)
    n = MAX_REFERENCE_FACES + 100
    put_person(store, "anna", n)
    put_person(store, "bob", 1)  # the wrong face, confirmed as anna's by mistake
    store.checkpoint()
    ids, _, x = store.all_embeddings()
    annotations = AnnotationsDB.open(data_dir)
    person_id = annotations.create_person("Anna", ids.tolist()).person.person_id
    page = people.person_faces(store, annotations, person_id, PersonFacesParams(limit=20, order="farthest"))
    assert page.total == n + 1
    assert page.faces[0].path == "/photos/bob/0.jpg"
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    row = {int(f): i for i, f in enumerate(ids)}
    for face in page.faces:
        assert abs(face.distance - d[row[face.face_id]].min()) < 1e-4
    newest = people.person_faces(store, annotations, person_id, PersonFacesParams(limit=5, order="newest"))
    assert newest.total == n + 1
    annotations.close()
    store.close()
