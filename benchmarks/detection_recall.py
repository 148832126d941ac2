"""Face detection recall by face size, and false positives per image: YuNet
(``score_threshold`` 0.5 to 0.9, boxes handed over from its landmarks, as
the indexer uses it) against dlib's HOG (upsample 1), side by side.

Synthetic group scenes, so that every face's box is known (``--scenes``
of them, 640x480 to 800x600, fixed ``--seed``):

* Faces: the first photo of LFW DevTrain people spread from A to Z (taken
  in a seeded random order; each photo used once). HOG (upsample 1) is run
  on the 250x250 original and its box nearest the centre is the face
  (photos where it finds none are skipped); the box plus a margin of 50% of
  its size on each side (clipped to the photo) is cropped, resized so that
  the face box is S pixels high (Lanczos) and pasted, hard-edged, at a
  random place where it overlaps no other pasted crop. The ground truth is
  where the face box lands. S is drawn uniformly within a size band: 16-20,
  20-30, 30-50, 50-100, 100-200 or 200-300 px. Each scene holds 3 to 8
  faces: one of 200-300 or 100-200 px (alternately), the rest from the five
  bands below 200 px; a face that does not fit is dropped.
* Backgrounds: most are procedural textures (colour gradients, blurred
  multi-scale noise, pixel noise, stripes, random rectangles/ellipses/lines,
  sometimes two blended), which hold no face by construction. A fraction
  (``--photo-backgrounds``) are crops of the photos under
  ``../shared/data/photos`` (one copy of each, at most 1600 px long) that
  avoid every face HOG (upsample 1) or YuNet (threshold 0.5) finds there,
  each face box grown by 75% of its size on every side; the crop is resized
  to the scene. A face neither detector finds in the photo could still be
  in such a crop (those of the default run were looked at, ``--save-scenes``:
  none was seen).

Scoring, per scene and detector: detections and ground-truth boxes are
matched one-to-one, greedily by IoU (``indexer.tracks.iou``), at IoU >= 0.5:
a matched face is found (recall per band, and over all faces >= 20 px; also
at IoU >= 0.3, to show how much of a miss is the box's placement). A
detection that matches nothing is *ignored* when more than half of its area
lies inside a pasted crop (the crop's margin can hold part of a second
person from the LFW photo, or the box is a loose/duplicate box of the
pasted face), otherwise it is a false positive (counted apart: false
positives on photo backgrounds, and those that still touch a pasted crop,
e.g. a half face cut by the crop's edge). Times: mean ms per scene per
detector, one thread, one scene at a time (~0.3 s per scene in all, with
the LFW photos' HOG: the default 300 scenes take ~2 minutes).

Real group photos (no ground truth): ``bbt1-5.jpg`` and ``faces.jpg`` (the
same file as ``bbt4.jpg``) from face-api.js, and the photos of
``face_recognition/labels.csv`` whose face count is neither 1 nor
"partial" (group photos, and photos that may hold other people), at most 1600 px long (the indexer's
``detection.max_side``): the boxes each detector finds, and how many of
HOG's boxes YuNet also finds (IoU >= 0.3, one-to-one).

The target: recall >= 0.95 for faces >= 20 px and <= 0.05 false positives
per image.

Run::

    .venv/bin/python -m benchmarks.detection_recall [--scenes 300] [--photo-backgrounds 0.2] [--save-scenes DIR]

Results: ``benchmarks/results/detection_recall.json``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from benchmarks.common import (
    DEFAULT_LFW,
    LFW_HINT,
    SHARED_DATA,
    print_table,
    require_dir,
    spread_subset,
    verdict,
    write_results,
)
from indexer.faces import detection_scale
from indexer.images import ImageError, decode_rgb
from indexer.model import Box, DlibDetector
from indexer.model.yunet import YunetDetector
from indexer.tracks import iou

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
HOG = "hog (upsample 1)"
BANDS = ((16, 20), (20, 30), (30, 50), (50, 100), (100, 200), (200, 300))
LARGE_BANDS = ((200, 300), (100, 200))  # one face of these per scene, alternately
SMALL_BANDS = BANDS[:5]
MIN_RECALL_SIZE = 20
MATCH_IOU, LOOSE_IOU, REAL_IOU = 0.5, 0.3, 0.3
MARGIN = 0.5  # of the face box's size, on each side of the pasted crop
FACES_PER_SCENE = (3, 8)
MAX_SIDE = 1600  # detection.max_side, for the real photos
TARGET_RECALL, TARGET_FP = 0.95, 0.05
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}
REAL_PHOTOS = [f"bbt/examples/images/bbt{i}.jpg" for i in range(1, 6)] + ["bbt/test/images/faces.jpg"]
FACE_EXCLUSION = 0.75  # a background crop stays this many face sizes away from a found face


def band_name(band: tuple[int, int]) -> str:
    return f"{band[0]}-{band[1]}"


@dataclass
class LfwFace:
    """A face cut out of an LFW photo: the crop (face box plus margin) and
    the face box inside it."""

    name: str
    crop: np.ndarray
    box: Box  # in the crop's pixels


@dataclass
class Scene:
    rgb: np.ndarray
    background: str  # "texture" or "photo"
    truth: list[Box]
    sizes: list[float]  # the drawn S of each face
    regions: list[Box]  # each face's pasted crop


def lfw_faces(lfw: Path, count: int, rng: np.random.Generator, hog: DlibDetector) -> Iterator[LfwFace]:
    """Faces from the first photo of ``count`` people spread from A to Z, in
    a random order; photos where HOG finds no face are skipped."""
    people = spread_subset(sorted(p for p in lfw.iterdir() if p.is_dir()), count)
    for index in rng.permutation(len(people)).tolist():
        photos = sorted(people[index].glob("*.jpg"))
        if not photos:
            continue
        rgb = np.asarray(Image.open(photos[0]).convert("RGB"))
        found = hog.boxes(rgb, upsample=1)
        if not found:
            continue
        height, width = rgb.shape[:2]
        face = min(found, key=lambda b: ((b.left + b.right - width) / 2) ** 2 + ((b.top + b.bottom - height) / 2) ** 2)
        mx, my = MARGIN * face.width, MARGIN * face.height
        left, top = max(0, int(face.left - mx)), max(0, int(face.top - my))
        right, bottom = min(width, int(np.ceil(face.right + mx))), min(height, int(np.ceil(face.bottom + my)))
        yield LfwFace(photos[0].stem, rgb[top:bottom, left:right],
                      Box(face.top - top, face.right - left, face.bottom - top, face.left - left))


# Backgrounds ---------------------------------------------------------------------------------------------------


def texture(rng: np.random.Generator, width: int, height: int, depth: int = 0) -> np.ndarray:
    """A procedural background (float (H, W, 3), 0-255) with no face in it."""
    kind = rng.choice(["gradient", "blurred noise", "noise", "stripes", "shapes"])
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = x * np.cos(angle) + y * np.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
        out = c1 * (1 - t[..., None]) + c2 * t[..., None] + rng.normal(0, rng.uniform(2, 10), (height, width, 3))
    elif kind == "blurred noise":
        out = np.zeros((height, width, 3), np.float32)
        for cell in rng.choice([4, 8, 16, 32, 64], size=rng.integers(1, 4), replace=False):
            small = rng.uniform(0, 255, (max(2, height // cell), max(2, width // cell), 3)).astype(np.uint8)
            out += np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC), np.float32)
        out = rng.uniform(60, 200) + rng.uniform(20, 70) * (out - out.mean()) / max(float(out.std()), 1.0)
    elif kind == "noise":
        out = c1 + rng.normal(0, rng.uniform(10, 60), (height, width, 3))
    elif kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 80)
        wave = np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
        t = (wave > 0).astype(np.float32) if rng.random() < 0.5 else (wave + 1) / 2
        out = c1 * (1 - t[..., None]) + c2 * t[..., None] + rng.normal(0, 4, (height, width, 3))
    else:
        image = Image.new("RGB", (width, height), tuple(int(v) for v in c1))
        draw = ImageDraw.Draw(image)
        for _ in range(rng.integers(10, 80)):
            x0, y0 = rng.uniform(-0.1, 1.0) * width, rng.uniform(-0.1, 1.0) * height
            x1, y1 = x0 + rng.uniform(5, 0.5 * width), y0 + rng.uniform(5, 0.5 * height)
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            shape = rng.choice(["rectangle", "ellipse", "line"])
            if shape == "rectangle":
                draw.rectangle((x0, y0, x1, y1), fill=colour)
            elif shape == "ellipse":
                draw.ellipse((x0, y0, x1, y1), fill=colour)
            else:
                draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(1, 12)))
        if rng.random() < 0.5:
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3)))
        out = np.asarray(image, np.float32)
    if depth == 0 and rng.random() < 0.3:
        alpha = rng.uniform(0.3, 0.7)
        out = (1 - alpha) * out + alpha * texture(rng, width, height, depth=1)
    return np.clip(out, 0, 255)


@dataclass
class BackgroundPhoto:
    name: str
    rgb: np.ndarray
    keep_out: list[Box]  # the faces found, grown by FACE_EXCLUSION


def background_photos(photos_dir: Path, hog: DlibDetector, yunet: YunetDetector) -> list[BackgroundPhoto]:
    """Every distinct photo of at least 300 px a side under ``photos_dir``
    (at most MAX_SIDE long), with the regions around the faces that HOG or
    YuNet (lowest threshold) find in it."""
    seen, out = set(), []
    for path in sorted(p for p in photos_dir.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES):
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        try:
            rgb = shrink(decode_rgb(data))
        except ImageError:
            continue
        height, width = rgb.shape[:2]
        if min(height, width) < 300:
            continue
        keep_out = []
        for b in hog.boxes(rgb, upsample=1) + yunet.boxes(rgb):
            gx, gy = FACE_EXCLUSION * b.width, FACE_EXCLUSION * b.height
            keep_out.append(Box(int(b.top - gy), int(b.right + gx), int(b.bottom + gy), int(b.left - gx)))
        out.append(BackgroundPhoto(str(path.relative_to(photos_dir)), rgb, keep_out))
    return out


def photo_background(rng: np.random.Generator, photos: list[BackgroundPhoto], width: int,
                     height: int) -> tuple[np.ndarray, str] | None:
    """A crop of one of ``photos`` touching none of its faces, resized to
    width x height, and its photo's name; None when none is found."""
    for _ in range(200):
        photo = photos[int(rng.integers(len(photos)))]
        ph, pw = photo.rgb.shape[:2]
        largest = min(pw, ph * width / height)
        smallest = min(largest, 160 * width / height)
        cw = rng.uniform(smallest, largest)
        ch = cw * height / width
        x0, y0 = rng.uniform(0, pw - cw), rng.uniform(0, ph - ch)
        crop = Box(int(y0), int(x0 + cw), int(y0 + ch), int(x0))
        if any(iou(crop, k) > 0 for k in photo.keep_out):
            continue
        region = photo.rgb[crop.top:crop.bottom, crop.left:crop.right]
        resized = Image.fromarray(region).resize((width, height), Image.Resampling.LANCZOS)
        return np.asarray(resized, np.float32), photo.name
    return None


