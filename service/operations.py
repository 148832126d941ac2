"""Each API operation declared once, on its view: its method and route, who
may call it (``scope``), its inputs (JSON body, multipart form and files,
query parameters: pydantic models), its answer and the errors it can give.
From these declarations come the routes (Flask), the scope each request
needs (``service.api.require_api_key``), the OpenAPI document
(``service.openapi``) and the endpoint table of ``docs/api.md``
(``service.api_reference``, ``make docs``): none of them is written again
by hand, so they cannot drift apart.

Why a small registry rather than flask-openapi3 or spectree: several
operations take either a JSON body or a multipart upload on one route
(search, recall, erasure), the scope is per operation, errors have one
shape of our own, and the views stay plain Flask functions; both libraries
model one body per route and answer validation errors their way. The
registry is a decorator and a list."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Literal, TypeVar

from flask import Blueprint
from pydantic import BaseModel

Scope = Literal["open", "read", "admin"]
View = TypeVar("View", bound=Callable)

# The answers of operations that give no JSON: a media type.
JPEG, PNG = "image/jpeg", "image/png"


@dataclass(frozen=True)
class Operation:
    """One declared operation. ``response``: a response model, a media type
    (``JPEG``, ``PNG``) or None (no body, e.g. 204). ``files``: the name of
    the multipart file field (``many_files``: one or more of it) sent with
    the ``form`` fields. ``errors``: the error statuses the operation itself
    gives; those every operation of its kind can give (401, 403, 404, 413,
    429, 507) are added by ``Operation.error_statuses``."""

    endpoint: str  # Flask's: "api.search"
    method: str
    rule: str  # Flask's, with the blueprint's prefix: "/api/v1/faces/<int:face_id>"
    operation_id: str
    summary: str
    scope: Scope
    description: str = ""
    response: type[BaseModel] | str | None = None
    status: int = 200
    json: type[BaseModel] | None = None
    form: type[BaseModel] | None = None
    files: str | None = None
    many_files: bool = False
    body_required: bool = True
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    deprecated: bool = False
    revalidated: bool = False  # answers 304 to If-None-Match
    path_ids: tuple[str, ...] = field(default=())

    @property
    def path(self) -> str:
        """The OpenAPI path: ``/api/v1/faces/{face_id}``."""
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", self.rule)

    @property
    def has_body(self) -> bool:
        return self.json is not None or self.form is not None or self.files is not None

    def error_statuses(self) -> tuple[int, ...]:
        """Every error status the operation can answer."""
        statuses = set(self.errors)
        if self.scope != "open":
            statuses |= {401, 429, 507}  # no or a wrong key; too many wrong keys; the audit log unwritable
        if self.scope == "admin":
            statuses.add(403)  # a read key
        if self.path_ids:
            statuses.add(404)  # an id that names nothing
        if self.has_body:
            statuses |= {413, 422}  # too large; not what the models want
        if self.query is not None:
            statuses.add(422)
        return tuple(sorted(statuses))


# Every operation, in the order the views declare them, and by endpoint
# (looked up at every request).
OPERATIONS: list[Operation] = []
# The modules whose views declare the API's operations, in the order the
# document lists them.
OPERATION_MODULES = ("service.api", "service.api_people", "service.api_photos", "service.api_review")


def declare_all() -> None:
    """Import every module of ``OPERATION_MODULES``: each operation is then
    declared (and its route on the API's blueprint)."""
    for name in OPERATION_MODULES:
        import_module(name)


_BY_ENDPOINT: dict[str, Operation] = {}


def operation_of(endpoint: str | None) -> Operation | None:
    return _BY_ENDPOINT.get(endpoint) if endpoint is not None else None


class Api:
    """Declares the operations of ``blueprint``: ``@api.get(rule, ...)``
    registers the view's route and its ``Operation``."""

    def __init__(self, blueprint: Blueprint) -> None:
        self.blueprint = blueprint

    def get(self, rule: str, **declared) -> Callable[[View], View]:
        return self.operation("GET", rule, **declared)

    def post(self, rule: str, **declared) -> Callable[[View], View]:
        return self.operation("POST", rule, **declared)

    def put(self, rule: str, **declared) -> Callable[[View], View]:
        return self.operation("PUT", rule, **declared)

    def patch(self, rule: str, **declared) -> Callable[[View], View]:
        return self.operation("PATCH", rule, **declared)

    def delete(self, rule: str, **declared) -> Callable[[View], View]:
        return self.operation("DELETE", rule, **declared)

    def operation(self, method: str, rule: str, *, endpoint: str | None = None, **declared) -> Callable[[View], View]:
        def register(view: View) -> View:
            name = endpoint or view.__name__
            op = Operation(
                endpoint=f"{self.blueprint.name}.{name}", method=method, rule=(self.blueprint.url_prefix or "") + rule,
                path_ids=tuple(re.findall(r"<int:(\w+)>", rule)), **declared,
            )
            if operation_of(op.endpoint) is not None or any(o.operation_id == op.operation_id for o in OPERATIONS):
                raise ValueError(f"operation {op.operation_id} ({op.endpoint}) is declared twice")
            OPERATIONS.append(op)
            _BY_ENDPOINT[op.endpoint] = op
            self.blueprint.add_url_rule(rule, endpoint=name, view_func=view, methods=[method])
            return view

        return register
