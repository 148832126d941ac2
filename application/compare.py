"""Where two faces match: a similarity map over their aligned 150x150
chips (``GET /api/v1/faces/<a>/compare/<b>`` and ``.png``, the Compare page).

**Method: occlusion sensitivity.** Each chip is cut into a ``GRID`` x
``GRID`` grid of square cells (15 px at 10 a side); for every cell, a copy
of the chip with that cell filled with the chip's mean colour is encoded
(all copies of both chips in one batch: 2 x 100 + 2 chips, ~0.5-1 s with
the ONNX encoder on one core), and the Euclidean distance from the altered
face to the other face is compared with the distance between the two
unaltered faces. A cell whose hiding moves them *apart* (``delta`` > 0)
is a region that makes them alike; one whose hiding brings them
*together* (``delta`` < 0) makes them different.

Why occlusion: it asks the network itself, through the only thing the
product uses (the distance), with no gradient (the encoder is an ONNX
graph or dlib's own code) and no surrogate model; its cost is one batch.
Its limit: a cell is judged alone, so regions that matter only together
are underrated. Faithfulness is measured, not assumed
(``benchmarks/similarity_maps.py``, docs/explanations.md): hiding the
cells the map rates most alike must move the distance more than hiding as
many cells chosen at random.

The distance reported is the stored embeddings' (the one search uses);
``chip_distance`` is the unaltered chips' re-encoded, the baseline of the
map (equal within ~1e-3 when the file is unchanged and the encoder the
index's).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from application import photos
from indexer.model import CHIP_SIZE, Encoder
from indexer.store import FaceStore

GRID = 10  # cells a side: 15 px cells on the 150 px chip
PNG_SCALE = 2  # the picture shows each chip at 300x300
ALIKE = np.array([220, 40, 40], np.float32)  # red: hiding it moves the faces apart
DIFFERENT = np.array([40, 90, 220], np.float32)  # blue: hiding it brings them together


@dataclass(frozen=True)
class Comparison:
    """Two faces side by side. ``distance``: Euclidean between their stored
    embeddings; ``chip_distance``: between the chips re-encoded; ``map_a``,
    ``map_b``: (GRID, GRID) float arrays, the change of distance when that
    cell of that face is hidden (> 0: the cell makes them alike)."""

    face_a: int
    face_b: int
    distance: float
    chip_distance: float
    chip_a: np.ndarray
    chip_b: np.ndarray
    map_a: np.ndarray
    map_b: np.ndarray
    grid: int


def cell_masks(grid: int = GRID) -> np.ndarray:
    """(grid * grid, CHIP_SIZE, CHIP_SIZE) booleans, one cell each, row by row."""
    edges = np.linspace(0, CHIP_SIZE, grid + 1).round().astype(int)
    masks = np.zeros((grid * grid, CHIP_SIZE, CHIP_SIZE), dtype=bool)
    for r in range(grid):
        for c in range(grid):
            masks[r * grid + c, edges[r]:edges[r + 1], edges[c]:edges[c + 1]] = True
    return masks


def hidden(chip: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Copies of ``chip``, one per mask, with the masked pixels set to the chip's mean colour."""
    fill = chip.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
    out = np.repeat(chip[None], len(masks), axis=0)
    out[masks] = fill
    return out


def occlusion_maps(encoder: Encoder, chip_a: np.ndarray, chip_b: np.ndarray,
                   grid: int = GRID) -> tuple[float, np.ndarray, np.ndarray]:
    """(the chips' distance, map_a, map_b): each cell's change of Euclidean
    distance when it is hidden, both chips' cells encoded in one batch."""
    masks = cell_masks(grid)
    batch = np.concatenate([chip_a[None], chip_b[None], hidden(chip_a, masks), hidden(chip_b, masks)])
    vectors = encoder.encode_chips(batch).astype(np.float64)
    a, b = vectors[0], vectors[1]
    n = grid * grid
    base = float(np.linalg.norm(a - b))
    map_a = np.linalg.norm(vectors[2 : 2 + n] - b, axis=1) - base
    map_b = np.linalg.norm(vectors[2 + n :] - a, axis=1) - base
    return base, map_a.reshape(grid, grid), map_b.reshape(grid, grid)


