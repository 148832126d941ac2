"""``facesearch index`` in a child process with the fake model (slowed down
by ``FAKE_DELAY_S`` a photo), for the kill -9 tests.

``KILL_AT=module:attribute`` (e.g. ``indexer.store.generations:publish``,
``indexer.store.embedded:EmbeddedStore.seal``) makes the process send itself
SIGKILL when that function is called; ``KILL_AT_CALL=N`` at its N-th call
(default 1). Without it the test kills the process from outside."""

import os
import signal
import sys
from importlib import import_module

from application.runtime import Runtime
from tests.helpers import FakeModel

fake = FakeModel(delay_s=float(os.environ.get("FAKE_DELAY_S", "0")))

if os.environ.get("KILL_AT"):
    module_name, _, path = os.environ["KILL_AT"].partition(":")
    owner = import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)
    calls = {"n": 0}
    kill_at_call = int(os.environ.get("KILL_AT_CALL", "1"))

    def killer(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= kill_at_call:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, name, killer if not isinstance(original, classmethod) else classmethod(killer))

from facesearch.cli import main  # noqa: E402  (after the kill point is in place)

main(sys.argv[1:], obj=Runtime(model=fake))
