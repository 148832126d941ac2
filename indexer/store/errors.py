"""The error every store module raises when a store cannot be used as it
is. Apart from ``base`` (which re-exports it) so that the modules ``base``
imports, down to ``sqlite_db``, can raise it too."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The store cannot be used as it is; the message says how to repair it."""
