"""PNG pictures of a clustering, drawn with Pillow: a contact sheet of face
thumbnails per cluster, and a chart of the k-means cost curve."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

CELL = 72  # pixels, one thumbnail's square on the contact sheet
GAP = 4
TEXT = 14  # pixels, a line of text
BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)
MUTED = (120, 120, 120)
ACCENT = (200, 40, 40)
LINE = (40, 90, 180)


@dataclass(frozen=True)
class SheetRow:
    """One row of the contact sheet: a label and the faces to show, in order."""

    label: str
    face_ids: list[int]


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=12)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _thumbnail(jpeg: bytes | None) -> Image.Image:
    """The face crop fitted into a CELL square; a grey square when it is missing."""
    cell = Image.new("RGB", (CELL, CELL), (220, 220, 220))
    if jpeg is None:
        return cell
    with Image.open(io.BytesIO(jpeg)) as stored:
        face = stored.convert("RGB")
        face.thumbnail((CELL, CELL))
        cell.paste(face, ((CELL - face.width) // 2, (CELL - face.height) // 2))
    return cell


def contact_sheet(
    title: str,
    rows: list[SheetRow],
    thumbnail: Callable[[int], bytes | None],
    *,
    max_per_row: int,
    notes: list[str],
) -> bytes:
    """A PNG with ``title`` on top, then per row its label over its face
    thumbnails (``thumbnail(face_id)`` gives the stored JPEG), then ``notes``
    (what was left out) at the bottom."""
    font = _font()
    width = max(GAP + max_per_row * (CELL + GAP), 640)
    row_height = TEXT + GAP + CELL + 2 * GAP
    height = GAP + TEXT + 2 * GAP + len(rows) * row_height + len(notes) * (TEXT + GAP) + GAP
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((GAP, GAP), title, fill=INK, font=font)
    y = GAP + TEXT + 2 * GAP
    for row in rows:
        draw.text((GAP, y), row.label, fill=INK, font=font)
        for i, face_id in enumerate(row.face_ids):
            image.paste(_thumbnail(thumbnail(face_id)), (GAP + i * (CELL + GAP), y + TEXT + GAP))
        y += row_height
    for note in notes:
        draw.text((GAP, y), note, fill=ACCENT, font=font)
        y += TEXT + GAP
    return _png(image)


def _nice_step(span: float, ticks: int) -> float:
    """A round tick spacing (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks."""
    raw = span / max(ticks, 1)
    power: float = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def cost_chart(points: list[tuple[int, float]], chosen_k: int | None, *, width: int = 800, height: int = 480) -> bytes:
    """A PNG line chart of the k-means cost (sum of squared Euclidean
    distances) against k, with ``chosen_k`` marked when it is in range."""
    font = _font()
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    title = "k-means cost: sum of squared Euclidean distances to the centres"
    draw.text((GAP * 2, GAP * 2), title, fill=INK, font=font)
    left, right, top, bottom = 80, width - 30, 40, height - 50
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=INK)
    draw.text(((left + right) // 2, bottom + 28), "k", fill=INK, font=font)
    if not points:
        draw.text((left + 20, (top + bottom) // 2), "no faces: nothing to plot", fill=MUTED, font=font)
        return _png(image)

    ks = [k for k, _ in points]
    k_lo, k_hi = min(ks), max(ks)
    if k_hi == k_lo:
        k_lo, k_hi = k_lo - 1, k_hi + 1
    y_hi = max(cost for _, cost in points) * 1.05 or 1.0

    def x_of(k: float) -> float:
        return left + (k - k_lo) / (k_hi - k_lo) * (right - left)

    def y_of(cost: float) -> float:
        return bottom - cost / y_hi * (bottom - top)

    y_step = _nice_step(y_hi, 5)
    for i in range(int(y_hi / y_step) + 1):
        value = i * y_step
        draw.line([(left - 4, y_of(value)), (left, y_of(value))], fill=INK)
        draw.text((GAP, y_of(value) - 6), f"{value:.4g}", fill=INK, font=font)
    k_step = max(1, round(_nice_step(k_hi - k_lo, 10)))
    for k in range(math.ceil(k_lo / k_step) * k_step, k_hi + 1, k_step):
        draw.line([(x_of(k), bottom), (x_of(k), bottom + 4)], fill=INK)
        draw.text((x_of(k) - 6, bottom + 8), str(k), fill=INK, font=font)

    if chosen_k is not None and k_lo <= chosen_k <= k_hi:
        x = x_of(chosen_k)
        for y in range(top, bottom, 8):
            draw.line([(x, y), (x, min(y + 4, bottom))], fill=ACCENT)
        draw.text((x + 4, top), f"chosen k = {chosen_k}", fill=ACCENT, font=font)

    xy = [(x_of(k), y_of(cost)) for k, cost in points]
    if len(xy) > 1:
        draw.line(xy, fill=LINE, width=2)
    for px, py in xy:
        draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=LINE)
    return _png(image)
