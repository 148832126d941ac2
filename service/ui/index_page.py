"""``/index``: what the served index is, the last reindex runs and the
files they could not read; an administrator starts a reindex of the
indexed folders here and follows its progress (``application.reindex``)."""

from __future__ import annotations

from flask import request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from application import reindex
from application.index_info import index_response
from indexer.store import runs
from service.context import audited, served, state
from service.ui.actions import Outcome, admin, done, run_action
from service.ui.views import bp, page

RECENT_RUNS = 10


@bp.route("/index", methods=["GET", "POST"])
def index_page() -> ResponseReturnValue:
    outcome = Outcome()
    if request.method == "POST":
        outcome = run_action({"reindex": _reindex})
        if outcome.response is not None:
            return outcome.response
    st = state()
    data_dir = st.index.data_dir
    return page("index.html", status=outcome.status, title="Index", info=index_response(served(), data_dir),
                runs=runs.recent_runs(data_dir, RECENT_RUNS), warning=st.index.warning,
                running=reindex.progress(data_dir), roots=reindex.last_roots(data_dir),
                configured=st.settings.detection.model, detectors=DETECTOR_NAMES, errors=outcome.errors)


DETECTOR_NAMES = {"yunet": "YuNet", "hog": "dlib's HOG", "cnn": "dlib's CNN"}


@bp.get("/index/progress")
def index_progress() -> ResponseReturnValue:
    """The reindex's progress alone (the page asks for it every 2 s while one runs)."""
    return page("_reindex.html", running=reindex.progress(state().index.data_dir))


def _reindex() -> Response:
    admin()
    st = state()
    roots = reindex.start(st.index.data_dir, st.settings, st.model)
    audited(params={"action": "reindex", "folders": len(roots)})
    return done(url_for("ui.index_page"), reindexing=len(roots))
