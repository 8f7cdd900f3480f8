"""counters_server.js under the real Deno: what it accepts, counts and refuses."""

import json
import re
import urllib.error
import urllib.request

import pytest

from tests.helpers import CounterServer, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = CounterServer(free_port(), tmp_path_factory.mktemp("counter") / "log").start()
    yield server
    server.stop()


def post(server, body: bytes, key: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(server.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def event(user, action) -> bytes:
    return json.dumps({"user": user, "action": action}).encode()


def test_counts_events_per_user_and_action(server):
    assert post(server, event(101, "create"), "k-101-1")[0] == 200
    assert post(server, event(101, "create"), "k-101-2")[0] == 200
    assert post(server, event(101, "delete"), "k-101-3")[0] == 200
    assert post(server, event(102, "delete"), "k-102-1")[0] == 200
    counts = server.counts()
    assert counts["101"] == {"create": 2, "delete": 1}
    assert counts["102"] == {"create": 0, "delete": 1}
    assert re.search(
        r"^\d{4}-\d\d-\d\dT[\d:.]+Z user 101 create \(key k-101-1\)$", server.log(), re.M
    )


def test_a_repeated_key_is_answered_but_counted_once(server):
    assert post(server, event(201, "create"), "same-key") == (200, {"status": "counted"})
    assert post(server, event(201, "create"), "same-key") == (200, {"status": "duplicate"})
    assert server.counts()["201"] == {"create": 1, "delete": 0}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"user": 1}',
        b'{"user": "1", "action": "create"}',
        b'{"user": 1.5, "action": "create"}',
        b'{"user": 1, "action": "update"}',
        b'{"user": 1, "action": "create", "extra": true}',
    ],
)
def test_malformed_events_are_refused_and_not_counted(server, body):
    status, answer = post(server, body, "bad-" + body.hex())
    assert status == 400 and answer["error"]
    assert "1" not in server.counts()
