"""counters_server.js under the real Deno: what it accepts, counts, stores, forgets and refuses."""

import base64
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from tests.helpers import (
    DENO,
    ROOT,
    CounterServer,
    counter_deliveries,
    free_port,
    start_dispatcher,
    stop,
    wait_for,
)

pytestmark = pytest.mark.e2e

DAY_MS = 86_400_000
SECRET = "whsec_" + base64.b64encode(b"counter-server-test-secret-0001").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"counter-server-test-secret-0000").decode()
UNKNOWN_SECRET = "whsec_" + base64.b64encode(b"a secret the server never knew").decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = CounterServer(free_port(), tmp_path_factory.mktemp("counter") / "log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory):
    """A server that knows two secrets, the old one still accepted during a rotation."""
    log = tmp_path_factory.mktemp("signed") / "log"
    env = {"COUNTER_SIGNING_SECRETS": f"{SECRET},{OLD_SECRET}"}
    server = CounterServer(free_port(), log, env=env).start()
    yield server
    server.stop()


def post(server, body: bytes, key: str | None = None, headers=()) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **dict(headers)}
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


def counted_line(user, action, key) -> re.Pattern:
    return re.compile(rf"^\d{{4}}-\d\d-\d\dT[\d:.]+Z user {user} {action} \(key {key}\)$", re.M)


def test_counts_events_per_user_and_action(server):
    assert post(server, event(101, "create"), "k-101-1")[0] == 200
    assert post(server, event(101, "create"), "k-101-2")[0] == 200
    assert post(server, event(101, "delete"), "k-101-3")[0] == 200
    assert post(server, event(102, "delete"), "k-102-1")[0] == 200
    counts = server.counts()
    assert counts["101"] == {"create": 2, "delete": 1}
    assert counts["102"] == {"create": 0, "delete": 1}
    # The log is buffered: flushed at least every 100 ms.
    line = counted_line(101, "create", "k-101-1")
    wait_for(lambda: line.search(server.log()), timeout=5, message="the log line")


def test_a_repeated_key_is_answered_but_counted_once(server):
    assert post(server, event(201, "create"), "same-key") == (200, {"status": "counted"})
    assert post(server, event(201, "create"), "same-key") == (200, {"status": "duplicate"})
    assert server.counts()["201"] == {"create": 1, "delete": 0}
    duplicate = "duplicate same-key: user 201 create (not counted)"
    wait_for(lambda: duplicate in server.log(), timeout=5, message="the duplicate's line")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"user": 1}',
        b'{"user": "1", "action": "create"}',
        b'{"user": 1.5, "action": "create"}',
        b'{"user": 1e300, "action": "create"}',
        b'{"user": 1, "action": "update"}',
        b'{"user": 1, "action": "create", "extra": true}',
    ],
)
def test_malformed_events_are_refused_and_not_counted(server, body):
    status, answer = post(server, body, "bad-" + body.hex())
    assert status == 400 and answer["error"]
    assert "1" not in server.counts()


def test_a_body_over_16_kib_is_refused_with_413_and_not_counted(server):
    padded = json.dumps({"user": 301, "action": "create", "pad": "x" * 16 * 1024}).encode()
    status, answer = post(server, padded, "too-big")
    assert status == 413 and "16384" in answer["error"]
    assert "301" not in server.counts()


