"""Changing the published index in place of a reindex: a few faces erased
(``indexer.erasure``) or drawn by hand (``indexer.drawing``).

The published generation is never written to: ``amend`` copies it into a
new generation (verified against its checksums first; unfinished work of a
killed reindex is discarded, since it would hold the old faces too), makes
the change there, seals and publishes it. A crash at any point leaves the
published generation as it was. The caller holds the index lock
(``IndexLock``) and the backend's connection (``connection_held``). The cost
is a copy of the index: seconds for a large one, which is why a drawn face
is worth it and a batch of edits is not done this way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

from config.settings import Settings
from indexer.store import FaceStore, after_publish, generations, open_store


def amend(data_dir: Path, settings: Settings | None, change: Callable[[FaceStore], bool], *,
          erasure: bool = False) -> bool:
    """Apply ``change`` to a copy of the published generation of
    ``data_dir`` and publish it when ``change`` says it changed something
    (True); else the copy is thrown away. ``erasure``: what was deleted is
    also purged from the files, and no older generation is kept (server
    workers switch at once instead of finishing on it). Returns whether a
    generation was published."""
    if generations.current_dir(data_dir) is None:
        return False
    wip = generations.begin(data_dir, full=False, key={"amend": uuid4().hex})
    try:
        store = open_store(wip.path, settings, repair=True)
        try:
            changed = change(store)
            if changed:
                store.seal()
                if erasure:
                    store.purge_deleted()
        finally:
            store.close()
    except BaseException:  # a full disk, say: the published generation is untouched, no copy is left
        generations.discard(wip)
        raise
    if not changed:
        generations.discard(wip)
        return False
    generations.publish(data_dir, wip, keep_previous=not erasure)
    after_publish(data_dir, settings, erasure=erasure)
    return True
