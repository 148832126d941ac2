"""The similarity map is faithful on real chips: hiding the cells it rates
most alike moves two faces apart more than hiding as many cells at random
(the deletion test of ``benchmarks/similarity_maps.py``, on tests/data's
LFW photos with the real model)."""

from __future__ import annotations

import numpy as np
import pytest

from application.compare import cell_masks, hidden, occlusion_maps
from indexer.images import decode_rgb
from tests.helpers import lfw_photo

PEOPLE = ["Colin_Powell", "George_W_Bush", "Serena_Williams", "Tony_Blair", "Vladimir_Putin"]
HIDE = 10  # cells of 100: a tenth of the chip
DRAWS = 8


def chip(model, person: str, n: int) -> np.ndarray:
    rgb = decode_rgb(lfw_photo(person, n).read_bytes())
    box = max(model.detector("yunet").boxes(rgb, upsample=0), key=lambda b: b.area)
    return model.encoder.chips(rgb, [box])[0]


def distance_after_hiding(model, a: np.ndarray, b: np.ndarray, cells: list[np.ndarray]) -> np.ndarray:
    """The distance from ``a`` with each set of cells hidden to ``b``."""
    masks = cell_masks()
    batch = np.stack([hidden(a, masks[c].any(axis=0, keepdims=True))[0] for c in cells] + [b])
    vectors = model.encoder.encode_chips(batch)
    return np.linalg.norm(vectors[:-1] - vectors[-1], axis=1)


@pytest.mark.parametrize("same", [True, False], ids=["same person", "different people"])
def test_hiding_the_cells_the_map_rates_highest_moves_the_distance_more_than_random(real_model, same):
    """Same person: hiding the cells rated most alike moves the faces apart
    more than random cells do. Different people: hiding those rated most
    different brings them together more than random cells do."""
    rng = np.random.default_rng(0)
    sign = 1.0 if same else -1.0
    gains = []
    for i, person in enumerate(PEOPLE):
        other = person if same else PEOPLE[(i + 1) % len(PEOPLE)]
        a, b = chip(real_model, person, 1), chip(real_model, other, 2)
        base, map_a, _ = occlusion_maps(real_model.encoder, a, b)
        top = np.argsort(-sign * map_a.ravel(), kind="stable")[:HIDE]
        randoms = [rng.choice(100, HIDE, replace=False) for _ in range(DRAWS)]
        after = distance_after_hiding(real_model, a, b, [top, *randoms])
        gains.append((sign * (after[0] - base), sign * float(np.mean(after[1:]) - base)))
    by_map, at_random = np.array(gains).T
    # On every pair, the map's cells move the distance its way more than random ones.
    assert (by_map > at_random).all() and (by_map > 0).all(), gains
    assert by_map.mean() > 2 * max(at_random.mean(), 0.0), gains
