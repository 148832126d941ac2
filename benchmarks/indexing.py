"""Indexing throughput on LFW DevTrain, side by side in one run.

Three runs over the same photos, one after the other:

* ``plain``: the loop a face_recognition user writes: for each file
  ``load_image_file`` + ``face_locations`` + ``face_encodings``, defaults;
* ``ours-1w-ENCODER``: ``indexer.indexing.index_paths`` with 1 worker
  (in-process), for each encoder of ``--encoders`` (``onnx``, the default,
  and ``dlib``: dlib's own network, as with ``encoding.encoder = "dlib"``);
* ``ours-2w-ENCODER``: the same with 2 worker processes.

Then where a photo's time goes: ``--breakdown N`` photos timed stage by
stage in this process (hashing, decoding, HOG, landmarks and chips, the
network, thumbnails; the rest, from ``ours-1w-onnx``: the scan, SQLite and
FAISS writes, the processes).

Each "ours" run indexes into a fresh data directory and its time includes
everything ``facesearch index`` does (scan, hashing, thumbnails, SQLite and
FAISS writes, and for 2 workers starting the pool and loading the model in
each worker). Each encoder's model is loaded in this process before any run
is timed.

Measured per run: photos, wall seconds, photos/s, faces found, faces/s, share
of photos with at least one face, CPU seconds (this process and its
workers) and cores used (CPU s / wall s; below the worker count on a busy
machine), and the time to the first photo done (for 2 workers: starting
the pool and loading the model in each). Then ours-1w / plain and ours-2w /
ours-1w (photos/s). Targets: 2 workers >= 1.9x one worker, our 1 worker >=
the plain loop, 2 workers with the default install (onnx) >= 5x the plain
loop, a face found on >= 99.8% of the photos, and the second pass
(``--first-pass-only`` adds a run without it) costing <= 5% more time.

The subset (``--limit N``, default 1000) is every (9525/N)-th photo of the
sorted list, indexed through a temporary folder of symlinks; ``--limit 0``
indexes the LFW folder itself (then ``--keep DIR`` leaves an index that
``benchmarks.identification --data-dir DIR`` reuses as it is).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.indexing [--limit 1000] [--workers 1,2] [--encoders onnx,dlib]
        [--breakdown 300] [--first-pass-only] [--skip-plain] [--keep DIR]

Results: ``benchmarks/results/indexing.json``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.common import (
    DEFAULT_LFW,
    LFW_HINT,
    lfw_photos,
    now,
    print_table,
    ratio,
    require_dir,
    spread_subset,
    verdict,
    write_results,
)
from config.settings import EncodingSettings, load_settings
from indexer.indexing import index_paths
from indexer.model import FaceModel, OnnxEncoder, face_chips, face_model
from indexer.worker import PhotoResult

TARGET_SPEEDUP_2W = 1.9
TARGET_VS_PLAIN = 1.0
TARGET_DEFAULT_VS_PLAIN = 5.0  # issue 15: 2 workers, the default install (dlib-bin + onnx)
ENCODERS = ("dlib", "onnx")
TARGET_FACE_SHARE = 0.998  # issue 15: with the second pass
TARGET_SECOND_PASS_COST = 0.05


@dataclass
class Run:
    name: str
    photos: int
    seconds: float
    faces: int
    photos_with_face: int
    cpu_seconds: float
    first_result_s: float  # from the start to the first photo done (includes starting the workers)
    errors: int = 0
    without_face: list[str] = field(default_factory=list)  # paths relative to the photo root

    @property
    def photos_per_s(self) -> float:
        return ratio(self.photos, self.seconds)

    @property
    def faces_per_s(self) -> float:
        return ratio(self.faces, self.seconds)

    @property
    def face_share(self) -> float:
        return ratio(self.photos_with_face, self.photos)

    @property
    def cores_used(self) -> float:
        return ratio(self.cpu_seconds, self.seconds)

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "photos_per_s": self.photos_per_s,
            "faces_per_s": self.faces_per_s,
            "face_share": self.face_share,
            "cores_used": self.cores_used,
        }


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def plain_loop(files: list[Path], lfw: Path) -> Run:
    """face_recognition's documented loop, with its defaults."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pkg_resources.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        import face_recognition

    faces = 0
    without_face = []
    first = float("nan")
    started, cpu_started = now(), cpu_seconds()
    for i, path in enumerate(files):
        image = face_recognition.load_image_file(str(path))
        locations = face_recognition.face_locations(image)
        encodings = face_recognition.face_encodings(image, locations)
        faces += len(encodings)
        if not encodings:
            without_face.append(str(path.relative_to(lfw)))
        if i == 0:
            first = now() - started
    return Run("plain", len(files), now() - started, faces, len(files) - len(without_face),
               cpu_seconds() - cpu_started, first, without_face=without_face)


def encoder_model(encoder: str) -> FaceModel:
    """The real model with ``encoder`` (``"onnx"`` or ``"dlib"``), as an
    indexing worker makes it (1 thread)."""
    return face_model(load_settings(encoding={"encoder": encoder}).encoding)


