"""An approximate index beside the exact one, for top-k searches in large
collections: FAISS ``IVF{lists},PQ64x4fs`` (inverted lists of 4-bit
product-quantized residuals scanned with SIMD lookups: 32 bytes and an id
per face) whose candidates are re-ranked by their exact float32 distances
(``FlatL2Index.search``).

Trade-off, measured at 1M faces that look like real ones
(``benchmarks/ann.py``): the exact search reads every face's 8-bit copy
(~6 ms a query); this one reads the ``nprobe`` lists nearest the query (a
few per cent of the faces), so it is several times faster, but a face whose
list was not read is missed. Only top-k searches use it: range searches
(recall, erasure by probe) stay exact.

The file lives in each generation (``faces.ann.faiss``) and is built when the
generation is sealed, from the generation's own vectors, so it never holds a
face the generation does not. The trained part (list centres, PQ
codebooks) is kept from the previous generation while the collection is
within ``retrain_growth`` times the size it was trained on, and trained
again otherwise, and always after an erasure (a list of one face has that
face as its centre): rebuilding the lists of 1M faces with trained centres
takes 11 s, training 32 s.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from config.settings import IndexSettings
from indexer.store.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

ANN_FILE = "faces.ann.faiss"
# Faces used to train each list centre (FAISS warns below 39).
TRAIN_PER_LIST = 64
MIN_LISTS = 16
# Lists read per query when ``nprobe`` is 0: at 1M LFW-like faces (4000
# lists) an eighth gives recall@10 0.99 (``benchmarks/ann.py``).
DEFAULT_PROBE_SHARE = 1 / 8
# Fewer faces cannot train the 4-bit codes (16 centres each); exact search
# is instant there anyway.
MIN_FACES = 16


@dataclass(frozen=True)
class AnnPlan:
    """When and how the indexer builds the approximate index (see
    ``config.settings.IndexSettings``)."""

    min_faces: int  # build it from this many faces; below, remove it
    lists: int = 0  # inverted lists; 0: 4 sqrt(faces) when trained
    retrain_growth: float = 2.0  # train again past this factor of growth or shrinkage
    # Train again whatever the size: after an erasure, since list centres and
    # codebooks trained with the erased faces can hold them (a list of one
    # face has it as its centre).
    retrain: bool = False

    def trainable_lists(self, faces: int) -> int:
        """The lists to train for ``faces``: ``lists`` (else 4 sqrt(faces)),
        at most one per TRAIN_PER_LIST faces."""
        wanted = self.lists or max(MIN_LISTS, int(4 * math.sqrt(faces)))
        return min(wanted, max(1, faces // TRAIN_PER_LIST))

    @classmethod
    def from_settings(cls, settings: IndexSettings) -> AnnPlan | None:
        """The indexer's plan: None (no approximate index) for exact search."""
        if settings.search == "exact":
            return None
        min_faces = settings.approximate_from_faces if settings.search == "auto" else 1
        return cls(min_faces=min_faces, lists=settings.lists, retrain_growth=settings.retrain_growth)

    @classmethod
    def same_as(cls, entry: dict[str, Any] | None) -> AnnPlan | None:
        """A plan that rebuilds what a generation had (its manifest's ``ann``
        entry), with as many lists, trained again on the faces left: an
        erasure (or a repair) keeps the kind of index, whatever the settings."""
        factory = entry.get("factory") if isinstance(entry, dict) else None
        if not isinstance(factory, str):
            return None
        lists = factory.split(",")[0].removeprefix("IVF")
        return cls(min_faces=1, lists=int(lists) if lists.isdigit() else 0, retrain=True)

    def fits(self, faces: int) -> bool:
        """Whether a collection of ``faces`` gets an approximate index."""
        return faces >= max(self.min_faces, MIN_FACES)


def factory_string(lists: int) -> str:
    return f"IVF{lists},PQ64x4fs"


