"""Faithfulness of the similarity maps (``application.compare``): does hiding
the cells a map rates most alike move two faces apart more than hiding as
many cells chosen at random?

Pairs: LFW DevTrain's pairs file (``pairsDevTrain.txt``: 1,100 same-person
lines ``name n1 n2``, then 1,100 different-person lines
``name1 n1 name2 n2``), ``--pairs`` of each kind (default 150) taken evenly
along the file (A to Z). In each photo the face is YuNet's box
(``upsample=0``) whose centre is nearest the image centre (LFW's rule); a
pair with a photo where YuNet finds nothing is skipped (counted). The chips
are cut and encoded by the real model (``face_model``, the configured
encoder, one thread).

Per pair (a, b): ``occlusion_maps`` (timed: the product's whole map, both
faces, one batch), then the deletion curve of face a's map: a's cells are
ordered by ``map_a`` (*alike-first*: most positive first; *different-first*:
most negative first) and the top m cells are hidden together (the chip's
mean colour, as the map does) for m = 5, 10, 20 and 30% of the chip's cells
(rounded, at least one: 5, 10, 20, 30 cells at ``GRID`` 10); the measure is
the change of the Euclidean distance to b's unaltered chip. Baseline: the
same numbers of cells chosen at random (``--draws`` random orders per pair,
seeded by ``--seed``; their mean). All deletions of a pair, with both
unaltered chips, are encoded in one batch.

Reported for same-person and different-person pairs apart: the mean change
of distance at each m for alike-first, different-first and random (a
faithful map: alike-first > random > different-first, alike-first > 0 and
different-first < 0); the share of pairs where, at 10% of the cells,
alike-first moves the faces apart more than random and where
different-first brings them together more than random; the mean of the
single-cell map values of the hidden cells summed, beside the measured
change (how far the cells add up); the mean unaltered distance; and the
median time of one map (ms, both faces' maps).

``--grid`` takes one or more grid sizes (cells a side; ``GRID`` is 10, 15 px
cells): ``--grid 5 10 15 --pairs 50`` compares 30, 15 and 10 px cells on
the same pairs (at 5 and 15 the percentages round to whole cells; the
share of the chip hidden is reported).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.similarity_maps [--pairs 150] [--draws 5] [--seed 0]
    .venv/bin/python -m benchmarks.similarity_maps --grid 5 10 15 --pairs 50

Results: ``benchmarks/results/similarity_maps.json`` (only ``GRID``), or
``benchmarks/results/similarity_maps_grids.json`` (any other ``--grid``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from application.compare import GRID, cell_masks, hidden, occlusion_maps
from benchmarks.common import (
    DEFAULT_LFW,
    LFW_HINT,
    SHARED_DATA,
    now,
    print_table,
    require_dir,
    require_file,
    write_results,
)
from config.settings import load_settings
from indexer.images import decode_rgb
from indexer.model import Box, FaceModel, face_model, runtime_info

DEFAULT_PAIRS_FILE = SHARED_DATA / "lfw-meta" / "pairsDevTrain.txt"
FRACTIONS = (0.05, 0.10, 0.20, 0.30)  # of the chip's cells hidden
SHARE_AT = 0.10  # the step where the shares beating random are counted
ORDERS = ("alike-first", "different-first", "random")
KINDS = ("same", "different")


@dataclass(frozen=True)
class Pair:
    kind: str  # "same" or "different"
    a: str  # Person/Person_NNNN.jpg
    b: str


@dataclass
class Curves:
    """Per pair of one kind at one grid: change of distance per order and step."""

    base: list[float] = field(default_factory=list)
    change: dict[str, list[list[float]]] = field(default_factory=lambda: {o: [] for o in ORDERS})
    predicted: dict[str, list[list[float]]] = field(default_factory=lambda: {o: [] for o in ORDERS})
    map_seconds: list[float] = field(default_factory=list)


def read_pairs(path: Path, per_kind: int) -> list[Pair]:
    """``per_kind`` same-person and ``per_kind`` different-person pairs taken
    evenly along the file (all when 0 or more than it holds)."""
    same: list[Pair] = []
    different: list[Pair] = []
    for line in path.read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) == 3:
            name, n1, n2 = fields
            same.append(Pair("same", photo_name(name, n1), photo_name(name, n2)))
        elif len(fields) == 4:
            name1, n1, name2, n2 = fields
            different.append(Pair("different", photo_name(name1, n1), photo_name(name2, n2)))
    return spread(same, per_kind) + spread(different, per_kind)


def photo_name(person: str, number: str) -> str:
    return f"{person}/{person}_{int(number):04d}.jpg"


def spread(items: list[Pair], limit: int) -> list[Pair]:
    total = len(items)
    if limit <= 0 or limit >= total:
        return list(items)
    return [items[i * total // limit] for i in range(limit)]


class Chips:
    """The aligned chip of each LFW photo's central face, cut once."""

    def __init__(self, lfw: Path, model: FaceModel) -> None:
        self.lfw = lfw
        self.model = model
        self.cache: dict[str, np.ndarray | None] = {}

    def get(self, name: str) -> np.ndarray | None:
        if name not in self.cache:
            self.cache[name] = self._cut(name)
        return self.cache[name]

    def _cut(self, name: str) -> np.ndarray | None:
        path = self.lfw / name
        if not path.is_file():
            return None
        rgb = decode_rgb(path.read_bytes())
        boxes = self.model.detector("yunet").boxes(rgb, upsample=0)
        if not boxes:
            return None
        box = min(boxes, key=lambda b: centre_offset(b, rgb.shape[0], rgb.shape[1]))
        return np.asarray(self.model.encoder.chips(rgb, [box])[0], dtype=np.uint8)