# Scenes --------------------------------------------------------------------------------------------------------


class FaceSupply:
    """The LFW faces in turn: one is taken only once it has been pasted."""

    def __init__(self, faces: Iterator[LfwFace]) -> None:
        self._faces = faces
        self._next: LfwFace | None = None

    def peek(self) -> LfwFace:
        if self._next is None:
            self._next = next(self._faces)
        return self._next

    def take(self) -> None:
        self._next = None


def make_scene(index: int, rng: np.random.Generator, faces: FaceSupply, photos: list[BackgroundPhoto],
               photo_share: float) -> Scene:
    width, height = int(rng.integers(640, 801)), int(rng.integers(480, 601))
    count = int(rng.integers(FACES_PER_SCENE[0], FACES_PER_SCENE[1] + 1))
    bands = [LARGE_BANDS[index % 2]] + [SMALL_BANDS[i] for i in rng.integers(len(SMALL_BANDS), size=count - 1)]
    sizes = sorted((float(rng.uniform(*band)) for band in bands), reverse=True)
    background, kind = None, "texture"
    if photos and rng.random() < photo_share:
        found = photo_background(rng, photos, width, height)
        if found is not None:
            background, kind = found[0], "photo"
    if background is None:
        background = texture(rng, width, height)
    rgb = np.clip(background + 0.5, 0, 255).astype(np.uint8)
    truth, drawn, regions = [], [], []
    for size in sizes:
        face = faces.peek()
        factor = size / face.box.height
        ch, cw = face.crop.shape[:2]
        new_w, new_h = max(1, round(cw * factor)), max(1, round(ch * factor))
        if new_w > width or new_h > height:
            continue
        for _ in range(100):
            x, y = int(rng.integers(0, width - new_w + 1)), int(rng.integers(0, height - new_h + 1))
            region = Box(y, x + new_w, y + new_h, x)
            if not any(iou(region, r) > 0 for r in regions):
                break
        else:
            continue
        pasted = Image.fromarray(face.crop).resize((new_w, new_h), Image.Resampling.LANCZOS)
        rgb[y:y + new_h, x:x + new_w] = np.asarray(pasted)
        left, top = x + round(face.box.left * factor), y + round(face.box.top * factor)
        truth.append(Box(top, left + round(face.box.width * factor), top + round(face.box.height * factor), left))
        drawn.append(size)
        regions.append(region)
        faces.take()
    return Scene(rgb, kind, truth, drawn, regions)