def refresh(
    data_dir: Path, ids: np.ndarray, x: np.ndarray, plan: AnnPlan | None, previous_entry: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Write ``data_dir/ANN_FILE`` for exactly these faces (``ids`` int64,
    ``x`` float32 (n, d)), or remove it (``plan`` None, or fewer faces than
    it asks for or than ``MIN_FACES``). ``previous_entry`` is what this
    function returned for the file there now (the manifest's ``ann``).
    Returns the manifest entry (factory, faces, trained_faces), None when
    there is no approximate index."""
    path = Path(data_dir) / ANN_FILE
    if plan is None or not plan.fits(len(ids)):
        path.unlink(missing_ok=True)
        return None
    previous = None if plan.retrain else _read(path, previous_entry)
    trained_faces = int(previous.trained_faces) if previous is not None else 0
    reuse = (
        previous is not None
        and previous.factory == factory_string(previous.nlist)  # not another kind of index
        and (plan.lists == 0 or previous.nlist == plan.trainable_lists(trained_faces))
        and trained_faces / plan.retrain_growth <= len(ids) <= trained_faces * plan.retrain_growth
    )
    if reuse and previous is not None:
        index = previous.index
        index.reset()
    else:
        lists = plan.trainable_lists(len(ids))
        index = faiss.index_factory(x.shape[1], factory_string(lists))
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.max_points_per_centroid = TRAIN_PER_LIST
        rng = np.random.default_rng(0)
        wanted = lists * TRAIN_PER_LIST
        sample = x if len(x) <= wanted else x[np.sort(rng.choice(len(x), wanted, replace=False))]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        trained_faces = len(ids)
        log.info("trained %s on %d of %d faces", factory_string(lists), len(sample), len(ids))
    index.add_with_ids(np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64))
    atomic_write_bytes(path, faiss.serialize_index(index).tobytes())
    return {"factory": factory_string(faiss.extract_index_ivf(index).nlist), "faces": int(index.ntotal),
            "trained_faces": trained_faces}


@dataclass
class _Stored:
    index: faiss.Index
    nlist: int
    trained_faces: int
    factory: str | None  # as the manifest recorded it


def _read(path: Path, entry: dict[str, Any] | None) -> _Stored | None:
    if not path.exists():
        return None
    try:
        index = faiss.deserialize_index(np.fromfile(path, dtype=np.uint8))
        ivf = faiss.extract_index_ivf(index)
    except Exception as exc:  # a damaged file is rebuilt, never fatal
        log.warning("ignoring the approximate index %s (%s): it is built again", path, exc)
        return None
    entry = entry if isinstance(entry, dict) else {}
    trained = entry.get("trained_faces")
    return _Stored(index, int(ivf.nlist), int(trained) if isinstance(trained, int) else int(index.ntotal),
                   entry.get("factory"))


class AnnIndex:
    """A loaded approximate index, searched with ``nprobe`` lists (0: an
    eighth of them, ``DEFAULT_PROBE_SHARE``)."""

    def __init__(self, index: faiss.Index, nprobe: int) -> None:
        self.index = index
        self.ivf = faiss.extract_index_ivf(index)
        nlist = int(self.ivf.nlist)
        self.ivf.nprobe = max(1, min(int(nprobe) or round(nlist * DEFAULT_PROBE_SHARE), nlist))

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def description(self) -> str:
        return f"{factory_string(int(self.ivf.nlist))} nprobe {int(self.ivf.nprobe)}"

    @classmethod
    def load(cls, data_dir: Path, nprobe: int) -> AnnIndex | None:
        """The generation's approximate index, or None where it has none."""
        path = Path(data_dir) / ANN_FILE
        if not path.exists():
            return None
        return cls(faiss.deserialize_index(np.fromfile(path, dtype=np.uint8)), nprobe)

    def ids(self) -> np.ndarray:
        """Every id it holds, int64, sorted."""
        invlists = self.ivf.invlists
        assert invlists is not None  # an IVF index always has its lists
        parts = [
            faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
            for i in range(int(self.ivf.nlist)) if invlists.list_size(i)
        ]
        return np.sort(np.concatenate(parts).astype(np.int64)) if parts else np.zeros(0, np.int64)

    def candidates(self, x: np.ndarray, n: int) -> np.ndarray:
        """Up to ``n`` ids per query (approximately nearest first; -1 past
        the end), int64 (len(x), n)."""
        ids: np.ndarray = self.index.search(x, n)[1]
        return ids