def centre_offset(box: Box, height: int, width: int) -> float:
    dy = (box.top + box.bottom) / 2 - height / 2
    dx = (box.left + box.right) / 2 - width / 2
    return float(np.hypot(dx, dy))


def steps(grid: int) -> list[int]:
    """Cells hidden at each of ``FRACTIONS`` (half up, at least one)."""
    return [max(1, int(np.floor(f * grid * grid + 0.5))) for f in FRACTIONS]


def deletion_curves(model: FaceModel, chip_a: np.ndarray, chip_b: np.ndarray, map_a: np.ndarray,
                    counts: list[int], rng: np.random.Generator, draws: int
                    ) -> tuple[float, dict[str, list[float]], dict[str, list[float]]]:
    """(unaltered distance, measured change per order and step, summed map values per order and step);
    random: the mean over ``draws`` random orders. One encode for all deletions."""
    grid = map_a.shape[0]
    flat = map_a.reshape(-1)
    cells = cell_masks(grid)
    orders = [np.argsort(-flat, kind="stable"), np.argsort(flat, kind="stable")]
    orders += [rng.permutation(grid * grid) for _ in range(draws)]
    masks = np.stack([cells[order[:m]].any(axis=0) for order in orders for m in counts])
    batch = np.concatenate([chip_a[None], chip_b[None], hidden(chip_a, masks)])
    vectors = model.encoder.encode_chips(batch).astype(np.float64)
    base = float(np.linalg.norm(vectors[0] - vectors[1]))
    change = (np.linalg.norm(vectors[2:] - vectors[1], axis=1) - base).reshape(len(orders), len(counts))
    summed = np.array([[flat[order[:m]].sum() for m in counts] for order in orders])
    measured = {"alike-first": change[0].tolist(), "different-first": change[1].tolist(),
                "random": change[2:].mean(axis=0).tolist()}
    predicted = {"alike-first": summed[0].tolist(), "different-first": summed[1].tolist(),
                 "random": summed[2:].mean(axis=0).tolist()}
    return base, measured, predicted


def run_grid(model: FaceModel, chips: Chips, pairs: list[Pair], grid: int, draws: int, seed: int
             ) -> dict[str, Curves]:
    rng = np.random.default_rng(seed)
    counts = steps(grid)
    curves = {kind: Curves() for kind in KINDS}
    started = now()
    for i, pair in enumerate(pairs, 1):
        chip_a, chip_b = chips.get(pair.a), chips.get(pair.b)
        if chip_a is None or chip_b is None:
            continue
        t0 = now()
        _, map_a, _ = occlusion_maps(model.encoder, chip_a, chip_b, grid)
        curve = curves[pair.kind]
        curve.map_seconds.append(now() - t0)
        base, measured, predicted = deletion_curves(model, chip_a, chip_b, map_a, counts, rng, draws)
        curve.base.append(base)
        for order in ORDERS:
            curve.change[order].append(measured[order])
            curve.predicted[order].append(predicted[order])
        if i % 25 == 0:
            print(f"  grid {grid}: {i}/{len(pairs)} pairs ({now() - started:.0f} s)", flush=True)
    return curves


