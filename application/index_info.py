"""``GET /api/v1/index``: the served generation and the last reindex run."""

from __future__ import annotations

from application.index_handle import ServedIndex
from application.schemas import IndexResponse, LastRun, RunError

ERROR_SAMPLES = 5


def index_response(served: ServedIndex, last_run: dict | None) -> IndexResponse:
    """Describe ``served`` and ``last_run`` (a record of ``runs.jsonl``, see
    ``indexer.store.runs``; None before the first run)."""
    store = served.store
    return IndexResponse(
        faces=store.count(), photos=store.photo_count(), generation=served.generation,
        published_at=store.manifest.get("updated_at"), model=store.manifest.get("model", ""),
        index_type=store.index_type, search=store.search_description,
        last_run=None if last_run is None else _last_run(last_run),
    )


def _last_run(record: dict) -> LastRun:
    errors = record.get("errors") or []
    return LastRun.model_validate(
        {
            **record,
            "errors": len(errors),
            "error_samples": [RunError.model_validate(e) for e in errors[:ERROR_SAMPLES]],
        }
    )