def test_a_chunked_body_over_16_kib_is_refused_with_413(server):
    """No Content-Length: the server reads until the limit, then stops."""
    from http.client import HTTPConnection

    connection = HTTPConnection("127.0.0.1", server.port, timeout=5)
    chunks = iter([event(302, "create")[:-1], b" " * 17 * 1024, b"}"])
    headers = {"Content-Type": "application/json"}
    connection.request("POST", "/", body=chunks, headers=headers, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413
    connection.close()
    assert "302" not in server.counts()


def test_a_chunked_body_within_the_limit_is_counted(server):
    from http.client import HTTPConnection

    connection = HTTPConnection("127.0.0.1", server.port, timeout=5)
    body = event(303, "create")
    headers = {"Content-Type": "application/json", "Idempotency-Key": "chunked"}
    connection.request("POST", "/", body=iter([body[:5], body[5:]]), headers=headers,
                       encode_chunked=True)  # fmt: skip
    assert connection.getresponse().status == 200
    connection.close()
    assert server.counts()["303"] == {"create": 1, "delete": 0}


# --- the data file -------------------------------------------------------------------------


def stored(data) -> tuple[dict, dict]:
    """(counts, seen keys) read from the data file, as the soak's ledger check would."""
    with sqlite3.connect(f"file:{data}?mode=ro", uri=True) as db:
        counts = {(u, a): n for u, a, n in db.execute("SELECT user, action, n FROM counts")}
        keys = {k: (u, a, t) for k, u, a, t in db.execute("SELECT * FROM seen_keys")}
    return counts, keys


def test_counts_and_keys_survive_sigkill_and_restart(tmp_path):
    data = tmp_path / "counters.sqlite3"
    first = CounterServer(free_port(), tmp_path / "log", data=data).start()
    before = int(time.time() * 1000)  # Date.now() is whole milliseconds
    try:
        assert post(first, event(301, "create"), "r-1") == (200, {"status": "counted"})
        assert post(first, event(301, "create"), "r-2") == (200, {"status": "counted"})
        assert post(first, event(302, "delete"), "r-3") == (200, {"status": "counted"})
        assert post(first, event(303, "create")) == (200, {"status": "counted"})  # no key
    finally:
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # a 200 was only sent once committed

    counts, keys = stored(data)
    assert counts == {(301, "create"): 2, (302, "delete"): 1, (303, "create"): 1}
    assert {k: (u, a) for k, (u, a, _) in keys.items()} == {
        "r-1": (301, "create"),
        "r-2": (301, "create"),
        "r-3": (302, "delete"),
    }
    assert all(before <= seen_at <= time.time() * 1000 for _, _, seen_at in keys.values())

    second = CounterServer(free_port(), tmp_path / "log", data=data).start()
    try:
        expected = {
            "301": {"create": 2, "delete": 0},
            "302": {"create": 0, "delete": 1},
            "303": {"create": 1, "delete": 0},
        }
        assert second.counts() == expected
        assert post(second, event(301, "create"), "r-1") == (200, {"status": "duplicate"})
        assert post(second, event(302, "delete"), "r-3") == (200, {"status": "duplicate"})
        assert second.counts() == expected
        assert post(second, event(302, "delete"), "r-4") == (200, {"status": "counted"})
        assert second.counts()["302"] == {"create": 0, "delete": 2}
    finally:
        second.stop()


def test_keys_older_than_the_window_are_forgotten_and_deleted(tmp_path):
    data = tmp_path / "counters.sqlite3"
    window_days = 0.5  # fractions allowed: 12 hours
    first = CounterServer(free_port(), tmp_path / "log", data=data, dedupe_days=window_days)
    first.start()
    for key in ("old", "stale", "recent"):
        assert post(first, event(401, "create"), key)[0] == 200
    first.stop()
    # Age the rows: "old" and "stale" 13 hours, beyond the window; "recent" 11 hours.
    now = time.time() * 1000
    with sqlite3.connect(data) as db:
        db.execute("UPDATE seen_keys SET seen_at = ? WHERE key != 'recent'", (now - 13 * 3.6e6,))
        db.execute("UPDATE seen_keys SET seen_at = ? WHERE key = 'recent'", (now - 11 * 3.6e6,))
    db.close()

    second = CounterServer(free_port(), tmp_path / "log", data=data, dedupe_days=window_days)
    second.start()
    try:
        assert set(stored(data)[1]) == {"recent"}  # pruned at start, before listening
        assert post(second, event(401, "create"), "old") == (200, {"status": "counted"})
        assert post(second, event(401, "create"), "recent") == (200, {"status": "duplicate"})
        assert second.counts()["401"] == {"create": 4, "delete": 0}  # counts are kept
    finally:
        second.stop()


def test_events_arriving_together_are_each_counted_once(tmp_path):
    """A group commit holds many events, some repeating a key within the group."""
    from concurrent.futures import ThreadPoolExecutor

    data = tmp_path / "counters.sqlite3"
    server = CounterServer(free_port(), tmp_path / "log", data=data).start()
    try:
        keys = [f"g-{i % 50}" for i in range(200)]
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda k: post(server, event(501, "create"), k), keys))
        assert all(status == 200 for status, _ in answers)
        assert sum(a == {"status": "counted"} for _, a in answers) == 50
        assert server.counts()["501"] == {"create": 50, "delete": 0}
    finally:
        server.stop()
    assert stored(data)[0] == {(501, "create"): 50}


