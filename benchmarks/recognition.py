"""Recognition of new faces of named people (``indexer.people.recognition``):
quality on LFW DevTrain against the plain rule, side by side, and its cost.

1. **Quality**, the issue's scenario: the 10 people with the most photos
   (1,325 faces) and 200 people seen once, drawn at random ``--draws``
   times. A share of each person's photos (5%, 20%, 50%, at least one) is
   confirmed; the other photos and the strangers are the new faces. For
   each rule: precision (suggestions that name the right person), recall
   (new faces of the 10 people suggested to the right person), strangers
   named and wrong names per draw (mean, and worst draw). Rules, on the same
   draws: facesearch's rule (``[recognition]`` settings) and the plain
   "nearest confirmed face within 0.5".
2. The same on the **tuning families** the rule's numbers were chosen on:
   10 draws of 10 people among those ranked 11 to 111 by photo count (10 to
   48 photos each) and 200 strangers from the other half of the people seen
   once (never those of part 1), 2 draws of the confirmed faces each.
3. **End to end**: one draw of part 1 at 20% through the real pipeline
   (an index of the faces, the confirmed ones assigned through
   ``AnnotationsDB.create_person``, then ``recognise_index``), which must
   give the same suggestions as part 1.
4. **Cost**: 10,000 new faces against 1,000 named people with 20 confirmed
   faces each (synthetic faces shaped like LFW's, ``benchmarks/synthetic.py``):
   the rule alone, and ``recognise_index`` over an index of 30,000 faces
   with the annotations (the suggestions written to SQLite).

Run (from the repository root)::

    .venv/bin/python -m benchmarks.recognition [--data-dir DIR] [--draws 5]

``--data-dir`` reuses an LFW index (``benchmarks.indexing --limit 0 --keep
DIR`` leaves one); without it LFW is indexed into a temporary folder first
(about 9 minutes with 2 workers). Results: ``benchmarks/results/recognition.json``.
"""

from __future__ import annotations

import argparse
import io
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from PIL import Image

from benchmarks.common import print_table, write_results
from benchmarks.identification import Labelled, add_index_arguments, indexed_lfw
from benchmarks.synthetic import FaceModel
from config.settings import RecognitionSettings
from indexer.model import Box
from indexer.people.annotations import AnnotationsDB
from indexer.people.recognition import Suggestions, recognise_index, suggest
from indexer.store import EmbeddedStore, FileRecord, NewFace

SHARES = (0.05, 0.2, 0.5)
FAMILY = 10
STRANGERS = 200
PLAIN_DISTANCE = 0.5


def plain_rule(x: np.ndarray, confirmed: np.ndarray, confirmed_person: np.ndarray) -> Suggestions:
    """The baseline: the person of the nearest confirmed face, when within 0.5."""
    d_sq = faiss.pairwise_distances(x, confirmed)
    nearest = d_sq.argmin(axis=1)
    d = np.sqrt(np.maximum(d_sq[np.arange(len(x)), nearest], 0.0))
    person = np.where(d <= PLAIN_DISTANCE, confirmed_person[nearest], -1)
    return Suggestions(person.astype(np.int64), d.astype(np.float32))


RULES = {
    "facesearch": lambda x, c, p: suggest(x, c, p, RecognitionSettings()),
    "facesearch, margin 0.08": lambda x, c, p: suggest(x, c, p, RecognitionSettings(margin=0.08)),
    f"plain, nearest within {PLAIN_DISTANCE}": plain_rule,
}


@dataclass
class Draw:
    """One draw: rows of ``Labelled`` confirmed, new family faces, strangers."""

    confirmed: np.ndarray
    new: np.ndarray
    strangers: np.ndarray


def draw(faces: Labelled, family: np.ndarray, pool: np.ndarray, share: float, seed: int) -> Draw:
    rng = np.random.default_rng(seed)
    confirmed, new = [], []
    for person in family:
        rows = rng.permutation(np.flatnonzero(faces.persons == person))
        n = max(1, math.ceil(share * len(rows)))
        confirmed += rows[:n].tolist()
        new += rows[n:].tolist()
    strangers = rng.choice(pool, STRANGERS, replace=False)
    stranger_rows = [int(np.flatnonzero(faces.persons == s)[0]) for s in strangers]
    return Draw(np.array(confirmed), np.array(new), np.array(stranger_rows))


def score(faces: Labelled, d: Draw, found: Suggestions) -> dict[str, float]:
    queries = np.concatenate([d.new, d.strangers])
    truth = faces.persons[queries]
    is_stranger = np.arange(len(queries)) >= len(d.new)
    named = found.person >= 0
    right = named & (found.person == truth) & ~is_stranger
    return {
        "suggested": int(named.sum()),
        "precision": float(right.sum() / named.sum()) if named.any() else 1.0,
        "recall": float(right.sum() / len(d.new)),
        "strangers_named": int((named & is_stranger).sum()),
        "wrong_names": int(named.sum() - right.sum()),
    }


