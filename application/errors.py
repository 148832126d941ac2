"""The errors a user can act on, in one table: what kind each is and the
short code that names it. The use cases raise them with a message that
says what to do; each adapter maps the kinds once: the HTTP API to
statuses and its error body (``service.errors``), the command line to its
exit status and message (``facesearch.cli.common``). A view or a command
never catches one of these to translate it."""

from __future__ import annotations

from enum import StrEnum

from indexer.distributed import DistributedError
from indexer.drawing import DrawnBoxError, FaceAlreadyThere, NotAdded, NotDrawn
from indexer.images import ImageError
from indexer.people.annotations import (
    ClusterNotFoundError,
    InvalidNameError,
    MergeError,
    NameTakenError,
    NoClusteringError,
    NothingToUndoError,
    PersonNotFoundError,
)
from indexer.store import StoreError
from indexer.store.generations import IndexBusyError

# The table's errors raised outside the application layer are exported from
# here too, so that an adapter imports every error it raises from one place.
__all__ = [
    "ERRORS",
    "IMAGE_ERRORS",
    "LISTED_IDS",
    "ClusterNotFoundError",
    "DistributedError",
    "DrawnBoxError",
    "FaceAlreadyThere",
    "FaceNotFound",
    "FacesNotFound",
    "ImageError",
    "IndexBusyError",
    "InvalidNameError",
    "InvalidRequest",
    "Kind",
    "MergeError",
    "NameTakenError",
    "NoClusteringError",
    "NoFaceFound",
    "NotAdded",
    "NotDrawn",
    "NothingToUndoError",
    "PersonNotFoundError",
    "PhotoNotFound",
    "PhotoUnavailable",
    "StoreError",
    "TooManyHits",
    "classify",
    "user_errors",
]


class Kind(StrEnum):
    """What the user can do about an error."""

    NOT_FOUND = "not_found"  # name something that exists
    CONFLICT = "conflict"  # the state of things forbids it now
    INVALID = "invalid"  # a value outside what is allowed: change it
    BAD_INPUT = "bad_input"  # the input is broken (an empty or truncated file)
    TOO_LARGE = "too_large"  # send something smaller
    UNSUPPORTED = "unsupported"  # send another kind of thing
    UNAVAILABLE = "unavailable"  # the index cannot be used as it is: repair it


class InvalidRequest(ValueError):
    """A request outside what the settings allow (k past ``search.max_k``,
    too many probes...); the message says the bound."""


class FaceNotFound(LookupError):
    """No indexed face has that id."""


class NoFaceFound(ValueError):
    """A probe photo shows no face."""


# Face ids a message lists, at most (a correction may name 10,000).
LISTED_IDS = 20


class FacesNotFound(LookupError):
    """Face ids that are not in the served index."""

    def __init__(self, missing: list[int]) -> None:
        listed = ", ".join(map(str, missing[:LISTED_IDS])) + (
            f" and {len(missing) - LISTED_IDS} more" if len(missing) > LISTED_IDS else ""
        )
        super().__init__(f"no face with id {listed} in the index")
        self.missing = missing


class PhotoNotFound(LookupError):
    """No indexed file has that id."""


class PhotoUnavailable(LookupError):
    """The indexed file cannot be served: gone, changed since it was indexed, unreadable."""


class TooManyHits(ValueError):
    """More faces within the radius than a request may gather."""


# The error class (or a base of it) -> its kind and code.
ERRORS: dict[type[Exception], tuple[Kind, str]] = {
    FaceNotFound: (Kind.NOT_FOUND, "face_not_found"),
    FacesNotFound: (Kind.NOT_FOUND, "face_not_found"),
    PersonNotFoundError: (Kind.NOT_FOUND, "person_not_found"),
    ClusterNotFoundError: (Kind.NOT_FOUND, "cluster_not_found"),
    NoClusteringError: (Kind.NOT_FOUND, "no_clustering"),
    NothingToUndoError: (Kind.NOT_FOUND, "merge_not_found"),
    PhotoNotFound: (Kind.NOT_FOUND, "photo_not_found"),
    PhotoUnavailable: (Kind.NOT_FOUND, "photo_unavailable"),
    NameTakenError: (Kind.CONFLICT, "name_taken"),
    IndexBusyError: (Kind.CONFLICT, "index_busy"),
    FaceAlreadyThere: (Kind.CONFLICT, "face_exists"),
    NotAdded: (Kind.CONFLICT, "face_not_added"),
    NotDrawn: (Kind.CONFLICT, "face_not_drawn"),
    DrawnBoxError: (Kind.INVALID, "invalid_request"),
    InvalidNameError: (Kind.INVALID, "invalid_request"),
    MergeError: (Kind.INVALID, "invalid_request"),
    InvalidRequest: (Kind.INVALID, "invalid_request"),
    TooManyHits: (Kind.INVALID, "too_many_results"),
    NoFaceFound: (Kind.INVALID, "no_face"),
    StoreError: (Kind.UNAVAILABLE, "index_unavailable"),
    DistributedError: (Kind.UNAVAILABLE, "cluster_unavailable"),
}
# An unusable photo's kind, by its ``ImageError.code``.
IMAGE_ERRORS = {
    "empty_image": Kind.BAD_INPUT,
    "invalid_image": Kind.BAD_INPUT,
    "unsupported_image_format": Kind.UNSUPPORTED,
    "image_too_large": Kind.TOO_LARGE,
}


def classify(exc: BaseException) -> tuple[Kind, str] | None:
    """The kind and code of ``exc`` (by its class or the nearest base in
    the table), or None: not an error a user can act on."""
    if isinstance(exc, ImageError):
        return IMAGE_ERRORS.get(exc.code, Kind.BAD_INPUT), exc.code
    for cls in type(exc).__mro__:
        if cls in ERRORS:
            return ERRORS[cls]
    return None


def user_errors() -> tuple[type[Exception], ...]:
    """Every class ``classify`` knows (for an ``except`` or a handler)."""
    return (*ERRORS, ImageError)
