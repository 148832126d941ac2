"""Whichever dlib build runs (the ``dlib-bin`` wheel, or dlib built from
source with OpenBLAS by ``make install FAST=1``), it gives the embeddings
stored in ``tests/data/reference_embeddings.json`` (computed once with
dlib-bin) to 1e-4, so an index made with one build is searchable with the
other; and an indexing worker runs every BLAS/OpenMP library with 1 thread.

Regenerate the reference (only with dlib-bin installed)::

    .venv/bin/python -m tests.model.test_model_build
"""

from __future__ import annotations

import json
import multiprocessing
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer import model
from indexer.images import decode_rgb
from indexer.model import Box
from tests.helpers import DATA, LFW_PEOPLE, lfw_photo

pytestmark = pytest.mark.model

REFERENCE = DATA / "reference_embeddings.json"
HOG, ENCODER = model.DlibDetector("hog"), model.OnnxEncoder()
TOLERANCE = 1e-4  # max abs difference per component (embeddings are ~0.1 in size)
GROUP = DATA / "group" / "bbt3.jpg"


def reference_photos() -> list[Path]:
    """The 15 LFW photos (one main face each) and the 5-face group photo."""
    return [lfw_photo(p, n) for p in LFW_PEOPLE for n in (1, 2, 3)] + [GROUP]


def compute(photos: list[Path]) -> dict[str, dict]:
    """For each photo (by its path under tests/data): the HOG boxes at
    upsample 1 and their embeddings, both sorted by box."""
    out = {}
    for path in photos:
        rgb = decode_rgb(path.read_bytes())
        boxes = sorted(HOG.boxes(rgb, upsample=1))
        out[path.relative_to(DATA).as_posix()] = {
            "boxes": [list(b) for b in boxes],
            "embeddings": [[float(f"{x:.9g}") for x in row] for row in ENCODER.embeddings(rgb, boxes).tolist()],
        }
    return out


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


def test_reference_covers_the_photos(reference):
    assert sorted(reference["photos"]) == sorted(p.relative_to(DATA).as_posix() for p in reference_photos())
    assert sum(len(v["boxes"]) for v in reference["photos"].values()) == 20


def test_embeddings_match_the_reference(reference):
    """The descriptor, on the reference boxes, is the same to 1e-4."""
    worst = 0.0
    for name, ref in reference["photos"].items():
        rgb = decode_rgb((DATA / name).read_bytes())
        boxes = [Box(*b) for b in ref["boxes"]]
        got = ENCODER.embeddings(rgb, boxes)
        diff = float(np.abs(got - np.asarray(ref["embeddings"], dtype=np.float32)).max())
        assert diff <= TOLERANCE, f"{name}: max abs difference {diff:.2e} ({model.dlib_info()})"
        worst = max(worst, diff)
    print(f"max abs difference to the dlib-bin reference: {worst:.2e} ({model.dlib_info()['distribution']})")


def test_detection_matches_the_reference(reference):
    """HOG finds the same boxes (the build flags change no detection here)."""
    for name, ref in reference["photos"].items():
        rgb = decode_rgb((DATA / name).read_bytes())
        assert sorted(list(b) for b in HOG.boxes(rgb, upsample=1)) == ref["boxes"], name


def test_dlib_info_says_which_build():
    info = model.dlib_info()
    assert isinstance(info["version"], str) and info["version"]
    assert info["distribution"] in ("dlib-bin", "dlib"), f"dlib-bin and dlib installed over each other: {info}"
    assert isinstance(info["blas"], bool) and isinstance(info["avx"], bool) and isinstance(info["cuda"], bool)
    if info["distribution"] == "dlib-bin":
        assert info["blas"] is False  # the prebuilt wheel has no BLAS
    else:
        assert info["blas"] is True  # what the source build is for


def _worker_threads() -> list[dict]:
    from threadpoolctl import threadpool_info

    return threadpool_info()


def test_indexing_workers_run_one_blas_thread(settings):
    """A pool process set up like indexing's (spawn + ``init_worker``) has
    every BLAS and OpenMP library it loaded (numpy's, FAISS's, dlib's own in
    a BLAS build) at 1 thread."""
    from indexer.worker import init_worker

    context = multiprocessing.get_context("spawn")
    initargs = (settings.model_dump_json(), model.face_model(settings.encoding))
    with context.Pool(1, initializer=init_worker, initargs=initargs) as pool:
        pools = pool.apply(_worker_threads)
    assert pools, "threadpoolctl found no BLAS/OpenMP library"
    assert {(p["filepath"], p["num_threads"]) for p in pools if p["num_threads"] != 1} == set()
    if model.dlib_info()["blas"]:
        # dlib's OpenBLAS is a library of its own (not numpy's scipy_openblas).
        assert any(p["internal_api"] == "openblas" and "scipy_openblas" not in p["filepath"] for p in pools), pools


def write_reference() -> None:
    info = model.dlib_info()
    if info["distribution"] != "dlib-bin":
        sys.exit(f"the reference is made with dlib-bin; this is {info}")
    head = {
        "what": "dlib HOG boxes (upsample 1) and embeddings of tests/data photos, see tests/model/test_model_build.py",
        "dlib": f"dlib-bin {info['distribution_version']}",
        "model": model.MODEL_NAME,
    }
    photos = compute(reference_photos())
    lines = [json.dumps(head)[:-1] + ', "photos": {']  # one photo a line
    lines += [f"{json.dumps(name)}: {json.dumps(value)}," for name, value in photos.items()]
    lines[-1] = lines[-1][:-1]
    REFERENCE.write_text("\n".join(lines) + "\n}}\n")
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    write_reference()