# Scoring -------------------------------------------------------------------------------------------------------


def match(found: list[Box], truth: list[Box], threshold: float) -> dict[int, int]:
    """Greedy one-to-one matching by IoU: {truth index: found index} for
    the pairs of IoU >= ``threshold``, best pairs first."""
    pairs = sorted(((iou(f, t), fi, ti) for fi, f in enumerate(found) for ti, t in enumerate(truth)), reverse=True)
    out: dict[int, int] = {}
    used: set[int] = set()
    for overlap, fi, ti in pairs:
        if overlap < threshold:
            break
        if fi not in used and ti not in out:
            out[ti] = fi
            used.add(fi)
    return out


def inside_share(box: Box, region: Box) -> float:
    height = min(box.bottom, region.bottom) - max(box.top, region.top)
    width = min(box.right, region.right) - max(box.left, region.left)
    return height * width / box.area if height > 0 and width > 0 and box.area else 0.0


@dataclass
class Tally:
    found: np.ndarray  # per band: faces found at MATCH_IOU
    loose: np.ndarray  # per band: at LOOSE_IOU
    detections: int = 0
    false_positives: int = 0
    fp_texture: int = 0
    fp_photo: int = 0
    fp_touching_crop: int = 0
    ignored: int = 0
    seconds: float = 0.0

    @classmethod
    def empty(cls) -> Tally:
        return cls(np.zeros(len(BANDS), np.int64), np.zeros(len(BANDS), np.int64))