@pytest.mark.django_db(transaction=True)
def test_a_counter_server_killed_mid_backlog_counts_every_event_once(tmp_path, user):
    """The real dispatcher drains into a server SIGKILLed and restarted on its data file."""
    from broadcast.models import Status
    from defect.models import Defect

    data, port = tmp_path / "counters.sqlite3", free_port()
    server = CounterServer(port, tmp_path / "counter.log", data=data).start()
    Defect.objects.bulk_create([Defect(user=user, comment=f"c{i}") for i in range(2000)])
    dispatcher = start_dispatcher(server.url, tmp_path / "dispatcher.log")
    try:
        wait_for(
            lambda: server.counts().get(str(user.pk), {}).get("create", 0) >= 300,
            timeout=30,
            message="a partial drain",
        )
        server.stop(signal.SIGKILL)
        undelivered = counter_deliveries().exclude(status=Status.DELIVERED)
        assert undelivered.exists(), "drained before the kill"
        server.start()  # same port and file: the dispatcher retries into it
        wait_for(
            lambda: not counter_deliveries().exclude(status=Status.DELIVERED).exists(),
            timeout=60,
            interval=0.2,
            message="the backlog delivered after the restart",
        )
        assert server.counts() == {str(user.pk): {"create": 2000, "delete": 0}}
        assert len(stored(data)[1]) == 2000
    finally:
        stop(dispatcher, signal.SIGKILL)
        server.stop()