def summarise(curve: Curves, counts: list[int], grid: int) -> dict:
    at = FRACTIONS.index(SHARE_AT)
    change = {o: np.array(curve.change[o]).reshape(-1, len(counts)) for o in ORDERS}
    predicted = {o: np.array(curve.predicted[o]).reshape(-1, len(counts)) for o in ORDERS}
    n = len(curve.base)
    return {
        "pairs": n,
        "cells_hidden": counts,
        "share_of_chip_hidden": [round(m / (grid * grid), 4) for m in counts],
        "mean_distance": float(np.mean(curve.base)) if n else float("nan"),
        "mean_change": {o: change[o].mean(axis=0).tolist() if n else [] for o in ORDERS},
        "mean_summed_map": {o: predicted[o].mean(axis=0).tolist() if n else [] for o in ORDERS},
        "alike_first_beats_random": float(np.mean(change["alike-first"][:, at] > change["random"][:, at]))
        if n else float("nan"),
        "different_first_beats_random": float(np.mean(change["different-first"][:, at] < change["random"][:, at]))
        if n else float("nan"),
        "map_ms_median": statistics.median(curve.map_seconds) * 1000.0 if n else float("nan"),
    }


def print_grid(grid: int, summary: dict[str, dict]) -> None:
    for kind in KINDS:
        s = summary[kind]
        headers = ["order"] + [f"{m} cell{'' if m == 1 else 's'} ({p:.0%})"
                               for m, p in zip(s["cells_hidden"], s["share_of_chip_hidden"])]
        rows = [[order] + [float(v) for v in s["mean_change"][order]] for order in ORDERS]
        rows += [[f"{order}: sum of its cells' map"] + [float(v) for v in s["mean_summed_map"][order]]
                 for order in ("alike-first", "different-first")]
        print_table(headers, rows, title=f"Grid {grid} ({150 // grid} px cells), {kind}-person pairs "
                    f"(n={s['pairs']}, mean distance {s['mean_distance']:.3f}): mean change of distance")
    print_table(
        ["measure", *KINDS],
        [
            ["pairs", *(summary[k]["pairs"] for k in KINDS)],
            ["mean distance", *(summary[k]["mean_distance"] for k in KINDS)],
            [f"alike-first moves apart more than random ({SHARE_AT:.0%})",
             *(summary[k]["alike_first_beats_random"] for k in KINDS)],
            [f"different-first brings closer than random ({SHARE_AT:.0%})",
             *(summary[k]["different_first_beats_random"] for k in KINDS)],
            ["map time, median ms (both faces)", *(summary[k]["map_ms_median"] for k in KINDS)],
        ],
        title=f"Grid {grid}: shares of pairs beating random, and map time",
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW DevTrain folder")
    parser.add_argument("--pairs-file", type=Path, default=DEFAULT_PAIRS_FILE, help="LFW pairsDevTrain.txt")
    parser.add_argument("--pairs", type=int, default=150, help="pairs of each kind, taken evenly (0: all)")
    parser.add_argument("--grid", type=int, nargs="+", default=[GRID], help="cells a side (one or more)")
    parser.add_argument("--draws", type=int, default=5, help="random orders per pair for the baseline")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if any(g < 2 or g > 150 for g in args.grid) or args.draws < 1:
        parser.error("--grid must be 2-150 and --draws at least 1")
    return args


def main() -> None:
    args = parse_args()
    lfw = require_dir(args.lfw, "LFW DevTrain", LFW_HINT)
    pairs_file = require_file(args.pairs_file, "LFW pairs file", " (give its location with --pairs-file FILE)")
    pairs = read_pairs(pairs_file, args.pairs)
    model = face_model(load_settings().encoding)
    chips = Chips(lfw, model)
    started = now()
    usable = [p for p in pairs if chips.get(p.a) is not None and chips.get(p.b) is not None]
    print(f"{len(pairs)} pairs, {len(usable)} with a face in both photos "
          f"({len(chips.cache)} photos cut in {now() - started:.1f} s)", flush=True)
    if not usable:
        print("error: no usable pair", file=sys.stderr)
        raise SystemExit(1)
    results = {}
    for grid in args.grid:
        t0 = now()
        curves = run_grid(model, chips, usable, grid, args.draws, args.seed)
        summary = {kind: summarise(curves[kind], steps(grid), grid) for kind in KINDS}
        summary["seconds"] = now() - t0
        print_grid(grid, summary)
        print(f"grid {grid}: {summary['seconds']:.0f} s")
        results[str(grid)] = summary
    command = " ".join(["python -m benchmarks.similarity_maps", *sys.argv[1:]])
    print(f"\ncommand: {command}")
    name = "similarity_maps" if args.grid == [GRID] else "similarity_maps_grids"
    write_results(name, {
        "command": command, "lfw": lfw, "pairs_file": pairs_file, "pairs_per_kind": args.pairs,
        "pairs_skipped": len(pairs) - len(usable), "draws": args.draws, "seed": args.seed,
        "fractions": FRACTIONS, "share_at": SHARE_AT, "model": runtime_info(model), "grids": results,
        "seconds": now() - started,
    })


if __name__ == "__main__":
    main()
