"""Guessing keys is not free: wrong keys from one client address are
throttled (429 with Retry-After after at most ``service.max_key_failures``
in a minute, doubling), on the API and on ``/login``, counted together by
every worker of a real server; the address behind a proxy comes from its
header only when the proxy is trusted; short keys are refused at start-up
and ``facesearch new-key`` prints a strong one."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from application.access import MIN_KEY_CHARS, authenticate, parse_keys
from application.access_store import AccessStore
from application.audit import AuditLog
from application.client import client_address
from facesearch.cli import main
from tests.helpers import client_of, serving

ADMIN = "guess-admin-key-00001"


def test_the_limit_th_failure_in_a_minute_blocks_and_blocks_double(tmp_path: Path):
    store = AccessStore(tmp_path / "access.sqlite3")
    now = 1000.0
    assert [store.failed("10.0.0.1", now + i, limit=20) for i in range(19)] == [None] * 19
    assert store.failed("10.0.0.1", now + 19, limit=20) == 60  # the 20th within a minute
    assert store.blocked_for("10.0.0.1", now + 20) == pytest.approx(59)
    assert store.blocked_for("10.0.0.2", now + 20) is None  # only that address
    assert store.blocked_for("10.0.0.1", now + 80) is None
    # Failures spread wider than a minute never block...
    assert all(store.failed("10.0.0.3", now + 4 * i, limit=20) is None for i in range(100))
    # ...and a second block soon after the first lasts twice as long.
    blocks = [store.failed("10.0.0.1", now + 100 + i * 0.1, limit=20) for i in range(20)]
    assert blocks[-1] == 120 and blocks[:-1] == [None] * 19


def test_api_and_login_share_the_count_and_answer_429_with_retry_after(people_index: Path):
    client = client_of(people_index, api_keys=[ADMIN])
    statuses = [client.get("/api/v1/faces/1", headers={"X-API-Key": f"wrong-key-{i:08d}"}).status_code
                for i in range(10)]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    for i in range(9):
        statuses.append(client.post("/login", data={"api_key": f"wrong-key-{i:08d}", "csrf_token": token}).status_code)
    assert statuses == [401] * 19
    blocked = client.post("/login", data={"api_key": "the-twentieth-guess", "csrf_token": token})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) == 60
    # Blocked: even the right key is not looked at, on the API and the page.
    right = client.get("/api/v1/faces/1", headers={"X-API-Key": ADMIN})
    assert right.status_code == 429 and right.get_json()["error"]["code"] == "too_many_failures"
    assert 0 < int(right.headers["Retry-After"]) <= 60
    assert client.post("/login", data={"api_key": ADMIN, "csrf_token": token}).status_code == 429
    # Another address is not affected; requests without a key are not guesses.
    other = {"REMOTE_ADDR": "10.9.9.9"}
    assert client.get("/api/v1/faces/1", headers={"X-API-Key": ADMIN}, environ_base=other).status_code == 200
    assert client.get("/api/v1/faces/1", environ_base=other).status_code == 401
    refused = [line for line in AuditLog.in_data_dir(people_index).read() if line["status"] in (401, 429)]
    assert all("params" not in line and "query" not in line for line in refused)


def test_the_proxy_header_is_believed_from_trusted_proxies_only():
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.0.0.2"}
    trusted = ["127.0.0.1", "10.0.0.0/8"]
    assert client_address("127.0.0.1", headers, "X-Forwarded-For", trusted) == "203.0.113.9"
    assert client_address("198.51.100.7", headers, "X-Forwarded-For", trusted) == "198.51.100.7"  # not a proxy
    assert client_address("127.0.0.1", headers, "", trusted) == "127.0.0.1"  # no header configured
    assert client_address("127.0.0.1", {"X-Real-IP": "203.0.113.5"}, "X-Real-IP", trusted) == "203.0.113.5"
    assert client_address("127.0.0.1", {"X-Real-IP": "not an address"}, "X-Real-IP", trusted) == "127.0.0.1"


def test_behind_a_proxy_each_client_is_counted_apart(people_index: Path):
    client = client_of(people_index, api_keys=[ADMIN], service={"proxy_header": "X-Forwarded-For",
                                                               "max_key_failures": 3})
    for _ in range(3):
        client.get("/api/v1/faces/1", headers={"X-API-Key": "wrong-key-000000001", "X-Forwarded-For": "203.0.113.1"})
    blocked = client.get("/api/v1/faces/1", headers={"X-API-Key": ADMIN, "X-Forwarded-For": "203.0.113.1"})
    assert blocked.status_code == 429
    assert client.get("/api/v1/faces/1",
                      headers={"X-API-Key": ADMIN, "X-Forwarded-For": "203.0.113.2"}).status_code == 200
    assert AuditLog.in_data_dir(people_index).read()[-1]["address"] == "203.0.113.2"


def guess(url: str, key: str) -> tuple[int, str | None]:
    request = urllib.request.Request(url, headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Retry-After")


@pytest.mark.slow
def test_real_server_workers_count_guesses_together(people_index: Path):
    """Two workers, keep-alive off: the guesses land on both, and the 21st is
    refused whichever worker takes it."""
    with serving(people_index, workers=2, env={"FACESEARCH_API_KEYS": ADMIN}) as (base, output):
        results = [guess(f"{base}/api/v1/faces/1", f"wrong-key-{i:08d}") for i in range(25)]
        assert [status for status, _ in results[:19]] == [401] * 19
        assert {status for status, _ in results[19:]} == {429}
        assert all(int(retry) > 0 for _, retry in results[19:])
        assert guess(f"{base}/api/v1/faces/1", ADMIN)[0] == 429
        assert guess(f"{base}/api/v1/health", "")[0] == 200
    pids = set(re.findall(r"worker (\d+) ready", output[0]))
    assert len(pids) == 2


@pytest.mark.slow
def test_short_keys_are_refused_at_start_up(people_index: Path, runner):
    with pytest.raises(ValueError, match="at least 16"):
        parse_keys(["k1"], [])
    executable = Path(sys.executable).with_name("facesearch")
    result = subprocess.run([str(executable), "serve", "--data-dir", str(people_index)], capture_output=True,
                            text=True, timeout=60, env={"FACESEARCH_API_KEYS": "k1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "api_keys entry 1 of 1 has 2 characters" in result.stderr and "facesearch new-key" in result.stderr
    assert "k1" not in result.stderr.replace("api_keys", "")  # the key itself is not printed
    hashed = runner.invoke(main, ["hash-key", "short"])
    assert hashed.exit_code == 2 and "at least 16" in hashed.output


def test_new_key_prints_a_strong_key(runner):
    result = runner.invoke(main, ["new-key"])
    key = result.stdout.strip()
    assert result.exit_code == 0 and len(key) >= 40 and len(key) >= MIN_KEY_CHARS
    assert re.fullmatch(r"[A-Za-z0-9_-]+", key)
    assert "sha256:" in result.stderr
    assert authenticate(key, parse_keys([key], [])) is not None
    assert runner.invoke(main, ["new-key"]).stdout.strip() != key
