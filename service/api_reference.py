"""The endpoint table of ``docs/api.md``, generated from the declared
operations (``service.operations``): ``python -m service.api_reference``
(``make docs``) writes it between the ``<!-- operations -->`` markers;
``tests/api/test_openapi.py`` fails when it is stale."""

from __future__ import annotations

import sys
from pathlib import Path

from service.operations import OPERATIONS, Operation, declare_all

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
TABLE_START, TABLE_END = "<!-- operations -->", "<!-- /operations -->"
SCOPES = {"open": "anyone", "read": "read key", "admin": "admin key"}


def operations_table() -> str:
    declare_all()

    rows = ["| endpoint | who | what |", "| --- | --- | --- |"]
    rows += [_row(op) for op in OPERATIONS]
    return "\n".join(rows) + "\n"


def _row(op: Operation) -> str:
    what = op.summary + (f". {op.description}" if op.description else "")
    if op.deprecated:
        what = f"(deprecated) {what}"
    return f"| `{op.method} {op.path}` | {SCOPES[op.scope]} | {what.replace('|', chr(92) + '|')} |"


def api_doc(current: str) -> str:
    """``docs/api.md`` (``current``) with its endpoint table regenerated."""
    start, end = current.index(TABLE_START) + len(TABLE_START), current.index(TABLE_END)
    return current[:start] + "\n" + operations_table() + current[end:]


def main() -> None:
    API_DOC.write_text(api_doc(API_DOC.read_text()))
    print(f"wrote the endpoint table of {API_DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