def evaluate(faces: Labelled, families: list[np.ndarray], pool: np.ndarray, draws: int) -> dict:
    """Per share and rule: mean precision, recall, strangers named and wrong
    names over every (family, draw), and the worst draw's."""
    out: dict = {}
    x = faces.x.astype(np.float32)
    for share in SHARES:
        per_rule: dict[str, list[dict]] = {name: [] for name in RULES}
        for f, family in enumerate(families):
            for seed in range(draws):
                d = draw(faces, family, pool, share, seed=1000 * seed + f)
                queries = np.concatenate([d.new, d.strangers])
                for name, rule in RULES.items():
                    per_rule[name].append(score(faces, d, rule(x[queries], x[d.confirmed], faces.persons[d.confirmed])))
        out[str(share)] = {name: summarise(rows) for name, rows in per_rule.items()}
    return out


def summarise(rows: list[dict]) -> dict:
    values = {k: np.array([r[k] for r in rows], dtype=float) for k in rows[0]}
    return {
        "draws": len(rows),
        "precision": float(values["precision"].mean()), "precision_worst": float(values["precision"].min()),
        "recall": float(values["recall"].mean()), "recall_worst": float(values["recall"].min()),
        "strangers_named": float(values["strangers_named"].mean()),
        "strangers_named_worst": int(values["strangers_named"].max()),
        "wrong_names": float(values["wrong_names"].mean()), "wrong_names_worst": int(values["wrong_names"].max()),
    }


def print_quality(title: str, result: dict, strangers: int) -> None:
    rows = []
    for share, per_rule in result.items():
        for name, s in per_rule.items():
            rows.append([f"{float(share):.0%}", name, f"{s['precision']:.4f} ({s['precision_worst']:.4f})",
                         f"{s['recall']:.4f} ({s['recall_worst']:.4f})",
                         f"{s['strangers_named']:.1f} of {strangers} ({s['strangers_named_worst']})",
                         f"{s['wrong_names']:.1f} ({s['wrong_names_worst']})"])
    print_table(["confirmed", "rule", "precision (worst)", "recall (worst)", "strangers named (worst)",
                 "wrong names (worst)"], rows, title=title)


def end_to_end(faces: Labelled, family: np.ndarray, pool: np.ndarray, share: float) -> dict:
    """One draw through an index and the annotations: ``recognise_index``
    must suggest what ``suggest`` does."""
    d = draw(faces, family, pool, share, seed=0)
    rows = np.concatenate([d.confirmed, d.new, d.strangers])
    with tempfile.TemporaryDirectory(prefix="facesearch-recognition-") as tmp:
        store = EmbeddedStore.open(Path(tmp))
        face_of_row = {}
        thumbnail = _thumbnail()
        for row in rows.tolist():
            record = FileRecord(path=faces.paths[row], size=1, mtime_ns=1, content_hash=str(row), width=250,
                                height=250, detection="{}", model="benchmark")
            store.put_file(record, [NewFace(Box(60, 190, 190, 60), faces.x[row].astype(np.float32), thumbnail)])
        for row, face_id in zip(rows.tolist(), store.face_ids().tolist()):
            face_of_row[row] = face_id
        store.checkpoint()
        annotations = AnnotationsDB.open(Path(tmp))
        for person in family:
            mine = [face_of_row[r] for r in d.confirmed.tolist() if faces.persons[r] == person]
            annotations.create_person(faces.names[person], mine)
        started = time.perf_counter()
        report = recognise_index(store, annotations)
        seconds = time.perf_counter() - started
        name_of = {p.person_id: p.name for p in annotations.people()}
        got = {f: name_of[a.person_id] for f, a in annotations.attributions(list(face_of_row.values())).items()
               if a.source == "suggested"}
        annotations.close()
        store.close()
    queries = np.concatenate([d.new, d.strangers])
    x = faces.x.astype(np.float32)
    expected = suggest(x[queries], x[d.confirmed], faces.persons[d.confirmed])
    want = {face_of_row[int(r)]: faces.names[p] for r, p in zip(queries, expected.person) if p >= 0}
    return {"share": share, "suggested": len(got), "same_as_the_rule": got == want, "seconds": round(seconds, 3),
            "report": report.to_dict()}


def _thumbnail() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 128, 128)).save(out, format="JPEG")
    return out.getvalue()


