"""Indexing throughput with each dlib build, side by side in one run: the
plain ``face_recognition`` loop against ``facesearch index`` with the
``dlib-bin`` wheel and with the fast build (``make install FAST=1``).

Runs ``benchmarks.indexing`` (the same LFW DevTrain subset, ``--limit``
photos spread from A to Z, 2 worker processes) as a child process, switching
the venv's dlib with ``tools/fast_dlib.py`` between the runs:

1. ``dlib-bin``: the plain loop (one process, face_recognition's defaults)
   and ours with 2 workers, with dlib's encoder and with the ONNX one;
2. the fast build (from the wheel cache; built first when missing, ~6.5 min):
   ours with 2 workers (both encoders), then dlib's again with
   ``upsample_policy = "retry"`` (``benchmarks.detection``).

The venv's dlib is put back as it was at the start, and so is
``benchmarks/results/indexing.json`` (the full-LFW figures of docs/benchmarks.md).
Photos/s of each run and its ratio to the plain loop; target: >= 3x the
plain loop with the fast build. Where the fast build cannot be installed
(no AVX2, no compiler, ...) its rows are left out, with the reason.

Run::

    .venv/bin/python -m benchmarks.indexing_builds [--limit 1500]

Results: ``benchmarks/results/indexing_builds.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.common import REPO_ROOT, RESULTS_DIR, print_table, write_results

FAST_DLIB = [sys.executable, str(REPO_ROOT / "tools" / "fast_dlib.py"), "--venv", sys.prefix]


def dlib_state() -> dict:
    out = subprocess.run([sys.executable, "-c", "import json; from indexer.model import dlib_info; "
                          "print(json.dumps(dlib_info()))"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def switch(command: str) -> dict:
    subprocess.run(FAST_DLIB + [command], check=False)
    return dlib_state()


def indexing(limit: int, *extra: str, env: dict | None = None) -> dict:
    subprocess.run([sys.executable, "-m", "benchmarks.indexing", "--limit", str(limit), "--workers", "2",
                    "--breakdown", "0", *extra],
                   check=True, env={**os.environ, **(env or {})})
    return json.loads((RESULTS_DIR / "indexing.json").read_text())


def runs_of(result: dict) -> dict[str, dict]:
    return {run["name"]: run for run in result["runs"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=1500, help="LFW photos (spread over the list)")
    args = parser.parse_args()
    saved = (RESULTS_DIR / "indexing.json").read_bytes() if (RESULTS_DIR / "indexing.json").exists() else None
    started_fast = dlib_state()["blas"]
    rows: list[dict] = []
    try:
        state = switch("revert")
        first = runs_of(indexing(args.limit, "--encoders", "dlib,onnx"))
        plain = first["plain"]
        rows.append({"run": "plain face_recognition loop, dlib-bin", **plain, "dlib": state})
        rows.append({"run": "ours, 2 workers, dlib-bin", **first["ours-2w-dlib"], "dlib": state})
        rows.append({"run": "ours, 2 workers, onnx (the default install)", **first["ours-2w-onnx"], "dlib": state})
        state = switch("apply")
        if state["blas"]:
            fast = runs_of(indexing(args.limit, "--skip-plain", "--encoders", "dlib,onnx"))
            rows.append({"run": "ours, 2 workers, fast build", **fast["ours-2w-dlib"], "dlib": state})
            rows.append({"run": "ours, 2 workers, fast build's HOG, onnx", **fast["ours-2w-onnx"], "dlib": state})
            retry = runs_of(indexing(args.limit, "--skip-plain", "--encoders", "dlib",
                                     env={"FACESEARCH_DETECTION__UPSAMPLE_POLICY": "retry"}))
            rows.append({"run": 'ours, 2 workers, fast build, upsample_policy "retry"', **retry["ours-2w-dlib"],
                         "dlib": state})
        else:
            print("the fast build could not be installed here: its rows are left out", file=sys.stderr)
    finally:
        switch("apply" if started_fast else "revert")
        if saved is not None:
            (RESULTS_DIR / "indexing.json").write_bytes(saved)
    for row in rows:
        row["vs_plain"] = row["photos_per_s"] / plain["photos_per_s"]
    print_table(["run", "photos", "wall s", "photos/s", "faces", "x plain"],
                [[r["run"], r["photos"], r["seconds"], r["photos_per_s"], r["faces"], r["vs_plain"]] for r in rows],
                title=f"Indexing {args.limit} LFW DevTrain photos, by dlib build")
    write_results("indexing_builds", {"limit": args.limit, "runs": rows})


if __name__ == "__main__":
    main()