def face_chip(store: FaceStore, encoder: Encoder, face_id: int, *, max_pixels: int) -> np.ndarray:
    """The aligned chip of an indexed face, cut from its file as indexed
    (``FaceNotFound``, ``PhotoUnavailable``)."""
    face, rgb = photos.face_pixels(store, face_id, max_pixels=max_pixels)
    return np.asarray(encoder.chips(rgb, [face.box])[0], dtype=np.uint8)


def compare_faces(store: FaceStore, encoder: Encoder, face_a: int, face_b: int, *, max_pixels: int,
                  grid: int = GRID) -> Comparison:
    """The two faces' distance and similarity maps (``FaceNotFound``, ``PhotoUnavailable``)."""
    chip_a = face_chip(store, encoder, face_a, max_pixels=max_pixels)
    chip_b = face_chip(store, encoder, face_b, max_pixels=max_pixels)
    stored = store.vectors_of(np.array([face_a, face_b], dtype=np.int64)).astype(np.float64)
    chip_distance, map_a, map_b = occlusion_maps(encoder, chip_a, chip_b, grid)
    return Comparison(face_a, face_b, round(float(np.linalg.norm(stored[0] - stored[1])), 4),
                      round(chip_distance, 4), chip_a, chip_b, map_a, map_b, grid)


def strongest_cells(comparison: Comparison, count: int = 3) -> dict[str, list[tuple[int, int, float]]]:
    """The ``count`` cells (row, column, change of distance) that make the faces
    most alike, and most different, over both faces' maps."""
    cells = [(side, r, c, float(m[r, c])) for side, m in (("a", comparison.map_a), ("b", comparison.map_b))
             for r in range(comparison.grid) for c in range(comparison.grid)]
    alike = sorted((x for x in cells if x[3] > 0), key=lambda x: -x[3])[:count]
    different = sorted((x for x in cells if x[3] < 0), key=lambda x: x[3])[:count]
    return {"alike": [(r, c, round(v, 4)) for _, r, c, v in alike],
            "different": [(r, c, round(v, 4)) for _, r, c, v in different]}


def comparison_png(comparison: Comparison) -> bytes:
    """Both chips side by side at ``PNG_SCALE`` times their size, each with
    its map over it (red: makes them alike; blue: makes them different;
    the stronger the more opaque, on one scale for both), and a caption."""
    size = CHIP_SIZE * PNG_SCALE
    gap, caption = 12, 44
    scale = max(float(np.abs(comparison.map_a).max()), float(np.abs(comparison.map_b).max()), 1e-6)
    canvas = Image.new("RGB", (2 * size + 3 * gap, size + 2 * gap + caption), (255, 255, 255))
    for i, (chip, heat) in enumerate(((comparison.chip_a, comparison.map_a), (comparison.chip_b, comparison.map_b))):
        canvas.paste(_overlay(chip, heat, scale, size), (gap + i * (size + gap), gap))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=13)
    draw.text((gap, size + gap + 4), f"Face {comparison.face_a} (left) and face {comparison.face_b} (right): "
              f"distance {comparison.distance:.3f}.", fill=(30, 30, 30), font=font)
    draw.text((gap, size + gap + 22), "Red: a region that makes them alike. Blue: one that makes them different.",
              fill=(30, 30, 30), font=font)
    out = io.BytesIO()
    canvas.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _overlay(chip: np.ndarray, heat: np.ndarray, scale: float, size: int) -> Image.Image:
    base = np.asarray(Image.fromarray(chip).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    strength = np.asarray(Image.fromarray((heat / scale).astype(np.float32), mode="F")
                          .resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
    alpha = np.clip(np.abs(strength), 0.0, 1.0)[..., None] * 0.65
    colour = np.where(strength[..., None] >= 0, ALIKE, DIFFERENT)
    return Image.fromarray((base * (1 - alpha) + colour * alpha).round().astype(np.uint8))
