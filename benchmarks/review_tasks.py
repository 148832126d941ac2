"""Issue 24's task benchmark: how much work it takes, in the browser, to
turn a clustering with mistakes into a fully correct labelling of an album,
on the pages before issue 24 and on today's, both in one run.

The album (built from LFW DevTrain in a temporary folder): 6 people with
15 photos each (the family), 40 people seen once (the strangers) and one
group photo of two family members side by side (LFW photos of the first
and the fourth, joined). It is indexed once with this checkout; the old
pages serve a copy of the index (the index files have the same layout).

Each server clusters the faces, and the run is then overwritten with the
same planted clustering for both (ground truth, with 4 mistakes of the
kinds users meet):

1. a wrong face inside a family group (the stranger nearest its centre);
2. one person split into two groups (along their faces' main direction);
3. a family member among the strangers (their face farthest from their
   centre);
4. two siblings in one photo in one group (the group photo's second face
   in the first one's group).

A scripted user then works from what each version's pages show, the way a
person would: they recognise faces (the script knows who each face is,
as the user's eyes do) but act only through the pages: no ids typed, no
API, no search. The old pages: name each group on /people, then open each
person's page to find and fix wrong faces (Not this person, Move to);
strangers have no controls there. Today's: open the first group and
review it whole (Remove from this group), name it (one click where the page
offers the name it recognised), go on to the next group, then name family
members among the strangers where they are shown (one click where offered).
Counted: page loads (a full page; an htmx partial counts too), clicks
(a select's option: two), keystrokes (typed names, Enter). Then the
labelling each reached is checked against the truth through the API: the
faces each person has, and those that nobody should have.

Run (from the repository root; needs Chromium and Playwright, as the
browser tests do, and git to check out the old pages)::

    .venv/bin/python -m benchmarks.review_tasks [--before 1374aa0] [--lfw DIR]

Results: ``benchmarks/results/review_tasks.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import DEFAULT_LFW, LFW_HINT, REPO_ROOT, print_table, require_dir, write_results

FAMILY = ("Venus_Williams", "Jennifer_Aniston", "Tim_Henman", "Halle_Berry", "John_Howard", "Pete_Sampras")
PHOTOS_EACH = 15
STRANGERS = 40
BEFORE = "1374aa0"  # the last commit before issue 24: the pages as the issue found them

SERVER = """
import sys
sys.path.insert(0, {root!r})
from config.settings import load_settings
from service import create_app
from werkzeug.serving import make_server
app = create_app(load_settings(data_dir={data!r}))
make_server("127.0.0.1", {port}, app, threaded=True).serve_forever()
"""


# -- the album and its truth ----------------------------------------------------


def build_album(lfw: Path, album: Path) -> None:
    """The family's photos, the strangers' and the group photo."""
    for name in FAMILY:
        photos = sorted((lfw / name).glob("*.jpg"))
        (album / name).mkdir(parents=True)
        for photo in photos[:PHOTOS_EACH]:
            shutil.copy(photo, album / name / photo.name)
    singles = sorted(p for p in lfw.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) == 1)
    (album / "strangers").mkdir()
    for person in singles[:: max(1, len(singles) // STRANGERS)][:STRANGERS]:
        photo = next(person.glob("*.jpg"))
        shutil.copy(photo, album / "strangers" / photo.name)
    left = Image.open(sorted((lfw / FAMILY[0]).glob("*.jpg"))[PHOTOS_EACH]).convert("RGB")
    right = Image.open(sorted((lfw / FAMILY[3]).glob("*.jpg"))[PHOTOS_EACH]).convert("RGB")
    joined = Image.new("RGB", (left.width + right.width, max(left.height, right.height)))
    joined.paste(left, (0, 0))
    joined.paste(right, (left.width, 0))
    (album / "group").mkdir()
    joined.save(album / "group" / "siblings.jpg", quality=92)


@dataclass
class Face:
    face_id: int
    path: str
    truth: str | None  # the family member it is, None for anyone else
    x: np.ndarray = field(repr=False)


def faces_of(data_dir: Path) -> list[Face]:
    """Every indexed face with who it truly is: in a family photo the
    largest face is the person (LFW's own convention), other faces are
    bystanders; in the group photo, left and right."""
    from indexer.store import open_published

    store = open_published(data_dir)
    try:
        ids, _, x = store.all_embeddings()
        records = store.faces(ids.tolist())
    finally:
        store.close()
    by_file: dict[str, list[int]] = {}
    for i, face_id in enumerate(ids.tolist()):
        by_file.setdefault(records[face_id].path, []).append(i)
    faces = []
    for path, rows in by_file.items():
        folder = Path(path).parent.name
        boxes = [records[int(ids[r])].box for r in rows]
        truths: list[str | None] = [None] * len(rows)
        if folder in FAMILY:
            truths[max(range(len(rows)), key=lambda j: boxes[j].area)] = folder
        elif folder == "group":
            order = sorted(range(len(rows)), key=lambda j: boxes[j].left)
            truths[order[0]], truths[order[-1]] = FAMILY[0], FAMILY[3]
        faces += [Face(int(ids[r]), path, truths[j], x[r]) for j, r in enumerate(rows)]
    return faces


def planted(faces: list[Face]) -> tuple[list[list[int]], dict[str, int]]:
    """The planted groups (face ids, largest first) and the mistakes' faces."""
    groups = {name: [f for f in faces if f.truth == name and "group" not in f.path] for name in FAMILY}
    centre = {name: np.mean([f.x for f in members], axis=0) for name, members in groups.items()}
    nobody = [f for f in faces if f.truth is None]
    sibling_left, sibling_right = (next(f for f in faces if "/group/" in f.path and f.truth == name)
                                   for name in (FAMILY[0], FAMILY[3]))
    intruder = min(nobody, key=lambda f: float(np.linalg.norm(f.x - centre[FAMILY[0]])))
    lost = max(groups[FAMILY[2]], key=lambda f: float(np.linalg.norm(f.x - centre[FAMILY[2]])))
    split = groups[FAMILY[1]]
    direction = np.linalg.svd(np.stack([f.x for f in split]) - centre[FAMILY[1]])[2][0]
    halves = sorted(split, key=lambda f: float((f.x - centre[FAMILY[1]]) @ direction))
    middle = len(halves) // 2
    clusters = [
        [f.face_id for f in groups[FAMILY[0]]] + [sibling_left.face_id, sibling_right.face_id, intruder.face_id],
        [f.face_id for f in halves[:middle]], [f.face_id for f in halves[middle:]],
        [f.face_id for f in groups[FAMILY[2]] if f is not lost],
        *([f.face_id for f in groups[name]] for name in FAMILY[3:]),
    ]
    clusters.sort(key=len, reverse=True)
    mistakes = {"intruder": intruder.face_id, "lost": lost.face_id, "sibling": sibling_right.face_id,
                "split_a": halves[0].face_id, "split_b": halves[-1].face_id}
    return clusters, mistakes


def plant(data_dir: Path, faces: list[Face], clusters: list[list[int]]) -> None:
    """Overwrite the last stored run's memberships with ``clusters`` (the
    others strangers), distances to each group's centre as the run keeps them."""
    x = {f.face_id: f.x for f in faces}
    centres = np.stack([np.mean([x[i] for i in members], axis=0) for members in clusters])
    member_of = {i: c for c, members in enumerate(clusters) for i in members}
    rows = []
    for face in faces:
        distances = np.linalg.norm(centres - face.x, axis=1)
        cluster = member_of.get(face.face_id, -1)
        nearest = cluster if cluster >= 0 else int(np.argmin(distances))
        rows.append((face.face_id, cluster, nearest, float(distances[nearest])))
    conn = sqlite3.connect(data_dir / "annotations.sqlite3")
    with conn:
        run_id = conn.execute("SELECT MAX(id) FROM cluster_runs").fetchone()[0]
        conn.execute("DELETE FROM cluster_faces WHERE run_id = ?", (run_id,))
        conn.executemany("INSERT INTO cluster_faces (run_id, face_id, cluster, nearest, distance) VALUES (?,?,?,?,?)",
                         [(run_id, *row) for row in rows])
        conn.execute("UPDATE cluster_runs SET k = ?, face_count = ? WHERE id = ?", (len(clusters), len(rows), run_id))
    conn.close()


# -- the servers ----------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read() or b"{}")


def start(root: Path, data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVER.format(root=str(root), data=str(data_dir), port=port)],
                               cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            call(url + "/api/v1/health")
            return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server of {root} did not start")


# -- the user ---------------------------------------------------------------------


class Counted:
    """A page whose user's actions are counted."""

    def __init__(self, page) -> None:
        self.page = page
        self.loads = self.partials = self.clicks = self.keys = 0
        page.on("load", lambda _: self._loaded())
        page.on("request", lambda r: self._partial() if r.headers.get("hx-request") else None)

    def _loaded(self) -> None:
        self.loads += 1

    def _partial(self) -> None:
        self.partials += 1

    def click(self, locator) -> None:
        self.clicks += 1
        locator.click()
        self.page.wait_for_load_state("load")

    def check(self, locator) -> None:
        self.clicks += 1
        locator.check()

    def choose(self, select, label: str) -> None:
        self.clicks += 2  # open the list, pick the option
        select.select_option(label=label)

    def type(self, locator, text: str) -> None:
        self.keys += len(text)
        locator.fill(text)

    def enter(self, locator) -> None:
        self.keys += 1
        locator.press("Enter")
        self.page.wait_for_load_state("load")

    def counts(self) -> dict[str, int]:
        return {"page_loads": self.loads + self.partials, "clicks": self.clicks, "keystrokes": self.keys,
                "total": self.loads + self.partials + self.clicks + self.keys}


def shown(name: str) -> str:
    return name.replace("_", " ")


def majority(truth: dict[int, str | None], ids: list[int]) -> str | None:
    named = Counter(truth[i] for i in ids if truth.get(i))
    return named.most_common(1)[0][0] if named else None


def face_ids(locator) -> list[int]:
    return [int(v) for v in locator.evaluate_all("els => els.map(e => e.dataset.faceId)")]


def old_user(user: Counted, url: str, truth: dict[int, str | None]) -> list[str]:
    """The pages before issue 24. Returns what could not be done."""
    page = user.page
    page.goto(url + "/people")
    while (unnamed := page.locator("section.cluster:has(form.name-form)")).count():
        group = unnamed.first
        who = majority(truth, face_ids(group.locator("[data-face-id]")))
        user.type(group.get_by_label("Name"), shown(who or "Nobody"))
        user.click(group.get_by_role("button", name="Save"))
    names = page.locator("ul.people a.person").all_inner_texts()
    for name in names:
        user.click(page.locator("ul.people a.person", has_text=name).first)
        tiles = face_ids(page.locator("ul.grid [data-face-id]"))
        wrong = [i for i in tiles if truth.get(i) != name.replace(" ", "_")]
        nobody = [i for i in wrong if truth.get(i) is None]
        if nobody:
            for face in nobody:
                user.check(page.locator(f'input[name="face_ids"][value="{face}"]'))
            user.click(page.get_by_role("button", name="Not this person"))
        for face in (i for i in wrong if truth.get(i)):
            user.check(page.locator(f'input[name="face_ids"][value="{face}"]'))
            user.choose(page.get_by_label("Move to"), shown(truth[face] or ""))
            user.click(page.get_by_role("button", name="Move", exact=True))
        user.click(page.get_by_role("link", name="People", exact=True))
    strangers = face_ids(page.locator("section.cluster:has(#strangers-title) [data-face-id]"))
    return [f"face {i} of {truth[i]} among the strangers: no control names a stranger"
            for i in strangers if truth.get(i)]


def new_user(user: Counted, url: str, truth: dict[int, str | None]) -> list[str]:
    """Today's pages. Returns what could not be done."""
    page = user.page
    page.goto(url + "/people")
    groups = page.locator("a.group")
    if groups.count():
        user.click(groups.first)
    for _ in range(100):  # a guard: each group is named once
        if "/clusters/" not in page.url:
            break
        tiles = face_ids(page.locator("ul.grid [data-face-id]"))
        who = majority(truth, tiles)
        wrong = [i for i in tiles if truth.get(i) != who]
        if wrong:
            for face in wrong:
                user.check(page.locator(f'input[name="face_ids"][value="{face}"]'))
            user.click(page.get_by_role("button", name="Remove from this group"))
        offered = page.get_by_role("button", name=f"Name them {shown(who or '')}", exact=True)
        if who and offered.count():  # the page recognised them: one click
            user.click(offered)
            continue
        name = page.get_by_label("Name", exact=True)
        user.type(name, shown(who or "Nobody"))
        user.enter(name)  # Enter saves (a click on Save while the list of names is open only closes it)
    if "/people" not in page.url:
        user.click(page.get_by_role("link", name="People", exact=True))
    left = []
    while True:
        strangers = page.locator("ul.strangers li")
        known = [i for i in face_ids(strangers.locator("[data-face-id]")) if truth.get(i)]
        if not known:
            break
        if not page.locator("details#strangers").evaluate("d => d.open"):
            user.click(page.locator("#strangers-title"))
        row = strangers.filter(has=page.locator(f'[data-face-id="{known[0]}"]'))
        offered = row.get_by_role("button", name=f"This is {shown(truth[known[0]] or '')}", exact=True)
        if offered.count():  # the page recognised them: one click
            user.click(offered)
        else:
            user.type(row.get_by_label("This is"), shown(truth[known[0]] or ""))
            user.click(row.get_by_role("button", name="Save"))
        if known[0] in face_ids(page.locator("ul.strangers [data-face-id]")):
            left.append(f"face {known[0]} of {truth[known[0]]}: still a stranger after naming")
            break
    return left


# -- the check --------------------------------------------------------------------


def labelling(url: str) -> dict[str, set[int]]:
    """Who has which faces now, by the API."""
    out = {}
    for person in call(url + "/api/v1/people")["people"]:
        pid = person.get("id", person.get("person_id"))
        got = call(f"{url}/api/v1/people/{pid}/faces?limit=1000")
        out[person["name"]] = {f["face_id"] for f in got["faces"]}
    return out


def judge(have: dict[str, set[int]], faces: list[Face], mistakes: dict[str, int]) -> dict[str, object]:
    """How far the labelling is from the truth, and which planted mistakes were fixed."""
    owner = {i: name for name, ids in have.items() for i in ids}
    truth = {f.face_id: f.truth for f in faces}
    wrong = sorted(i for i, name in owner.items() if truth.get(i) is None or shown(truth[i] or "") != name)
    missing = sorted(i for i, t in truth.items() if t and owner.get(i) != shown(t))
    split = owner.get(mistakes["split_a"]) == owner.get(mistakes["split_b"]) == shown(FAMILY[1])
    fixed = {
        "wrong face in a family group": mistakes["intruder"] not in owner,
        "one person split in two groups": split and len(have) == len(FAMILY),
        "family member among the strangers": owner.get(mistakes["lost"]) == shown(FAMILY[2]),
        "siblings in one photo in one group": owner.get(mistakes["sibling"]) == shown(FAMILY[3]),
    }
    return {"people": len(have), "faces_wrongly_attributed": len(wrong), "family_faces_missing": len(missing),
            "fixed": fixed, "correct": not wrong and not missing and len(have) == len(FAMILY)}


def run_version(label: str, root: Path, data_dir: Path, faces: list[Face], clusters: list[list[int]],
                mistakes: dict[str, int], user_of, browser) -> dict[str, object]:
    process, url = start(root, data_dir)
    try:
        call(url + "/api/v1/clusters", {"method": "kmeans", "k": len(clusters)})
        plant(data_dir, faces, clusters)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(10_000)
        user = Counted(page)
        started = time.perf_counter()
        left = user_of(user, url, {f.face_id: f.truth for f in faces})
        seconds = time.perf_counter() - started
        page.close()
        result = {"version": label, **user.counts(), "not_possible": left, "seconds": round(seconds, 1),
                  **judge(labelling(url), faces, mistakes)}
    finally:
        process.terminate()
        process.wait(timeout=30)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW DevTrain (Person/Person_NNNN.jpg)")
    parser.add_argument("--before", default=BEFORE, help="the commit whose pages are 'before' (default: %(default)s)")
    parser.add_argument("--keep", type=Path, help="build the album and indexes here and keep them")
    args = parser.parse_args(argv)
    lfw = require_dir(args.lfw, "LFW DevTrain", LFW_HINT)
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import chromium_path

    work = args.keep or Path(tempfile.mkdtemp(prefix="review-tasks-"))
    try:
        album, new_dir, old_dir, old_root = work / "album", work / "index-new", work / "index-old", work / "before"
        if not album.exists():
            build_album(lfw, album)
        if not new_dir.exists():
            subprocess.run([str(Path(sys.executable).parent / "facesearch"), "index", str(album), "--data-dir",
                            str(new_dir)],
                           cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
        shutil.rmtree(old_dir, ignore_errors=True)
        shutil.copytree(new_dir, old_dir, ignore=shutil.ignore_patterns("annotations.sqlite3*", "access.sqlite3*"))
        (new_dir / "annotations.sqlite3").unlink(missing_ok=True)
        if not old_root.exists():
            subprocess.run(["git", "worktree", "add", "--detach", "-f", str(old_root), args.before], cwd=REPO_ROOT,
                           check=True, capture_output=True)
        faces = faces_of(new_dir)
        clusters, mistakes = planted(faces)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
            before = run_version(f"before ({args.before})", old_root, old_dir, faces, clusters, mistakes, old_user,
                                 browser)
            after = run_version("today", REPO_ROOT, new_dir, faces, clusters, mistakes, new_user, browser)
            browser.close()
    finally:
        if args.keep is None:
            subprocess.run(["git", "worktree", "remove", "--force", str(work / "before")], cwd=REPO_ROOT,
                           capture_output=True)
            shutil.rmtree(work, ignore_errors=True)
    rows = []
    for result in (before, after):
        fixed = result["fixed"]
        rows.append([result["version"], result["page_loads"], result["clicks"], result["keystrokes"], result["total"],
                     f"{sum(fixed.values())}/{len(fixed)}", "yes" if result["correct"] else "no"])
    print_table(["pages", "page loads", "clicks", "keystrokes", "total", "mistakes fixed", "all correct"], rows,
                title=f"Reaching a correct labelling: {len(FAMILY)} people x {PHOTOS_EACH} photos, {STRANGERS} "
                      f"strangers, a group photo, 4 planted mistakes")
    for result in (before, after):
        for what in result["not_possible"]:
            print(f"{result['version']}: not possible: {what}")
    ratio = after["total"] / before["total"] if before["total"] else float("nan")
    names = sum(len(shown(name)) for name in FAMILY)  # typed once on any pages: the names themselves
    rest = [result["total"] - names for result in (before, after)]
    print(f"today / before (total actions): {ratio:.2f}")
    print(f"besides typing the {len(FAMILY)} names once ({names} characters): before {rest[0]}, today {rest[1]}: "
          f"{rest[1] / rest[0]:.2f}")
    write_results("review_tasks", {"album": {"family": list(FAMILY), "photos_each": PHOTOS_EACH,
                                             "strangers": STRANGERS, "faces": len(faces)},
                                   "before": before, "after": after, "ratio_total": round(ratio, 3),
                                   "name_characters": names, "ratio_besides_names": round(rest[1] / rest[0], 3)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
