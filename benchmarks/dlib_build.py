"""The ``dlib-bin`` wheel against the fast dlib build (``make install FAST=1``:
dlib from source with OpenBLAS, clang and ``-march=x86-64-v3``) and the ONNX
encoder, side by side (dlib-bin alone where no fast build is cached).

What is measured, in each build, with the same photos and boxes:

- encoding: ``indexer.model.DlibEncoder().embeddings`` of the one face of each
  of the 15 LFW photos of ``tests/data`` (boxes found once per build with HOG,
  upsample 1), ``--repeats`` (5) rounds: median ms per face;
- HOG detection (``indexer.model.DlibDetector("hog").boxes``) on a 640x480
  photo at upsample 0 and 1: median of ``--repeats`` x 3 calls, ms. The photo is
  ``obama-1080p.jpg`` of the shared photos cut and resized to 640x480 as in
  ``benchmarks/query_photo.py`` (``--photo``; ``tests/data/group/bbt3.jpg``
  when the shared data is missing);
- agreement: the max abs difference of each build's 15 embeddings to dlib-bin's;
- the ONNX encoder (``encoding.encoder = "onnx"``: ``indexer.model.OnnxEncoder``,
  onnxruntime, 1 thread) in each build's process (the build cuts the chips):
  ms per face for the whole encoding (landmarks, chip, network:
  ``embeddings``), the network alone per face (``encode_chips``) in batches
  of 1 and 32, and its max abs difference to that build's dlib.

How: one venv cannot hold both builds (both are the ``dlib`` module), so each
is unpacked with ``uv pip install --target`` into ``.tools/dlib-bench/<name>/``
and measured in a child process of the venv's Python with that folder first
on ``PYTHONPATH`` (``--child``), with 1 BLAS/OpenMP thread as in an indexing
worker. The children run ``--rounds`` (3) times, alternating, and the best
round's medians are kept (the 2 cores here are shared with other jobs; a
busy moment can only slow a round down). The fast wheels are those in the
cache of ``tools/fast_dlib.py`` (``~/.cache/facesearch/wheels``) for this
dlib, Python and platform: every one is measured (e.g. a GCC and a clang
build); build one first with ``make install FAST=1``. The build time is the
one that tool measured when it built the wheel (``build.json`` beside it). ``--reinstall`` also
times a cached install: ``tools/fast_dlib.py revert`` then ``apply`` on this
venv (it ends with the fast build installed).

Run (from the repository root)::

    make install FAST=1
    .venv/bin/python -m benchmarks.dlib_build [--repeats 5] [--rounds 3] [--reinstall]

Results: ``benchmarks/results/dlib_build.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import REPO_ROOT, SHARED_DATA, now, print_table, write_results

DEFAULT_PHOTO = SHARED_DATA / "photos" / "face_recognition" / "examples" / "obama-1080p.jpg"
FALLBACK_PHOTO = REPO_ROOT / "tests" / "data" / "group" / "bbt3.jpg"
UNPACKED = REPO_ROOT / ".tools" / "dlib-bench"
VENV = REPO_ROOT / ".venv"


def fast_dlib_tool():
    """``tools/fast_dlib.py`` as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("fast_dlib", REPO_ROOT / "tools" / "fast_dlib.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- in a child: one build ---------------------------------------------------

def photo_640x480(path: Path):
    from PIL import Image, ImageOps

    from indexer.images import decode_rgb

    small = ImageOps.fit(Image.open(path).convert("RGB"), (640, 480), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=90)
    return decode_rgb(out.getvalue())


def child(photo: Path, repeats: int) -> dict:
    """Measure the dlib this process imports, and the ONNX encoder beside it
    (its chips are cut by that dlib); returns a JSON-able dict."""
    import numpy as np

    from indexer.images import decode_rgb
    from indexer.model import DlibDetector, DlibEncoder, Encoder, FaceModel, OnnxEncoder, dlib_info, face_chips
    from tests.helpers import LFW_PEOPLE, lfw_photo

    # The two models of the comparison: the same detectors, dlib's encoder or
    # the ONNX one (1 thread; its session is made at its first encoding).
    onnx_encoder = OnnxEncoder(threads=1)
    dlib_model = FaceModel({"hog": DlibDetector("hog")}, DlibEncoder())
    onnx_model = FaceModel(dlib_model.detectors, onnx_encoder)
    dlib_model.load(["hog"])
    info = dlib_info()
    import dlib

    detector = dlib_model.detector("hog")
    faces = []
    for person in LFW_PEOPLE:
        for n in (1, 2, 3):
            rgb = decode_rgb(lfw_photo(person, n).read_bytes())
            boxes = detector.boxes(rgb, upsample=1)
            faces.append((rgb, max(boxes, key=lambda b: b.area)))

    def per_face_ms(encoder: Encoder) -> float:
        seconds = []
        for _ in range(repeats):
            for rgb, box in faces:
                started = now()
                encoder.embeddings(rgb, [box])
                seconds.append(now() - started)
        return 1000 * statistics.median(seconds)

    embeddings = [dlib_model.encoder.embeddings(rgb, [box])[0].tolist() for rgb, box in faces]  # also warms up
    encode_ms = per_face_ms(dlib_model.encoder)
    onnx_embeddings = np.vstack([onnx_model.encoder.embeddings(rgb, [box]) for rgb, box in faces])  # also loads it
    onnx_ms = per_face_ms(onnx_model.encoder)
    chips = np.vstack([face_chips(rgb, [box]) for rgb, box in faces])
    batch = np.concatenate([chips] * (-(-32 // len(chips))))[:32]
    network = {}
    for size, x in (("1", chips[:1]), ("32", batch)):
        seconds = []
        for _ in range(3 * repeats):
            started = now()
            onnx_encoder.encode_chips(x)
            seconds.append((now() - started) / len(x))
        network[size] = 1000 * statistics.median(seconds)
    onnx = {"ms_per_face": onnx_ms, "network_ms_per_face_batch_1": network["1"],
            "network_ms_per_face_batch_32": network["32"],
            "max_abs_difference_to_dlib": float(np.abs(onnx_embeddings - np.asarray(embeddings)).max())}
    rgb = photo_640x480(photo)
    hog = {}
    for upsample in (0, 1):
        found = len(detector.boxes(rgb, upsample=upsample))  # warm-up
        seconds = []
        for _ in range(3 * repeats):
            started = now()
            detector.boxes(rgb, upsample=upsample)
            seconds.append(now() - started)
        hog[f"upsample_{upsample}"] = {"ms": 1000 * statistics.median(seconds), "faces": found}
    return {"dlib": info, "module": dlib.__file__, "encode_ms_per_face": encode_ms, "onnx": onnx,
            "faces": len(faces), "hog": hog, "embeddings": embeddings}


# --- in the parent -------------------------------------------------------------

def unpack(name: str, requirement: str, uv: str) -> Path:
    """``requirement`` (a wheel file or name==version) installed with
    ``--target`` into ``.tools/dlib-bench/<name>/`` (once per wheel)."""
    target = UNPACKED / name
    source = requirement
    if Path(requirement).is_file():
        source += f" {Path(requirement).stat().st_mtime_ns}"  # a rebuilt wheel is unpacked again
    stamp = target / ".source"
    if not stamp.is_file() or stamp.read_text() != source:
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([uv, "pip", "install", "--no-config", "--quiet", "--no-deps",
                        "--python", str(VENV / "bin" / "python"), "--target", str(target), requirement], check=True)
        stamp.write_text(source)
    return target


def run_child(path: Path, photo: Path, repeats: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(path), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, "-m", "benchmarks.dlib_build", "--child", "--photo", str(photo),
                           "--repeats", str(repeats)], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the child for {path} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["module"].startswith(str(path)):
        raise SystemExit(f"the child imported {result['module']}, not the build in {path}")
    return result


def best(rounds: list[dict]) -> dict:
    """Per measure, the lowest median over the rounds."""
    out = dict(rounds[0])
    out["encode_ms_per_face"] = min(r["encode_ms_per_face"] for r in rounds)
    out["onnx"] = {key: min(r["onnx"][key] for r in rounds) for key in rounds[0]["onnx"]}
    out["hog"] = {up: {"ms": min(r["hog"][up]["ms"] for r in rounds), "faces": rounds[0]["hog"][up]["faces"]}
                  for up in rounds[0]["hog"]}
    return out


def timed_reinstall() -> float:
    python = str(VENV / "bin" / "python")
    subprocess.run([python, str(REPO_ROOT / "tools" / "fast_dlib.py"), "revert"], check=True)
    started = time.monotonic()
    subprocess.run([python, str(REPO_ROOT / "tools" / "fast_dlib.py"), "apply"], check=True)
    return time.monotonic() - started


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO, help="photo for HOG, cut to 640x480")
    parser.add_argument("--repeats", type=int, default=5, help="encoding rounds over the 15 faces; HOG calls / 3")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each build; the best is kept")
    parser.add_argument("--reinstall", action="store_true", help="also time a cached `fast_dlib.py apply`")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    photo = args.photo if args.photo.is_file() else FALLBACK_PHOTO
    if args.child:
        print(json.dumps(child(photo, args.repeats)))
        return
    tool = fast_dlib_tool()
    uv = shutil.which("uv") or str(REPO_ROOT / ".tools" / "bin" / "uv")
    tags = tool.Venv(VENV, uv).tags()
    bin_version = tool.dlib_bin_version()
    prefix = tool.cache_key(bin_version.split(".post")[0], tags, "")  # ends with "-"
    folders = sorted(f for f in tool.cache_root(None).glob(prefix + "*") if tool.cached_wheel(f))
    if not folders:
        print(f"no fast build cached in {tool.cache_root(None)} (`make install FAST=1` makes one): dlib-bin only")
    builds = {"dlib-bin": unpack(f"dlib-bin-{bin_version}", f"dlib-bin=={bin_version}", uv)}
    made = {"dlib-bin": {}}
    for folder in folders:
        name = f"fast ({folder.name[len(prefix):]})"
        builds[name] = unpack(folder.name, str(tool.cached_wheel(folder)), uv)
        build_json = folder / "build.json"
        made[name] = {"wheel": str(tool.cached_wheel(folder)),
                      **(json.loads(build_json.read_text()) if build_json.exists() else {})}
    rounds: dict[str, list[dict]] = {name: [] for name in builds}
    for i in range(args.rounds):
        for name, path in builds.items():
            rounds[name].append(run_child(path, photo, args.repeats))
        print(f"  round {i + 1} of {args.rounds} done", flush=True)
    results = {name: best(r) for name, r in rounds.items()}
    import numpy as np

    base = results["dlib-bin"]
    reference = np.asarray(base["embeddings"])
    rows = []
    for name, r in results.items():
        encode, up0, up1 = r["encode_ms_per_face"], r["hog"]["upsample_0"]["ms"], r["hog"]["upsample_1"]["ms"]
        r["max_abs_difference_to_dlib_bin"] = float(np.abs(np.asarray(r.pop("embeddings")) - reference).max())
        rows.append([name, "on" if r["dlib"]["blas"] else "off", encode, base["encode_ms_per_face"] / encode,
                     up0, base["hog"]["upsample_0"]["ms"] / up0, up1, base["hog"]["upsample_1"]["ms"] / up1,
                     f"{r['max_abs_difference_to_dlib_bin']:.1e}", made[name].get("build_seconds", float("nan")) / 60])
        r["build"] = made[name]
    reinstall_s = timed_reinstall() if args.reinstall else None
    print_table(["build", "BLAS", "encode ms/face", "x", "HOG up0 ms", "x", "HOG up1 ms", "x", "max diff", "build min"],
                rows, title=f"dlib builds, 1 thread, best of {args.rounds} rounds; HOG on {photo.name} cut to 640x480; "
                            "x = speed-up over dlib-bin")
    onnx_rows = []
    for name, r in results.items():
        o = r["onnx"]
        onnx_rows.append([name, r["encode_ms_per_face"], o["ms_per_face"], r["encode_ms_per_face"] / o["ms_per_face"],
                          base["encode_ms_per_face"] / o["ms_per_face"], o["network_ms_per_face_batch_1"],
                          o["network_ms_per_face_batch_32"], f"{o['max_abs_difference_to_dlib']:.1e}"])
    print_table(["chips cut by", "dlib ms/face", "onnx ms/face", "x this dlib", "x dlib-bin", "network b1 ms",
                 "network b32 ms", "max diff"], onnx_rows,
                title="The ONNX encoder beside each dlib, 1 thread: a whole face (landmarks, chip, network) and "
                      "the network alone per face, batches of 1 and 32")
    for name, info in made.items():
        if info:
            print(f"{name}: {Path(info['wheel']).name}, CXXFLAGS {info.get('cxxflags')}, {info.get('compiler')}")
    if reinstall_s is not None:
        print(f"cached install (tools/fast_dlib.py revert, then apply with the wheel cached): {reinstall_s:.1f} s")
    write_results("dlib_build", {"photo": photo, "repeats": args.repeats, "rounds": args.rounds, "builds": results,
                                 "cached_install_s": reinstall_s})

if __name__ == "__main__":
    main()
