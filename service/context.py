"""What a request of the API or of the pages works with: the app's state
(``state``), the index generation it reads (``served``), who is asking
(``client``, ``actor``) and what goes into its audit line (``audited``)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g, request

from application.access import ApiKey
from application.access_store import AccessStore
from application.audit import AuditLog
from application.client import client_address
from application.index_handle import IndexHandle, ServedIndex
from application.photo_slots import PhotoSlots
from config.settings import DetectionSettings, Settings
from indexer.model import FaceModel
from indexer.people.annotations import AnnotationsDB


@dataclass
class ServiceState:
    """What the app holds in ``app.extensions["facesearch"]``."""

    settings: Settings
    # What finds and encodes the faces of query photos.
    model: FaceModel
    # The published index generation, read-only, switched when a reindex publishes another.
    index: IndexHandle
    # People and clustering runs, read-write (not versioned with the index).
    annotations: AnnotationsDB
    # Sessions and wrong keys, shared by the server's workers.
    access: AccessStore
    # Photo searches running per client address, across workers.
    photo_slots: PhotoSlots
    # The configured API keys (digests and scopes); empty: no key needed.
    keys: tuple[ApiKey, ...] = ()
    # Where requests are recorded; None: not recorded.
    audit: AuditLog | None = None
    # How query photos are searched for faces; None: as the served index's
    # photos were (benchmarks set it to compare query-time variants).
    query_detection: DetectionSettings | None = None


def state() -> ServiceState:
    return current_app.extensions["facesearch"]


def served() -> ServedIndex:
    """The index generation this request uses, taken at its first use and
    kept to its end: a generation switched in meanwhile does not change it
    halfway (and the store stays open while the request holds it)."""
    if "served" not in g:
        g.served = state().index.current()
    return g.served


def client() -> str:
    """The client's address (``application.client``), worked out once a request."""
    if "client" not in g:
        service = state().settings.service
        g.client = client_address(request.remote_addr, dict(request.headers), service.proxy_header,
                                  service.trusted_proxies)
    return g.client


def audited(**fields) -> None:
    """Add fields to this request's audit line."""
    g.setdefault("audit", {}).update(fields)


def actor() -> str | None:
    """Who makes this request, as corrections record it: the API key's id
    (never the key), None when the service runs without keys."""
    return g.get("key_id")
