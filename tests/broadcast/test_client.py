"""The HTTP client (broadcast/client.py) against a real HTTP server with scripted answers."""

import json
import os
import time

from broadcast.client import CounterClient
from tests.broadcast.conftest import Answer, ScriptedServer
from tests.helpers import free_port

BODY = json.dumps({"user": 7, "action": "create"}).encode()


class Pipe:
    """A wake-up descriptor that is never readable: the client's wait runs to its timeout."""

    def __init__(self) -> None:
        self.reader, self.writer = os.pipe()

    def close(self) -> None:
        os.close(self.reader)
        os.close(self.writer)


def collect(client: CounterClient, wakeup_fd: int, count: int, *, send_more=None) -> list:
    """Wait for `count` answers (10 s at most), calling `send_more()` as handles free up."""
    answers, deadline = [], time.monotonic() + 10
    while len(answers) < count:
        assert time.monotonic() < deadline, f"{len(answers)} answers of {count}"
        finished, _ = client.wait(0.5, wakeup_fd)
        answers.extend(finished)
        if send_more:
            send_more()
    return answers


def answered(finished: list) -> list:
    """(token, status) of each finished request."""
    return [(token, answer.status) for token, answer in finished]


def send_one(url: str, key: str = "k", token=None) -> tuple:
    """POST one event; its (token, Answer)."""
    pipe = Pipe()
    try:
        with CounterClient(timeout=5, max_connections=1) as client:
            client.send(url, key, BODY, token=token)
            (answer,) = collect(client, pipe.reader, 1)
            return answer
    finally:
        pipe.close()


def test_posts_exactly_the_body_with_its_two_headers(scripted_server):
    token, answer = send_one(scripted_server.url, "a1b2", token="first")
    assert (token, answer.status, answer.error) == ("first", 200, "")
    (received,) = scripted_server.received
    assert received.body == BODY
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["Idempotency-Key"] == "a1b2"


def test_never_more_requests_in_flight_than_connections_and_each_is_kept_alive(scripted_server):
    scripted_server.script = [Answer(200, delay=0.2) for _ in range(12)]
    pipe = Pipe()
    sent = 0
    with CounterClient(timeout=5, max_connections=4) as client:

        def send_more() -> None:
            nonlocal sent
            while client.free and sent < 12:
                client.send(scripted_server.url, str(sent), BODY, token=sent)
                sent += 1

        send_more()
        assert (sent, client.free, client.in_flight) == (4, 0, 4)
        answers = collect(client, pipe.reader, 12, send_more=send_more)
    pipe.close()
    assert sorted(token for token, _ in answers) == list(range(12))
    assert all(outcome.status == 200 for _, outcome in answers)
    assert scripted_server.most_in_flight <= 4
    # Twelve requests over at most four connections: they were reused.
    assert len({r.peer for r in scripted_server.received}) <= 4


def test_a_redirect_is_an_answer_not_followed(scripted_server):
    scripted_server.script = [Answer(302, {"Location": "/elsewhere"})]
    _, outcome = send_one(scripted_server.url)
    assert outcome.status == 302 and "HTTP 302" in outcome.error
    assert len(scripted_server.received) == 1


def test_retry_after_and_the_answer_explain_a_retry(scripted_server):
    scripted_server.script = [Answer(503, {"Retry-After": "7"})]
    _, outcome = send_one(scripted_server.url)
    assert (outcome.status, outcome.retry_after) == (503, 7.0)
    assert outcome.error == 'HTTP 503: {"status": 503}'


def test_an_answer_keeps_the_start_of_its_body_and_how_long_it_took(scripted_server):
    body = "é".encode() + b"x" * 5000  # a character of two bytes first: cut by bytes, not text
    scripted_server.script = [Answer(200, body=body, delay=0.2)]
    _, outcome = send_one(scripted_server.url)
    assert outcome.response == "é" + "x" * 1022
    assert 0.2 <= outcome.duration < 5


def test_an_excerpt_is_text_a_database_takes(scripted_server):
    scripted_server.script = [Answer(500, body=b"nul\0 and a cut \xe2\x82")]
    _, outcome = send_one(scripted_server.url)
    assert outcome.response == "nul\ufffd and a cut \ufffd"
    assert outcome.error == "HTTP 500: nul\ufffd and a cut \ufffd"