def test_data_without_its_permissions_is_a_clear_error(tmp_path):
    command = [str(DENO), "run", "--allow-net", "counters_server.js", "0", "--data", "x.db"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--data x.db needs --allow-read=x.db --allow-write=x.db" in result.stderr


@pytest.mark.parametrize("days", ["0", "-1", "seven"])
def test_a_bad_dedupe_window_is_a_clear_error(days):
    command = [str(DENO), "run", "--allow-net", "counters_server.js", f"--dedupe-days={days}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--dedupe-days must be a number > 0" in result.stderr


# --- memory bound --------------------------------------------------------------------------


def test_memory_stays_bounded_over_a_million_distinct_keys():
    """The in-memory key window on a simulated clock: 1,000,000 keys over ten windows."""
    window_ms, total, per_ms = 1000, 1_000_000, 100
    result = subprocess.run(
        [str(DENO), "run", "tests/key_window_check.js", str(window_ms), str(total), str(per_ms)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    held = json.loads(result.stdout)
    in_one_window = window_ms * per_ms
    # At most one window and one bucket (an eighth) of keys, however many arrived.
    assert in_one_window <= held["largest"] <= in_one_window * 9 // 8
    assert held["last"] <= in_one_window * 9 // 8
    assert held["seenJustInside"] is True
    assert held["seenAtWindow"] is False


# --- logging -------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_log_is_flushed_at_exit(tmp_path, sig):
    server = CounterServer(free_port(), tmp_path / "log").start()
    for i in range(100):
        assert post(server, event(601, "delete"), f"x-{i}")[0] == 200
    assert server.stop(sig) == 0
    log = server.log()
    assert all(counted_line(601, "delete", f"x-{i}").search(log) for i in range(100))


# --- signatures ----------------------------------------------------------------------------


def signed(body: bytes, msg_id: str, *secrets: str, at: datetime | None = None) -> dict:
    """Standard Webhooks headers from the reference implementation, one v1 per secret."""
    at = at or datetime.now(UTC)
    signatures = [Webhook(s).sign(msg_id, at, body.decode()) for s in secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def test_a_signed_event_is_counted(signed_server):
    body = event(701, "create")
    headers = signed(body, "s-701", SECRET)
    assert post(signed_server, body, "s-701", headers) == (200, {"status": "counted"})
    assert post(signed_server, body, "s-701", headers) == (200, {"status": "duplicate"})
    without_key = signed(event(701, "delete"), "s-701-b", SECRET)
    assert post(signed_server, event(701, "delete"), None, without_key)[0] == 200
    assert signed_server.counts()["701"] == {"create": 1, "delete": 1}


def test_rotation_accepts_a_request_signed_with_a_new_and_an_old_secret(signed_server):
    body = event(702, "create")
    both = signed(body, "s-702", UNKNOWN_SECRET, OLD_SECRET)  # the server knows only the old
    assert post(signed_server, body, "s-702", both) == (200, {"status": "counted"})
    assert signed_server.counts()["702"] == {"create": 1, "delete": 0}


def stale(body, msg_id):
    return signed(body, msg_id, SECRET, at=datetime.now(UTC) - timedelta(minutes=6))


def ahead(body, msg_id):
    return signed(body, msg_id, SECRET, at=datetime.now(UTC) + timedelta(minutes=6))


def forged(body, msg_id):
    return signed(body, msg_id, UNKNOWN_SECRET)


def tampered(body, msg_id):
    return signed(event(703, "delete"), msg_id, SECRET)


def renamed(body, msg_id):
    return {**signed(body, msg_id, SECRET), "webhook-id": msg_id + "-other"}


def unsigned(body, msg_id):
    return {}


def not_v1(body, msg_id):
    headers = signed(body, msg_id, SECRET)
    return {**headers, "webhook-signature": headers["webhook-signature"].replace("v1,", "v2,")}


@pytest.mark.parametrize(
    "headers", [stale, ahead, forged, tampered, renamed, unsigned, not_v1], ids=lambda f: f.__name__
)
def test_a_bad_signature_is_refused_and_not_counted(signed_server, headers):
    body = event(703, "create")
    status, answer = post(signed_server, body, None, headers(body, f"bad-{headers.__name__}"))
    assert status == 401 and answer["error"]
    assert "703" not in signed_server.counts()


def test_the_idempotency_key_must_be_the_signed_id(signed_server):
    body = event(704, "create")
    status, answer = post(signed_server, body, "another-key", signed(body, "s-704", SECRET))
    assert status == 400 and "webhook-id" in answer["error"]
    assert "704" not in signed_server.counts()


def test_without_env_permission_secrets_are_not_read(tmp_path):
    env = {"COUNTER_SIGNING_SECRETS": SECRET}
    server = CounterServer(free_port(), tmp_path / "log", env=env, allow_env=False).start()
    try:
        assert post(server, event(705, "create"), "plain") == (200, {"status": "counted"})
    finally:
        server.stop()


@pytest.mark.parametrize("value", ["not-a-secret", "whsec_***", "whsec_", ",whsec_c2VjcmV0"])
def test_a_bad_secret_is_a_clear_error(tmp_path, value):
    server = CounterServer(free_port(), tmp_path / "log", env={"COUNTER_SIGNING_SECRETS": value})
    result = subprocess.run(
        server.command(),
        cwd=ROOT,
        env={**os.environ, **server.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "COUNTER_SIGNING_SECRETS: secret 1 is not whsec_<base64>" in result.stderr
