"""Browser tests: Debian's Chromium (``apt-get install chromium``), driven
by Playwright through pytest-playwright's ``page`` fixture, against a live
server (werkzeug on a free port, in a thread) over ``tests/data`` indexed
with the real model. Never ``playwright install``: it downloads a browser.
Skipped, saying why, where Chromium or Playwright is missing."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Every page's screenshot lands here (kept out of git); the README shows two.
SCREENSHOTS = Path(__file__).parent / "screenshots"


def chromium_path() -> str | None:
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def pytest_collection_modifyitems(items) -> None:
    reason = None
    try:
        import playwright  # noqa: F401
    except ImportError:
        reason = "Playwright is not installed (make install installs it with the dev dependencies)"
    if reason is None and chromium_path() is None:
        reason = "no Chromium on this machine: apt-get install -y chromium (.ci/run does)"
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    """pytest-playwright's launch arguments: Debian's Chromium, not a downloaded one."""
    return {"executable_path": chromium_path(), "args": ["--no-sandbox", "--disable-gpu"]}


@dataclass
class LiveServer:
    url: str
    data_dir: Path


def serve(app) -> Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def live_data(real_index: Path, tmp_path: Path) -> Path:
    """A copy of the real index of tests/data, for one test to change."""
    target = tmp_path / "index"
    shutil.copytree(real_index, target)
    return target


@pytest.fixture
def live_server(live_data: Path) -> Iterator[LiveServer]:
    from config.settings import load_settings
    from service import create_app

    for url in serve(create_app(load_settings(data_dir=live_data))):
        yield LiveServer(url, live_data)


@pytest.fixture
def keyed_server(live_data: Path) -> Iterator[LiveServer]:
    """The same, with an admin key ``admin-key`` and a read key ``read-key``."""
    from config.settings import load_settings
    from service import create_app

    app = create_app(load_settings(data_dir=live_data, api_keys=["admin-key-0000001"], read_keys=["read-key-00000001"]))
    for url in serve(app):
        yield LiveServer(url, live_data)


def check_accessibility(page, name: str) -> None:
    """axe-core in the page: no serious or critical violation; and a
    screenshot of the page under tests/browser/screenshots."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [(v["id"], v["impact"], v["help"]) for v in results.response["violations"]
           if v["impact"] in ("serious", "critical")]
    assert bad == [], bad
    SCREENSHOTS.mkdir(exist_ok=True)
    # Lazy thumbnails below the fold would be blank in a full-page picture.
    page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach((img) => { img.loading = 'eager'; })")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
