"""Cannot-link constraints in a clustering: a face displaced from its
cluster by another face of its photo, or by the other side of a "different
people" answer, goes to the nearest cluster it may join within reach,
else becomes a stranger."""

import numpy as np

from config.settings import ClusteringSettings
from indexer.clustering import cluster_faces
from indexer.clustering.constraints import CannotLink, photo_constraints, separate
from indexer.clustering.result import ClusterParams


def test_the_sibling_beside_goes_to_their_own_group():
    centres = np.array([[0.0, 0.0], [1.0, 0.0]], np.float32)
    x = np.array([[0.05, 0.0], [0.45, 0.0], [0.95, 0.0]], np.float32)  # anna, her sister, the sister again
    labels = np.array([0, 0, 1])  # the sister's face beside anna fell into anna's group
    photos = np.array([7, 7, 8])
    out = separate(x, labels, centres, photo_constraints(photos), reach=0.6)
    assert out.tolist() == [0, 1, 1]
    # Out of reach of any other group: a stranger, as before.
    assert separate(x, labels, centres, photo_constraints(photos), reach=0.3).tolist() == [0, -1, 1]


def test_the_sides_of_an_answer_never_share_a_group():
    centres = np.array([[0.0, 0.0], [3.0, 0.0]], np.float32)
    x = np.array([[0.0, 0.1], [0.1, 0.0], [0.2, 0.0], [0.3, 0.1]], np.float32)
    labels = np.array([0, 0, 0, 0])
    link = CannotLink(np.array([0, 1, 2, 3]), np.array([0, 0, 1, 1]))
    out = separate(x, labels, centres, [link], reach=0.5)
    assert out.tolist() == [0, 0, 1, 1]  # the side nearer the centre stays; the other, with nowhere near, splits off
    assert separate(x, labels, centres, [link], reach=0.5, min_group=3).tolist() == [0, 0, -1, -1]  # too few
    assert separate(x, labels, centres, [link], reach=0.0).tolist() == [0, 0, -1, -1]  # the rule before
    assert separate(x, labels, centres, [], reach=0.5).tolist() == [0, 0, 0, 0]


def test_cluster_faces_holds_the_links():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.01, (8, 128)).astype(np.float32)
    b = a[:6] + 0.002  # look-alikes: one group without the answer
    x = np.vstack([a, b]).astype(np.float32)
    photos = np.arange(len(x))
    settings = ClusteringSettings()
    plain = cluster_faces(x, photos, ClusterParams(k=1), settings)
    assert (plain.labels == 0).all()
    link = CannotLink(np.arange(14), np.array([0] * 8 + [1] * 6))
    held = cluster_faces(x, photos, ClusterParams(k=1), settings, links=[link])
    assert len(set(held.labels[:8].tolist())) == 1 and len(set(held.labels[8:].tolist())) == 1
    assert held.labels[0] != held.labels[8] and (held.labels >= 0).all()  # told apart: a group each


def test_a_named_persons_group_never_takes_a_second_face_of_their_photo():
    from application.clustering import photo_links

    face_ids = np.array([10, 11, 12, 13])
    photos = np.array([1, 1, 2, 3])  # 10 (confirmed anna) and 11 (her sister) in one photo
    [link] = photo_links(face_ids, photos, {10: 5, 12: 5})
    assert dict(zip(link.rows.tolist(), link.sides.tolist())) == {0: 0, 2: 0, 1: 1}
    assert photo_links(face_ids, photos, {13: 5}) == []  # alone in her photos: nothing to hold apart


def test_recognition_gives_a_person_one_face_a_photo(data_dir):
    from indexer.model import Box
    from indexer.people.recognition import one_face_a_photo
    from indexer.store import FileRecord, NewFace
    from tests.helpers import store_at

    store = store_at(data_dir)
    v = np.zeros(128, np.float32)
    for name, boxes in (("group", 3), ("pair", 2)):
        record = FileRecord(path=f"/p/{name}.jpg", size=1, mtime_ns=1, content_hash=name, width=300, height=100,
                            detection="{}", model="fake")
        store.put_file(record, [NewFace(Box(0, 100 * (i + 1), 100, 100 * i), v + i, b"") for i in range(boxes)])
    store.checkpoint()
    (g1, g2, g3), (p1, p2) = [[f.face_id for f in store.photo(i).faces] for i in (1, 2)]
    chosen = {g2: (7, 0.3), g3: (8, 0.2), p1: (7, 0.4), p2: (7, 0.35)}
    kept = one_face_a_photo(store, chosen, confirmed={g1: 7})
    assert kept == {g3: (8, 0.2), p2: (7, 0.35)}  # 7 is confirmed in the group photo; the nearer of the pair
    store.close()