def band_of(size: float) -> int:
    return next(i for i, (lo, hi) in enumerate(BANDS) if lo <= size < hi or (i == len(BANDS) - 1 and size <= hi))


def score(tally: Tally, scene: Scene, found: list[Box]) -> None:
    matched = match(found, scene.truth, MATCH_IOU)
    for ti in matched:
        tally.found[band_of(scene.sizes[ti])] += 1
    for ti in match(found, scene.truth, LOOSE_IOU):
        tally.loose[band_of(scene.sizes[ti])] += 1
    tally.detections += len(found)
    used = set(matched.values())
    for fi, box in enumerate(found):
        if fi in used:
            continue
        if any(inside_share(box, region) > 0.5 for region in scene.regions):
            tally.ignored += 1
        else:
            tally.false_positives += 1
            tally.fp_touching_crop += any(inside_share(box, region) > 0 for region in scene.regions)
            if scene.background == "photo":
                tally.fp_photo += 1
            else:
                tally.fp_texture += 1


def save_scene(folder: Path, index: int, scene: Scene, found: dict[str, list[Box]]) -> None:
    """The scene with its ground truth (green), YuNet at the lowest
    threshold (blue) and HOG (red), for looking at."""
    image = Image.fromarray(scene.rgb)
    draw = ImageDraw.Draw(image)
    for colour, boxes in (("lime", scene.truth), ("blue", found[f"yunet {THRESHOLDS[0]}"]), ("red", found[HOG])):
        for b in boxes:
            draw.rectangle((b.left, b.top, b.right - 1, b.bottom - 1), outline=colour)
    folder.mkdir(parents=True, exist_ok=True)
    image.save(folder / f"scene_{index:03d}_{scene.background}.png")