def test_a_refused_connection_is_no_answer():
    _, outcome = send_one(f"http://127.0.0.1:{free_port()}/")
    assert outcome.status == 0 and outcome.error.startswith("ConnectError: ")
    assert outcome.response == ""


def test_an_answer_left_for_later_ends_no_wait_and_is_collected_by_the_next(scripted_server):
    # Answered 0.1 s after it came: never by the wait that writes the request.
    scripted_server.script = [Answer(200, delay=0.1)]
    pipe = Pipe()
    with CounterClient(timeout=5, max_connections=1) as client:
        client.send(scripted_server.url, "k", BODY, token="t")
        deadline = time.monotonic() + 10
        while True:
            assert time.monotonic() < deadline, "no answer"
            started = time.monotonic()
            finished, woken = client.wait(0.5, pipe.reader, answers=False)
            if finished:
                break
    pipe.close()
    assert (answered(finished), woken) == ([("t", 200)], False)
    # The answer came 0.1 s after the request was written, yet the wait that read it
    # ran to its timeout.
    assert time.monotonic() - started >= 0.5
    assert len(scripted_server.received) == 1


def test_on_a_kept_alive_connection_one_wait_writes_the_request_and_reads_its_answer(
    scripted_server,
):
    # The request is written before the wait, not at a wake-up of its own when
    # select() finds the socket writable (a trickle's round would pay two).
    pipe = Pipe()
    with CounterClient(timeout=5, max_connections=1) as client:
        client.send(scripted_server.url, "k1", BODY, token="first")
        collect(client, pipe.reader, 1)  # connected, and kept alive
        client.send(scripted_server.url, "k2", BODY, token="second")
        finished, woken = client.wait(5, pipe.reader)
    pipe.close()
    assert (answered(finished), woken) == ([("second", 200)], False)


def test_an_answer_read_before_the_wait_is_returned_at_once(scripted_server):
    # The first answer waits unread in its socket; the wait that writes the second
    # request reads it, and returns it without waiting for the second's answer.
    scripted_server.script = [Answer(200, delay=0.1), Answer(200, delay=2)]
    pipe = Pipe()
    with CounterClient(timeout=5, max_connections=2) as client:
        client.send(scripted_server.url, "k1", BODY, token="first")
        assert client.wait(0, pipe.reader, answers=False) == ([], False)  # written
        time.sleep(0.5)  # answered 0.1 s after, and not read yet
        client.send(scripted_server.url, "k2", BODY, token="second")
        finished, _ = client.wait(5, pipe.reader)
        assert answered(finished) == [("first", 200)]
        assert client.in_flight == 1
    pipe.close()


def test_the_wakeup_descriptor_ends_the_wait(scripted_server):
    pipe = Pipe()
    os.write(pipe.writer, b"\0")
    with CounterClient(timeout=5, max_connections=1) as client:
        finished, woken = client.wait(30, pipe.reader)
    pipe.close()
    assert (finished, woken) == ([], True)


def test_each_request_goes_to_its_own_url_over_one_pool(scripted_server):
    other = ScriptedServer()
    other.start()
    pipe = Pipe()
    try:
        with CounterClient(timeout=5, max_connections=2) as client:
            for n in range(6):
                server = scripted_server if n % 2 == 0 else other
                client.send(server.url, f"k{n}", BODY, token=n)
                collect(client, pipe.reader, 1)
    finally:
        pipe.close()
        other.stop()
    assert [r.headers["Idempotency-Key"] for r in scripted_server.received] == ["k0", "k2", "k4"]
    assert [r.headers["Idempotency-Key"] for r in other.received] == ["k1", "k3", "k5"]
    # Each server's connection was kept alive from one of its requests to the next.
    assert len({r.peer for r in scripted_server.received}) == 1
    assert len({r.peer for r in other.received}) == 1


def test_reserve_adds_handles_and_never_takes_any_away(scripted_server):
    scripted_server.script = [Answer(200, delay=0.5) for _ in range(3)]
    pipe = Pipe()
    with CounterClient(timeout=5, max_connections=1) as client:
        client.reserve(3)
        assert client.free == 3
        client.reserve(2)
        assert client.free == 3
        for n in range(3):
            client.send(scripted_server.url, f"k{n}", BODY, token=n)
        assert (client.free, client.in_flight) == (0, 3)
        answers = collect(client, pipe.reader, 3)
    pipe.close()
    assert sorted(token for token, _ in answers) == [0, 1, 2]
    assert scripted_server.most_in_flight == 3
