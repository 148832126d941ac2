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
    assert out.tolist() == [0, 0, -1, -1]  # the side nearer the centre stays; the other has nowhere near to go
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
    assert (held.labels[:8] == 0).all() and (held.labels[8:] == -1).all()  # no other group to go to
