"""Lookalikes and the cost of the evidence, on LFW DevTrain.

A copy of an index of LFW DevTrain (``--data-dir``: e.g. the one
``benchmarks.identification --data-dir DIR`` keeps) is made in a temporary
folder, and every person is named with all their labelled faces (the face
nearest each photo's centre, LFW's rule).

**Lookalikes** (``application.lookalikes``), for ``--people`` people with
2+ photos spread over the alphabet:

- the offered lookalike is always another person (the person themself
  never; LFW names each person once, so another name is another person;
  the 10 nearest pairs are listed for a look at possible duplicates);
- where it ranks among all other people by a measure it was not chosen
  by, the distance between the two people's mean faces (1 = the nearest
  person by that measure too), as a rank and a percentile;
- its distance against the median distance to everyone else.

**Time** (p50 and p95, ms) of an explanation (``GET
/api/v1/faces/<id>/explanation``'s work) of ``--faces`` faces, a person's
lookalikes, a similarity map of two faces (both chips cut from their
files, 202 chips encoded) and the precision/recall curve (cold).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.explanations --data-dir DIR [--people 400] [--faces 200] [--maps 20]

Results: ``benchmarks/results/explanations.json``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from application.compare import compare_faces
from application.explanations import explain_face
from application.lookalikes import lookalikes
from application.tradeoff import tradeoff_curve
from benchmarks.common import DEFAULT_LFW, LFW_HINT, now, percentile_ms, print_table, require_dir, write_results
from benchmarks.identification import Labelled, labelled_faces
from config.settings import load_settings
from indexer.model import face_model
from indexer.people.annotations import AnnotationsDB
from indexer.store import EmbeddedStore


def timed(calls) -> list[float]:
    out = []
    for call in calls:
        started = now()
        call()
        out.append(now() - started)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    parser.add_argument("--data-dir", type=Path, required=True, help="an index of LFW DevTrain (copied, not changed)")
    parser.add_argument("--people", type=int, default=400, help="people whose lookalikes are measured")
    parser.add_argument("--faces", type=int, default=200, help="faces explained")
    parser.add_argument("--maps", type=int, default=20, help="pairs of faces mapped")
    args = parser.parse_args(argv)
    lfw = require_dir(args.lfw, "LFW DevTrain", LFW_HINT)
    work = Path(tempfile.mkdtemp(prefix="facesearch-explanations-"))
    try:
        data_dir = work / "index"
        shutil.copytree(args.data_dir, data_dir)
        settings = load_settings(data_dir=data_dir)
        labelled = labelled_faces(data_dir, lfw)
        store = EmbeddedStore.open_published(data_dir)
        db = AnnotationsDB.open(data_dir)
        try:
            return run(args, settings, store, db, labelled)
        finally:
            db.close()
            store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, settings, store: EmbeddedStore, db: AnnotationsDB, labelled: Labelled) -> int:
    started = now()
    people: dict[str, list[int]] = {}  # each person's labelled face ids, by path
    for person, face_id in zip(labelled.persons.tolist(), labelled.face_ids.tolist()):
        people.setdefault(labelled.names[person], []).append(face_id)
    person_id = {}
    for name, faces in people.items():
        person_id[name] = db.create_person(name, faces).person.person_id
    name_of = {v: k for k, v in person_id.items()}
    print(f"{len(people)} people named with {sum(map(len, people.values()))} faces ({now() - started:.1f} s)")

    names = sorted(people)
    x = {n: store.vectors_of(np.array(people[n])).astype(np.float64) for n in names}
    centres = np.array([x[n].mean(axis=0) for n in names])
    several = [n for n in names if len(people[n]) >= 2]
    chosen = [several[i] for i in np.linspace(0, len(several) - 1, min(args.people, len(several))).astype(int)]
    ranks, percentiles, ratios, confusable, lookalike_s = [], [], [], [], []
    themselves = 0
    for name in chosen:
        t0 = now()
        found = lookalikes(store, db, person_id[name], 1)
        lookalike_s.append(now() - t0)
        other = name_of[found[0].person_id]
        themselves += other == name
        i = names.index(name)
        d = np.linalg.norm(centres - centres[i], axis=1)
        d[i] = np.inf
        rank = int((d < d[names.index(other)]).sum()) + 1
        ranks.append(rank)
        percentiles.append(100.0 * rank / (len(names) - 1))
        step = max(1, len(names) // 300)
        to_all = [np.linalg.norm(x[n][:, None] - x[name][None], axis=2).min() for n in names[::step] if n != name]
        ratios.append(found[0].distance / float(np.median(to_all)))
        confusable.append((name, other, found[0].distance))
    distances = np.array([d for _, _, d in confusable])
    print_table(("people", "offered themselves", "rank by mean face: median", "p90", "share ranked 1st",
                 "percentile median", "distance / median to others", "distance median", "under 0.6", "under 0.5"),
                [(len(chosen), themselves, int(np.median(ranks)), int(np.percentile(ranks, 90)),
                  f"{np.mean(np.array(ranks) == 1):.2f}", f"{np.median(percentiles):.2f}%",
                  f"{np.median(ratios):.2f}", f"{np.median(distances):.3f}", int((distances < 0.6).sum()),
                  int((distances < 0.5).sum()))], title="lookalikes")
    print("the nearest lookalikes (a look for duplicate identities):")
    for name, other, distance in sorted(confusable, key=lambda c: c[2])[:10]:
        print(f"  {name} ~ {other}: {distance:.3f}")

    ids = store.face_ids()
    sample = ids[np.linspace(0, len(ids) - 1, min(args.faces, len(ids))).astype(int)]
    explain_s = timed(lambda f=int(f): explain_face(store, db, f, settings) for f in sample)
    model = face_model(settings.encoding)
    pairs = [(people[n][0], people[n][1]) for n in chosen[: args.maps]]
    compare_faces(store, model.encoder, *pairs[0], max_pixels=settings.indexer.max_image_pixels)  # loads the model
    map_s = timed(lambda p=p: compare_faces(store, model.encoder, *p, max_pixels=settings.indexer.max_image_pixels)
                  for p in pairs)
    curve_s = timed([lambda: tradeoff_curve(store, db)])
    rows = [(what, len(times), f"{percentile_ms(times, 50):.1f}", f"{percentile_ms(times, 95):.1f}")
            for what, times in (("explanation", explain_s), ("lookalikes", lookalike_s),
                                ("similarity map", map_s), ("precision/recall curve (cold)", curve_s))]
    print_table(("what", "runs", "p50 ms", "p95 ms"), rows, title=f"time, {len(ids)} faces, {len(people)} people")
    path = write_results("explanations", {
        "command": "python -m benchmarks.explanations " + " ".join(argv_of(args)),
        "faces": len(ids), "people": len(people), "lookalike_people": len(chosen),
        "offered_themselves": themselves, "rank_median": float(np.median(ranks)),
        "rank_p90": float(np.percentile(ranks, 90)), "ranked_first": float(np.mean(np.array(ranks) == 1)),
        "percentile_median": float(np.median(percentiles)), "distance_over_median": float(np.median(ratios)),
        "lookalikes": [{"person": a, "lookalike": b, "distance": d} for a, b, d in confusable],
        "ms": {what: {"p50": float(p50), "p95": float(p95)} for what, _, p50, p95 in rows},
    })
    print(f"results: {path}")
    return 0


def argv_of(args) -> list[str]:
    return [f"--data-dir {args.data_dir}", f"--people {args.people}", f"--faces {args.faces}", f"--maps {args.maps}"]


if __name__ == "__main__":
    raise SystemExit(main())