# Real photos ---------------------------------------------------------------------------------------------------


def shrink(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` at most MAX_SIDE pixels long, as the indexer detects on it."""
    height, width = rgb.shape[:2]
    scale = detection_scale(width, height, MAX_SIDE)
    if scale >= 1.0:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


def short(name: str) -> str:
    """A photo's path under the photos folder, its middle folders left out."""
    parts = name.split("/")
    return name if len(parts) <= 2 else f"{parts[0]}/.../{parts[-1]}"


def real_photos(photos_dir: Path) -> list[tuple[str, str]]:
    """(path under photos_dir, faces per labels.csv or "") of the real group photos."""
    out = [(p, "") for p in REAL_PHOTOS]
    labels = photos_dir / "face_recognition" / "labels.csv"
    if labels.is_file():
        with labels.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row["faces"] not in ("1", "partial"):
                    out.append((f"face_recognition/{row['file']}", row["faces"]))
    return [(p, n) for p, n in out if (photos_dir / p).is_file()]


Find = Callable[[np.ndarray], list[Box]]


def run_real(photos_dir: Path, detectors: dict[str, Find]) -> list[dict]:
    rows = []
    for name, labelled in real_photos(photos_dir):
        try:
            rgb = shrink(decode_rgb((photos_dir / name).read_bytes()))
        except ImageError:
            continue
        hog_boxes = detectors[HOG](rgb)
        row: dict = {"photo": name, "size": f"{rgb.shape[1]}x{rgb.shape[0]}", "labelled_faces": labelled,
                     "hog": len(hog_boxes), "yunet": {}}
        for t in THRESHOLDS:
            boxes = detectors[f"yunet {t}"](rgb)
            row["yunet"][str(t)] = {"faces": len(boxes), "of_hog": len(match(boxes, hog_boxes, REAL_IOU))}
        rows.append(row)
    return rows


# Main ----------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW DevTrain folder")
    parser.add_argument("--photos", type=Path, default=SHARED_DATA / "photos", help="the shared photos")
    parser.add_argument("--scenes", type=int, default=300, help="synthetic scenes (~0.3 s each)")
    parser.add_argument("--photo-backgrounds", type=float, default=0.2,
                        help="share of scenes on a crop of a real photo (the rest on textures)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-scenes", type=Path, default=None, help="write each scene, boxes drawn, here")
    args = parser.parse_args()
    lfw = require_dir(args.lfw, "the LFW DevTrain photos", LFW_HINT)
    photos_dir = require_dir(args.photos, "the shared photos")
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)

    hog = DlibDetector("hog")
    yunets = {t: YunetDetector(threads=1, score_threshold=t, hand_over="landmarks") for t in THRESHOLDS}
    detectors: dict[str, Find] = {f"yunet {t}": y.boxes for t, y in yunets.items()}
    detectors[HOG] = lambda rgb: hog.boxes(rgb, upsample=1)
    warm = np.zeros((480, 640, 3), np.uint8)
    for find in detectors.values():  # load the weights before timing
        find(warm)

    photos = background_photos(photos_dir, hog, yunets[THRESHOLDS[0]]) if args.photo_backgrounds > 0 else []
    faces = FaceSupply(lfw_faces(lfw, int(args.scenes * FACES_PER_SCENE[1] * 1.2) + 10, rng, hog))
    tallies = {name: Tally.empty() for name in detectors}
    totals = np.zeros(len(BANDS), np.int64)
    kinds = {"texture": 0, "photo": 0}
    pixels = 0
    for index in range(args.scenes):
        scene = make_scene(index, rng, faces, photos, args.photo_backgrounds)
        kinds[scene.background] += 1
        pixels += scene.rgb.shape[0] * scene.rgb.shape[1]
        for size in scene.sizes:
            totals[band_of(size)] += 1
        found_here = {}
        for name, find in detectors.items():
            start = time.perf_counter()
            found = find(scene.rgb)
            tallies[name].seconds += time.perf_counter() - start
            score(tallies[name], scene, found)
            found_here[name] = found
        if args.save_scenes:
            save_scene(args.save_scenes, index, scene, found_here)
    scenes = args.scenes
    big = np.array([lo >= MIN_RECALL_SIZE for lo, _ in BANDS])

    results = []
    for name, t in tallies.items():
        recall_20 = float(t.found[big].sum() / max(totals[big].sum(), 1))
        fp_rate = t.false_positives / max(scenes, 1)
        results.append({
            "detector": name,
            "recall_by_band": {band_name(b): float(t.found[i] / totals[i]) if totals[i] else None
                               for i, b in enumerate(BANDS)},
            "found_by_band": {band_name(b): int(t.found[i]) for i, b in enumerate(BANDS)},
            "recall_ge_20px": recall_20,
            "recall_ge_20px_iou_0_3": float(t.loose[big].sum() / max(totals[big].sum(), 1)),
            "recall_all": float(t.found.sum() / max(totals.sum(), 1)),
            "detections": t.detections, "false_positives": t.false_positives, "fp_per_image": fp_rate,
            "fp_per_texture_image": t.fp_texture / kinds["texture"] if kinds["texture"] else None,
            "fp_per_photo_image": t.fp_photo / kinds["photo"] if kinds["photo"] else None,
            "fp_touching_a_crop": t.fp_touching_crop, "ignored": t.ignored,
            "ms_per_scene": 1000 * t.seconds / max(scenes, 1),
            "meets_target": recall_20 >= TARGET_RECALL and fp_rate <= TARGET_FP,
        })
    real = run_real(photos_dir, detectors)
    elapsed = time.perf_counter() - started

    print_table(
        ["detector"] + [f"{band_name(b)} (n={totals[i]})" for i, b in enumerate(BANDS)]
        + [f">={MIN_RECALL_SIZE} px", f">={MIN_RECALL_SIZE} @IoU {LOOSE_IOU}", "all"],
        [[r["detector"], *(r["recall_by_band"][band_name(b)] for b in BANDS), r["recall_ge_20px"],
          r["recall_ge_20px_iou_0_3"], r["recall_all"]] for r in results],
        title=f"Recall by face height (px) at IoU >= {MATCH_IOU}: {scenes} synthetic scenes, {int(totals.sum())} faces",
    )
    print_table(
        ["detector", "detections", "false pos.", "FP/image", "FP/texture", "FP/photo bg", "FP touching crop",
         "ignored", "ms/scene",
         f"target (>={TARGET_RECALL}, <={TARGET_FP})"],
        [[r["detector"], r["detections"], r["false_positives"], r["fp_per_image"],
          r["fp_per_texture_image"] if r["fp_per_texture_image"] is not None else float("nan"),
          r["fp_per_photo_image"] if r["fp_per_photo_image"] is not None else float("nan"),
          r["fp_touching_a_crop"], r["ignored"],
          r["ms_per_scene"], verdict(r["meets_target"])] for r in results],
        title=f"False positives: {kinds['texture']} texture and {kinds['photo']} photo backgrounds, "
              f"{pixels / max(scenes, 1) / 1e3:.0f} kpx per scene",
    )
    print_table(
        ["photo", "size", "labels.csv", "hog"] + [f"yunet {t} (of hog)" for t in THRESHOLDS],
        [[short(r["photo"]), r["size"], r["labelled_faces"] or "-", r["hog"],
          *(f"{r['yunet'][str(t)]['faces']} ({r['yunet'][str(t)]['of_hog']})" for t in THRESHOLDS)] for r in real],
        title=f"Real photos (at most {MAX_SIDE} px): faces boxed, and (in brackets) HOG's boxes YuNet also found "
              f"at IoU >= {REAL_IOU}",
    )
    print(f"\n{elapsed:.0f} s in all")
    write_results("detection_recall", {
        "lfw": str(lfw), "photos": str(photos_dir), "scenes": scenes, "seed": args.seed,
        "photo_backgrounds": args.photo_backgrounds, "scene_backgrounds": kinds,
        "background_photos": [p.name for p in photos],
        "faces_by_band": {band_name(b): int(totals[i]) for i, b in enumerate(BANDS)},
        "match_iou": MATCH_IOU, "target": {"recall_ge_20px": TARGET_RECALL, "fp_per_image": TARGET_FP},
        "results": results, "real_photos": real, "real_photo_iou": REAL_IOU, "seconds": elapsed,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