def ours(root: Path, workers: int, data_dir: Path, model: FaceModel, second_pass: bool = True) -> Run:
    """``index_paths([root])`` into the empty ``data_dir`` with ``workers``
    workers, ``model`` (its encoder named in the settings too) and the
    detection's second pass on or off."""
    encoder = model.encoder.name
    settings = load_settings(data_dir=data_dir, indexer={"workers": workers}, encoding={"encoder": encoder},
                             detection={"second_pass": second_pass})
    base = root.resolve()  # the scanner reports paths under the real root
    without_face: list[str] = []
    done_at: list[float] = []

    def note(result: PhotoResult) -> None:
        done_at.append(now())
        if result.error is None and not result.unchanged and not result.faces:
            without_face.append(str(Path(result.path).relative_to(base)))

    started, cpu_started = now(), cpu_seconds()
    report = index_paths([root], settings, progress=False, on_result=note, model=model)
    seconds = now() - started
    return Run(
        name=f"ours-{workers}w-{encoder}" + ("" if second_pass else "-first-pass-only"),
        photos=report.images_seen,
        seconds=seconds,
        faces=report.faces_added,
        photos_with_face=report.images_indexed - report.images_without_faces,
        cpu_seconds=cpu_seconds() - cpu_started,
        first_result_s=done_at[0] - started if done_at else float("nan"),
        errors=len(report.errors),
        without_face=sorted(without_face),
    )


def symlink_tree(files: list[Path], lfw: Path, target: Path) -> None:
    """``target/Person/Person_NNNN.jpg`` -> each file, keeping LFW's layout."""
    for path in files:
        link = target / path.relative_to(lfw)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)


def checks(runs: dict[str, Run]) -> list[dict]:
    """The targets that the runs made measurable, each with its verdict."""
    out = []
    plain = runs.get("plain")
    for encoder in ENCODERS:
        one, two = runs.get(f"ours-1w-{encoder}"), runs.get(f"ours-2w-{encoder}")
        if one and two:
            value = ratio(two.photos_per_s, one.photos_per_s)
            out.append({"check": f"ours-2w-{encoder} / ours-1w-{encoder} (photos/s)", "value": value,
                        "target": f">= {TARGET_SPEEDUP_2W}", "pass": value >= TARGET_SPEEDUP_2W})
        if one and plain:
            value = ratio(one.photos_per_s, plain.photos_per_s)
            out.append({"check": f"ours-1w-{encoder} / plain (photos/s)", "value": value,
                        "target": f">= {TARGET_VS_PLAIN}", "pass": value >= TARGET_VS_PLAIN})
    two = runs.get("ours-2w-onnx")
    if two and plain:
        value = ratio(two.photos_per_s, plain.photos_per_s)
        out.append({"check": "ours-2w-onnx / plain (photos/s), the default install", "value": value,
                    "target": f">= {TARGET_DEFAULT_VS_PLAIN}", "pass": value >= TARGET_DEFAULT_VS_PLAIN})
    full = runs.get("ours-2w-onnx")
    first = runs.get("ours-2w-onnx-first-pass-only")
    if full and first:
        value = ratio(full.seconds, first.seconds) - 1
        out.append({"check": "the second pass's cost (ours-2w-onnx / first pass only - 1)", "value": value,
                    "target": f"<= {TARGET_SECOND_PASS_COST:.0%}", "pass": value <= TARGET_SECOND_PASS_COST})
    for run in runs.values():
        if run.name.startswith("ours") and not run.name.endswith("first-pass-only"):
            out.append({"check": f"{run.name}: photos with a face", "value": run.face_share,
                        "target": f">= {TARGET_FACE_SHARE:.1%}", "pass": run.face_share >= TARGET_FACE_SHARE})
    return out