def cost(faces: Labelled, people: int = 1000, confirmed_each: int = 20, new_faces: int = 10_000) -> dict:
    """Synthetic people shaped like LFW's: the rule alone, then the whole
    step over an index with the annotations."""
    model = FaceModel.fit(faces.x, faces.persons)
    rng = np.random.default_rng(0)
    dim = len(model.mean)
    per_person = confirmed_each + math.ceil(new_faces / people)
    centres = model.mean + rng.normal(size=(people, dim)) @ model.centre_factor.T
    person = np.repeat(np.arange(people), per_person)
    x = (centres[person] + rng.normal(size=(len(person), dim)) @ model.within_factor.T).astype(np.float32)
    is_confirmed = np.tile(np.arange(per_person) < confirmed_each, people)
    new_rows = np.flatnonzero(~is_confirmed)[:new_faces]
    started = time.perf_counter()
    found = suggest(x[new_rows], x[is_confirmed], person[is_confirmed])
    rule_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="facesearch-recognition-cost-") as tmp:
        store = EmbeddedStore.open(Path(tmp))
        thumbnail = _thumbnail()
        rows = np.concatenate([np.flatnonzero(is_confirmed), new_rows])
        for row in rows.tolist():
            record = FileRecord(path=f"/synthetic/{row}.jpg", size=1, mtime_ns=1, content_hash=str(row), width=100,
                                height=100, detection="{}", model="synthetic")
            store.put_file(record, [NewFace(Box(0, 50, 50, 0), x[row], thumbnail)])
        store.checkpoint()
        ids = store.face_ids()
        annotations = AnnotationsDB.open(Path(tmp))
        confirmed_ids = ids[: is_confirmed.sum()]
        owners = person[np.flatnonzero(is_confirmed)]
        for p in range(people):
            annotations.create_person(f"person {p}", confirmed_ids[owners == p].tolist())
        annotations.recognition_input()
        recognise_index(store, annotations)  # the first recognition evaluates everyone (all are new people)
        # Then 10k new faces arrive: the watermark is moved back below them.
        with annotations._write() as conn:
            conn.execute("UPDATE recognition_state SET value = ?", (int(ids[is_confirmed.sum() - 1]),))
            conn.execute("DELETE FROM suggestions")
        started = time.perf_counter()
        report = recognise_index(store, annotations)
        step_s = time.perf_counter() - started
        annotations.close()
        store.close()
    return {"people": people, "confirmed_faces": int(is_confirmed.sum()), "new_faces": len(new_rows),
            "rule_seconds": round(rule_s, 3), "step_seconds": round(step_s, 3),
            "suggested": int((found.person >= 0).sum()), "step_report": report.to_dict()}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_index_arguments(parser)
    parser.add_argument("--draws", type=int, default=5, help="random draws of strangers and confirmed faces")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    lfw, _, _, faces = indexed_lfw(args, "facesearch-recognition-index-")
    counts = np.bincount(faces.persons)
    by_count = np.argsort(-counts, kind="stable")
    family = by_count[:FAMILY]
    # The people seen once, split in two halves: one for the evaluation, the other for tuning.
    once = np.random.default_rng(0).permutation(np.flatnonzero(counts == 1))
    evaluation_pool, tuning_pool = once[: len(once) // 2], once[len(once) // 2 :]
    rng = np.random.default_rng(7)
    tuning_families = [rng.choice(by_count[FAMILY:111], FAMILY, replace=False) for _ in range(10)]

    quality = evaluate(faces, [family], evaluation_pool, args.draws)
    print_quality(f"1. The {FAMILY} people with most photos ({int(counts[family].sum()):,} faces) and {STRANGERS} "
                  f"strangers, {args.draws} draws: mean (worst draw)", quality, STRANGERS)
    tuning = evaluate(faces, tuning_families, tuning_pool, 2)
    print_quality(f"2. Tuning families: 10 x {FAMILY} people ranked 11-111 and {STRANGERS} other strangers, "
                  "2 draws each", tuning, STRANGERS)
    pipeline = end_to_end(faces, family, evaluation_pool, 0.2)
    print(f"\n3. End to end (20% confirmed, one draw): {pipeline['suggested']} suggestions in "
          f"{pipeline['seconds']} s, same as the rule: {pipeline['same_as_the_rule']}")
    spent = cost(faces)
    print_table(["part", "seconds"], [
        [f"rule: {spent['new_faces']:,} new faces x {spent['confirmed_faces']:,} confirmed "
         f"of {spent['people']:,} people", spent["rule_seconds"]],
        ["recognise_index: the same, with the index and SQLite", spent["step_seconds"]],
    ], title="4. Cost")
    write_results("recognition", {
        "lfw": lfw, "rule": RecognitionSettings().model_dump(), "plain_distance": PLAIN_DISTANCE,
        "family": [faces.names[p] for p in family], "family_faces": int(counts[family].sum()),
        "quality": quality, "tuning": tuning, "end_to_end": pipeline, "cost": spent,
    })


if __name__ == "__main__":
    main()
