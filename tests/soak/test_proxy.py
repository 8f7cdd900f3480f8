"""The soak's fault-injecting proxy in front of the real counter server."""

import httpx
import pytest

from soak.proxy import PASS, REFUSE, SLOW, FaultProxy
from tests.helpers import free_port, wait_for

pytestmark = pytest.mark.e2e
EVENT = b'{"user":5,"action":"create"}'


@pytest.fixture
def counter(counter_server):
    return counter_server


@pytest.fixture
def proxy(counter):
    proxy = FaultProxy(counter.url, free_port(), slow_seconds=1.5).start()
    yield proxy
    proxy.stop()


def post(proxy: FaultProxy, key: str, timeout: float = 5) -> int:
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    return httpx.post(proxy.url, content=EVENT, headers=headers, timeout=timeout).status_code


def test_forwards_and_records_each_request(proxy, counter):
    assert post(proxy, "k1") == 200
    assert post(proxy, "k1") == 200  # the counter server's duplicate, answered 200
    assert [(f.key, f.body, f.status) for f in proxy.forwarded] == [
        ("k1", EVENT, 200),
        ("k1", EVENT, 200),
    ]
    assert counter.counts() == {"5": {"create": 1, "delete": 0}}


def test_answers_an_error_status_without_forwarding(proxy, counter):
    proxy.set_mode("status", 429)
    assert post(proxy, "k1") == 429
    assert (proxy.forwarded, proxy.injected, counter.counts()) == ([], 1, {})
    proxy.set_mode(PASS)
    assert post(proxy, "k1") == 200


def test_an_injected_status_may_carry_a_retry_after(proxy, counter):
    proxy.set_mode("status", 503, retry_after=2)
    headers = {"Idempotency-Key": "k1"}
    answer = httpx.post(proxy.url, content=EVENT, headers=headers, timeout=5)
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "2")
    proxy.set_mode("status", 500)
    answer = httpx.post(proxy.url, content=EVENT, headers=headers, timeout=5)
    assert answer.status_code == 500 and "Retry-After" not in answer.headers
    assert (proxy.forwarded, proxy.injected, counter.counts()) == ([], 2, {})


def test_a_late_answer_has_been_counted_already(proxy, counter):
    proxy.set_mode(SLOW)
    with pytest.raises(httpx.TimeoutException):
        post(proxy, "k1", timeout=0.5)
    # The proxy forwards first, then waits: the event is counted although the client gave up.
    wait_for(lambda: proxy.forwarded, timeout=10, message="the forwarded request")
    assert [(f.key, f.status) for f in proxy.forwarded] == [("k1", 200)]
    assert counter.counts() == {"5": {"create": 1, "delete": 0}}


def test_refuses_connections_until_passing_again(proxy, counter):
    proxy.set_mode(REFUSE)
    with pytest.raises(httpx.ConnectError):
        post(proxy, "k1")
    proxy.set_mode(PASS)
    assert post(proxy, "k1") == 200
    assert counter.counts() == {"5": {"create": 1, "delete": 0}}


def test_cuts_a_kept_alive_connection_when_refusing(proxy):
    with httpx.Client(timeout=5) as client:
        assert client.post(proxy.url, content=EVENT).status_code == 200
        proxy.set_mode(REFUSE)
        with pytest.raises(httpx.TransportError):
            client.post(proxy.url, content=EVENT)


def test_an_unreachable_counter_server_is_a_502_recorded_as_status_0(proxy, counter):
    counter.stop()
    assert post(proxy, "k1") == 502
    assert [(f.key, f.status) for f in proxy.forwarded] == [("k1", 0)]