def breakdown(files: list[Path]) -> dict[str, float]:
    """Where a photo's time goes, in this process (one core, the default
    settings, the ONNX encoder): ms per photo for reading and hashing,
    decoding, detection, landmarks and chips, the network and the
    thumbnails."""
    from indexer.faces import detect_boxes, thumbnail_jpeg
    from indexer.hashing import content_hash
    from indexer.images import decode_rgb

    settings = load_settings()
    model = face_model(EncodingSettings(encoder="onnx"))
    model.load([settings.detection.model])
    encoder = model.encoder
    assert isinstance(encoder, OnnxEncoder)
    detect = f"detect ({settings.detection.model})"
    spent = dict.fromkeys(("read and hash", "decode", detect, "landmarks and chip", "network", "thumbnails"), 0.0)

    def timed(stage: str, work, *args):
        started = now()
        value = work(*args)
        spent[stage] += now() - started
        return value

    def thumbnails(rgb, boxes):
        return [thumbnail_jpeg(rgb, b, settings.thumbnails) for b in boxes]

    for path in files:
        data = timed("read and hash", path.read_bytes)
        timed("read and hash", content_hash, data)
        rgb = timed("decode", decode_rgb, data)
        boxes = timed(detect, detect_boxes, model, rgb, settings.detection)
        if boxes:
            chips = timed("landmarks and chip", face_chips, rgb, boxes)
            timed("network", encoder.encode_chips, chips)
            timed("thumbnails", thumbnails, rgb, boxes)
    return {stage: 1000 * seconds / len(files) for stage, seconds in spent.items()}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW DevTrain folder (Person/Person_NNNN.jpg)")
    parser.add_argument("--limit", type=int, default=1000, help="photos to index, spread over the list (0 = all)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts of the 'ours' runs")
    parser.add_argument("--skip-plain", action="store_true", help="do not run the plain face_recognition loop")
    parser.add_argument("--encoders", default="onnx", help="comma-separated encoders of the 'ours' runs: onnx, dlib")
    parser.add_argument("--breakdown", type=int, default=300, help="photos timed stage by stage (0: none)")
    parser.add_argument("--first-pass-only", action="store_true",
                        help="also run ours with the most workers and the last encoder without the second pass")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the index of the run with the most workers in this (new or empty) folder")
    args = parser.parse_args()
    args.workers = list(dict.fromkeys(int(w) for w in args.workers.split(",") if w.strip()))
    args.encoders = list(dict.fromkeys(e.strip() for e in args.encoders.split(",") if e.strip()))
    if not args.encoders or set(args.encoders) - set(ENCODERS):
        parser.error(f"--encoders: some of {', '.join(ENCODERS)}")
    if not args.workers or min(args.workers) < 1:
        parser.error("--workers needs positive worker counts, e.g. 1,2")
    if args.keep is not None and args.keep.exists() and (not args.keep.is_dir() or any(args.keep.iterdir())):
        parser.error(f"--keep {args.keep}: the folder is not empty; give a new or empty one")
    return args


def main() -> None:
    args = parse_args()
    lfw = require_dir(args.lfw, "the LFW DevTrain photos", LFW_HINT)
    all_files = lfw_photos(lfw)
    files = spread_subset(all_files, args.limit)
    print(f"{len(files)} of {len(all_files)} photos from {lfw}; runs: "
          f"{'' if args.skip_plain else 'plain, '}"
          f"{', '.join(f'ours-{w}w-{e}' for e in args.encoders for w in args.workers)}")
    models = {encoder: encoder_model(encoder) for encoder in args.encoders}
    for model in models.values():
        model.load(["hog"])

    runs: dict[str, Run] = {}
    with tempfile.TemporaryDirectory(prefix="facesearch-bench-") as tmp:
        tmp_path = Path(tmp)
        if len(files) == len(all_files):
            root = lfw
        else:
            root = tmp_path / "photos"
            symlink_tree(files, lfw, root)
        if not args.skip_plain:
            runs["plain"] = plain_loop(files, lfw)
            print(f"  plain: {runs['plain'].seconds:.1f} s")
        for encoder in args.encoders:
            for workers in args.workers:
                kept = args.keep is not None and workers == max(args.workers) and encoder == args.encoders[-1]
                run = ours(root, workers, args.keep if kept else tmp_path / f"data-{workers}w-{encoder}",
                           models[encoder])
                runs[run.name] = run
                print(f"  {run.name}: {run.seconds:.1f} s")
        if args.first_pass_only:
            workers, encoder = max(args.workers), args.encoders[-1]
            run = ours(root, workers, tmp_path / "data-first-pass-only", models[encoder], second_pass=False)
            runs[run.name] = run
            print(f"  {run.name}: {run.seconds:.1f} s")

    print_table(
        ["run", "photos", "seconds", "photos/s", "faces", "faces/s", "with face", "errors", "CPU s", "cores used",
         "1st photo s"],
        [[r.name, r.photos, r.seconds, r.photos_per_s, r.faces, r.faces_per_s, f"{r.face_share:.2%}", r.errors,
          r.cpu_seconds, r.cores_used, r.first_result_s] for r in runs.values()],
        title="Indexing throughput",
    )
    results = checks(runs)
    stages = breakdown(spread_subset(files, args.breakdown)) if args.breakdown else {}
    if stages:
        one = runs.get("ours-1w-onnx")
        if one:
            stages["the rest (scan, writes, processes)"] = max(0.0, 1000 * one.seconds / one.photos
                                                               - sum(stages.values()))
        total = sum(stages.values())
        print_table(["stage", "ms/photo", "share"], [[k, v, f"{v / total:.0%}"] for k, v in stages.items()],
                    title=f"Where a photo's time goes (onnx, one core, {min(args.breakdown, len(files))} photos"
                          f"{'; the rest from ours-1w-onnx' if one else ''})")
    print_table(["check", "value", "target", "verdict"],
                [[c["check"], c["value"], c["target"], verdict(c["pass"])] for c in results], title="Targets")
    if args.keep is not None:
        print(f"\nindex kept in {args.keep.resolve()}" + ("" if root == lfw else
              " (indexed through temporary symlinks: identification will not reuse it)"))
    write_results("indexing", {
        "lfw": lfw,
        "limit": args.limit,
        "photos": len(files),
        "runs": [r.to_dict() for r in runs.values()],
        "checks": results,
        "breakdown_ms_per_photo": stages,
        "kept_index": args.keep.resolve() if args.keep is not None else None,
    })


if __name__ == "__main__":
    main()
