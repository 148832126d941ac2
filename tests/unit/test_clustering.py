"""The clustering algorithms on seeded synthetic embeddings: the k-NN graph
against brute-force numpy, the HDBSCAN implementation against
scikit-learn's, and ``cluster_faces``' guarantees (each face once, one face
per photo per cluster, determinism, validation)."""

import numpy as np
import pytest
from sklearn.cluster import HDBSCAN

from config.settings import ClusteringSettings
from indexer.clustering import ClusterParams, cluster_faces, cost_curve
from indexer.clustering.density import density_labels
from indexer.clustering.kmeans import kmeans, refine
from indexer.clustering.neighbours import knn_graph

SETTINGS = ClusteringSettings()


def people(sizes: list[int], strangers: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Faces of made-up people shaped like dlib's: same person ~0.3 apart,
    different people ~0.9 (Euclidean), around a shared offset; ``strangers``
    faces of one-photo people at the end. Returns (x, person; -1 = stranger)."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(0, 0.1, 128)
    centres = offset + rng.normal(0, 0.9 / 16, (len(sizes) + strangers, 128))
    person = np.concatenate([np.repeat(np.arange(len(sizes)), sizes), np.full(strangers, -1)])
    base = np.concatenate([centres[person[: sum(sizes)]], centres[len(sizes) :]])
    x = base + rng.normal(0, 0.3 / 16, base.shape)
    return x.astype(np.float32), person


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when labels ``a`` and ``b`` group the items identically (noise
    -1 must match noise)."""
    if not np.array_equal(a < 0, b < 0):
        return False
    pairs = {(int(p), int(q)) for p, q in zip(a[a >= 0], b[b >= 0])}
    return len(pairs) == len({p for p, _ in pairs}) == len({q for _, q in pairs})


def test_knn_graph_matches_brute_force():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    x[10] = x[11]  # an exact duplicate: each is the other's neighbour at 0
    D, neighbours = knn_graph(x, 7)
    full = np.linalg.norm(x[:, None, :].astype(np.float64) - x[None, :, :], axis=2)
    np.fill_diagonal(full, np.inf)
    expected = np.sort(full, axis=1)[:, :7]
    np.testing.assert_allclose(D, expected, atol=1e-4)
    assert not (np.arange(300)[:, None] == neighbours).any()
    assert neighbours[10, 0] == 11 and neighbours[11, 0] == 10 and D[10, 0] == 0


def test_knn_graph_with_fewer_faces_than_k():
    x = np.eye(3, 8, dtype=np.float32)
    D, neighbours = knn_graph(x, 5)
    assert (neighbours[:, :2] >= 0).all() and (neighbours[:, 2:] == -1).all() and np.isinf(D[:, 2:]).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("min_cluster_size", "min_samples"), [(2, 2), (3, 3), (5, 2)])
def test_density_labels_match_scikit_learn_hdbscan(seed, min_cluster_size, min_samples):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, 8))
    x = centres[rng.integers(0, 12, 240)] + rng.normal(scale=0.3, size=(240, 8))
    x = np.vstack([x, rng.normal(scale=3, size=(30, 8))]).astype(np.float32)
    reference = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True).fit_predict(x)
    D, neighbours = knn_graph(x, len(x) - 1)  # the full graph: exact HDBSCAN
    ours = density_labels(D, neighbours, min_cluster_size=min_cluster_size, min_samples=min_samples, floor=0.0)
    assert reference.max() >= 5  # the data has structure to find
    assert same_partition(ours, reference)


def test_density_floor_keeps_large_people_whole_despite_near_duplicates():
    x, person = people([40, 30, 5, 5], strangers=20)
    x[41] = x[40] + 1e-4  # a near-duplicate pair inside person 1
    D, neighbours = knn_graph(x, 64)
    floored = density_labels(D, neighbours)
    for p in (0, 1):
        assert len(set(floored[person == p])) == 1 and floored[person == p][0] >= 0


def rms_radius(x: np.ndarray) -> float:
    return float(np.sqrt(((x - x.mean(axis=0)) ** 2).sum(axis=1).mean()))


def test_no_selected_cluster_is_wider_than_max_radius():
    x, person = people([12, 10, 8, 6, 5], strangers=10, seed=3)
    D, neighbours = knn_graph(x, 32)
    plain = density_labels(D, neighbours)
    assert max(rms_radius(x[plain == c]) for c in range(plain.max() + 1)) > 0.15  # the bound bites
    bounded = density_labels(D, neighbours, x=x, max_radius=0.15)
    assert (bounded >= 0).any()
    assert all(rms_radius(x[bounded == c]) <= 0.15 for c in range(bounded.max() + 1))


def assert_each_face_once(result, n):
    assert result.labels.shape == result.nearest.shape == result.distances.shape == (n,)
    members = result.labels >= 0
    assert set(result.labels[members]) == set(range(result.k))
    sizes = np.bincount(result.labels[members], minlength=result.k)
    assert (np.diff(sizes) <= 0).all()  # largest cluster first


@pytest.mark.parametrize("method", ["kmeans", "threshold"])
def test_cluster_faces_finds_people_and_strangers(method):
    x, person = people([12, 9, 7, 5], strangers=6)
    photos = np.arange(len(x))
    result = cluster_faces(x, photos, ClusterParams(method=method), SETTINGS)
    assert_each_face_once(result, len(x))
    assert result.k == 4
    assert same_partition(result.labels, np.where(person >= 0, person, -1))
    strangers = result.labels < 0
    centres = result.centres[result.nearest[strangers]]
    np.testing.assert_allclose(result.distances[strangers], np.linalg.norm(x[strangers] - centres, axis=1), rtol=1e-5)
    all_d = np.linalg.norm(x[strangers][:, None, :] - result.centres[None], axis=2)
    assert (result.nearest[strangers] == all_d.argmin(axis=1)).all()
    members = ~strangers
    np.testing.assert_allclose(
        result.distances[members],
        np.linalg.norm(x[members] - result.centres[result.labels[members]], axis=1),
        rtol=1e-5,
    )


def test_kmeans_with_given_k_and_automatic_k():
    x, person = people([15, 10, 8])
    photos = np.arange(len(x))
    given = cluster_faces(x, photos, ClusterParams(k=3), SETTINGS)
    assert same_partition(given.labels, person) and given.params["k_requested"] == 3
    auto = cluster_faces(x, photos, ClusterParams(), SETTINGS)
    assert auto.params["k_chosen"] == 3 and same_partition(auto.labels, person)


def test_kmeans_flags_a_face_forced_into_a_cluster():
    x, person = people([15, 10], strangers=1)
    result = cluster_faces(x, np.arange(len(x)), ClusterParams(k=2), SETTINGS)
    assert result.labels[-1] == -1 and result.nearest[-1] in (0, 1)
    assert result.distances[-1] > result.distances[:-1].max()
    assert (result.labels[:-1] >= 0).all()


def test_stranger_distance_from_the_request_sets_both_rules():
    x, _ = people([15, 10], strangers=3)
    loose = cluster_faces(x, np.arange(len(x)), ClusterParams(k=2, stranger_distance=5.0), SETTINGS)
    assert loose.stranger_count == 0 and loose.params["neighbour_distance"] == 5.0
    tight = cluster_faces(x, np.arange(len(x)), ClusterParams(k=2, stranger_distance=0.01), SETTINGS)
    assert tight.stranger_count == len(x) and tight.k == 0


@pytest.mark.parametrize("method", ["kmeans", "threshold"])
def test_two_faces_of_one_photo_never_share_a_cluster(method):
    x, person = people([10, 8])
    photos = np.arange(len(x))
    photos[3] = photos[4]  # faces 3 and 4 (both person 0) come from one photo
    photos[12] = photos[0]  # and faces 0 (person 0) and 12 (person 1) from another
    result = cluster_faces(x, photos, ClusterParams(method=method), SETTINGS)
    assert_each_face_once(result, len(x))
    for photo in np.unique(photos):
        labels = result.labels[(photos == photo) & (result.labels >= 0)]
        assert len(labels) == len(set(labels))
    assert (result.labels[[3, 4]] == -1).sum() == 1


@pytest.mark.parametrize("method", ["kmeans", "threshold"])
def test_cluster_faces_is_deterministic(method):
    x, _ = people([20, 12, 9, 4, 3], strangers=10, seed=5)
    photos = np.arange(len(x))
    a = cluster_faces(x, photos, ClusterParams(method=method, seed=3), SETTINGS)
    b = cluster_faces(x.copy(), photos, ClusterParams(method=method, seed=3), SETTINGS)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.nearest, b.nearest)
    np.testing.assert_array_equal(a.centres, b.centres)


def test_given_k_is_deterministic_for_a_seed():
    x, _ = people([6] * 12, seed=2)
    runs = [cluster_faces(x, np.arange(len(x)), ClusterParams(k=5, seed=7), SETTINGS) for _ in range(2)]
    assert np.array_equal(runs[0].labels, runs[1].labels)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (ClusterParams(k=0), "positive"),
        (ClusterParams(k=-3), "positive"),
        (ClusterParams(k=11), "larger than the number"),
        (ClusterParams(stranger_distance=-0.1), "stranger_distance"),
        (ClusterParams(neighbour_distance=float("nan")), "neighbour_distance"),
        (ClusterParams(method="threshold", threshold=-1.0), "threshold"),
        (ClusterParams(method="dbscan"), "unknown method"),
    ],
)
def test_bad_parameters_are_refused(params, message):
    x, _ = people([10])
    with pytest.raises(ValueError, match=message):
        cluster_faces(x, np.arange(10), params, SETTINGS)


@pytest.mark.parametrize("method", ["kmeans", "threshold"])
def test_no_faces_and_one_face(method):
    empty = cluster_faces(np.zeros((0, 128), np.float32), np.zeros(0, np.int64), ClusterParams(method=method), SETTINGS)
    assert empty.k == 0 and len(empty.labels) == 0
    one = cluster_faces(np.ones((1, 128), np.float32), np.zeros(1, np.int64), ClusterParams(method=method), SETTINGS)
    assert one.k == 0 and one.labels.tolist() == [-1] and one.nearest.tolist() == [-1]


def test_threshold_caps_the_longest_link():
    x, person = people([10, 10], seed=4)
    x[10:] = x[:10] + (x[10:] - x[:10]) * 0.5  # bring person 1 halfway to person 0
    photos = np.arange(len(x))
    free = cluster_faces(x, photos, ClusterParams(method="threshold"), SETTINGS)
    capped = cluster_faces(x, photos, ClusterParams(method="threshold", threshold=0.05), SETTINGS)
    assert free.k >= 1
    assert capped.k == 0 and capped.stranger_count == len(x)


def test_refine_never_raises_the_cost_and_matches_lloyd_on_clear_data():
    x, person = people([15, 10, 8, 6])
    D, neighbours = knn_graph(x, 16)
    start = np.stack([x[person == p][:2].mean(axis=0) for p in range(4)])
    exact = kmeans(x, 4, init=start)
    local = refine(x, start, neighbours)
    assert same_partition(local.labels, exact.labels)
    assert local.cost <= exact.cost * (1 + 1e-5)


def test_cost_curve_falls_with_k():
    x, _ = people([10, 10, 10, 10])
    curve = cost_curve(x, [1, 2, 4, 8], SETTINGS)
    costs = [c for _, c in curve]
    assert [k for k, _ in curve] == [1, 2, 4, 8]
    assert costs[0] > costs[1] > costs[2] >= costs[3] * 0.999
    assert costs[2] < costs[0] / 5  # the true k removes most of the cost
    with pytest.raises(ValueError):
        cost_curve(x, [0, 2], SETTINGS)
