"""What the index is: its health (``GET /api/v1/health``), the served
generation and the last reindex run (``GET /api/v1/index``, the index page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from application.index_handle import IndexHandle, ServedIndex
from application.schemas import HealthResponse, IndexResponse, LastRun, RunError
from indexer.indexing import detection_from_signature
from indexer.store import runs

ERROR_SAMPLES = 5


def health_response(handle: IndexHandle, served: ServedIndex, encoder: str) -> HealthResponse:
    """Liveness and size of the served index, the ``encoder`` queries are
    encoded with, and why a newer generation is not served yet (``warning``)."""
    store = served.store
    return HealthResponse(status="ok", faces=store.count(), photos=store.photo_count(),
                          model=store.manifest.get("model", ""), encoder=encoder,
                          index_type=store.index_type, warning=handle.warning)


def index_response(served: ServedIndex, data_dir: Path) -> IndexResponse:
    """Describe ``served`` and the last reindex run of ``data_dir`` (a
    record of ``runs.jsonl``; null before the first run)."""
    last_run = runs.last_run(data_dir)
    store = served.store
    return IndexResponse(
        faces=store.count(), photos=store.photo_count(), generation=served.generation,
        published_at=store.manifest.get("updated_at"), model=store.manifest.get("model", ""),
        detector=built.model if (built := detection_from_signature(store.manifest.get("detection"))) else None,
        index_type=store.index_type, search=store.search_description,
        last_run=None if last_run is None else _last_run(last_run),
    )


def _last_run(record: dict[str, Any]) -> LastRun:
    errors = record.get("errors") or []
    return LastRun.model_validate(
        {
            **record,
            "errors": len(errors),
            "error_samples": [RunError.model_validate(e) for e in errors[:ERROR_SAMPLES]],
        }
    )
