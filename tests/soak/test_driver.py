"""The fault driver plays a schedule in order, on an injected clock, against recording stand-ins.

The real processes and proxy are the soak's own business (`make soak`, CI's
short soak); here only the driver's sequencing is checked, exactly.
"""

import signal

from soak.faults import (
    COUNTER_KILL,
    COUNTER_REFUSE,
    COUNTER_SLOW,
    COUNTER_STATUS,
    DISPATCHER_KILL,
    DISPATCHER_TERM,
    WEB_GRACE_SECONDS,
    WEB_WORKER_KILL,
    Driver,
    Fault,
)
from soak.proxy import PASS, REFUSE, SLOW


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Slot:
    def __init__(self, name: str, calls: list, clock: Clock) -> None:
        self.name, self.calls, self.clock, self.up = name, calls, clock, True

    def signal(self, signum: int) -> bool:
        """As the real Slot: a process already down is not signalled again."""
        if not self.up:
            return False
        self.calls.append((self.clock() - 1000, self.name, signal.Signals(signum).name))
        self.up = False
        return True

    def restart_if_down(self) -> bool:
        if self.up:
            return False
        self.calls.append((self.clock() - 1000, self.name, "restart"))
        self.up = True
        return True


class Counter:
    def __init__(self, name: str, calls: list, clock: Clock) -> None:
        self.slot = Slot(name, calls, clock)


class Services:
    def __init__(self, calls: list, clock: Clock) -> None:
        self.dispatchers = [Slot(f"dispatcher-{n}", calls, clock) for n in range(2)]
        self.counters = [Counter("counter", calls, clock), Counter("second", calls, clock)]
        self.calls, self.clock = calls, clock

    def kill_web_worker(self, index: int) -> int:
        self.calls.append((self.clock() - 1000, "web", f"kill #{index}"))
        return 99

    def web_workers(self) -> list[int]:
        return [1, 2]


class Proxy:
    def __init__(self, name: str, calls: list, clock: Clock) -> None:
        self.name, self.calls, self.clock = name, calls, clock

    def set_mode(self, mode: str, status: int | None = None, retry_after: int | None = None):
        call = (self.clock() - 1000, self.name, mode, status)
        self.calls.append(call if retry_after is None else (*call, retry_after))


def play(faults: list[Fault]) -> list:
    clock, calls = Clock(), list[tuple]()
    proxies = [Proxy("proxy", calls, clock), Proxy("second's proxy", calls, clock)]
    driver = Driver(
        faults, Services(calls, clock), proxies, log=lambda line: None,
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    driver.started = clock()
    driver.run()
    assert driver.error is None
    return calls


def test_each_fault_at_its_time_and_its_end_after_its_duration():
    calls = play([
        Fault(at=1.0, kind=DISPATCHER_KILL, target=1, seconds=2.0),
        Fault(at=2.0, kind=COUNTER_STATUS, seconds=1.5, status=503),
        Fault(at=4.0, kind=WEB_WORKER_KILL, target=0),
        Fault(at=5.0, kind=COUNTER_KILL, seconds=1.0),
    ])  # fmt: skip
    assert calls == [
        (1.0, "dispatcher-1", "SIGKILL"),
        (2.0, "proxy", "status", 503),
        (3.0, "dispatcher-1", "restart"),
        (3.5, "proxy", PASS, None),
        (4.0, "web", "kill #0"),
        (5.0, "counter", "SIGKILL"),
        (6.0, "counter", "restart"),
    ]


def test_a_later_proxy_fault_is_not_ended_by_an_earlier_ones_end():
    calls = play([
        Fault(at=1.0, kind=COUNTER_STATUS, seconds=3.0, status=500),
        Fault(at=2.0, kind=COUNTER_SLOW, seconds=5.0),
    ])  # fmt: skip
    assert calls == [
        (1.0, "proxy", "status", 500),
        (2.0, "proxy", SLOW, None),
        (7.0, "proxy", PASS, None),
    ]


def test_overlapping_kills_of_one_dispatcher_restart_it_once():
    calls = play([
        Fault(at=1.0, kind=DISPATCHER_TERM, target=0, seconds=2.0),
        Fault(at=2.0, kind=DISPATCHER_KILL, target=0, seconds=2.0),
    ])  # fmt: skip
    assert calls == [
        (1.0, "dispatcher-0", "SIGTERM"),  # the SIGKILL at 2.0 finds it down already
        (3.0, "dispatcher-0", "restart"),
    ]


def test_windows_record_when_each_fault_acted():
    kill = Fault(at=1.0, kind=DISPATCHER_KILL, seconds=2.5)
    worker = Fault(at=2.0, kind=WEB_WORKER_KILL)
    skipped = Fault(at=3.0, kind=COUNTER_KILL, seconds=1.0, skipped="no --data")
    assert play([kill, worker, skipped]) == [
        (1.0, "dispatcher-0", "SIGKILL"),
        (2.0, "web", "kill #0"),
        (3.5, "dispatcher-0", "restart"),
    ]
    assert kill.window == [1001.0, 1003.5]
    assert worker.window == [1002.0, 1002.0 + WEB_GRACE_SECONDS]
    assert skipped.window == []


def test_counter_faults_hit_the_counter_server_or_proxy_they_target():
    calls = play([
        Fault(at=1.0, kind=COUNTER_STATUS, target=1, seconds=3.0, status=503),
        Fault(at=2.0, kind=COUNTER_KILL, target=0, seconds=1.0),
        Fault(at=2.5, kind=COUNTER_SLOW, target=0, seconds=2.0),
        Fault(at=5.0, kind=COUNTER_KILL, target=1, seconds=1.0),
    ])  # fmt: skip
    assert calls == [
        (1.0, "second's proxy", "status", 503),
        (2.0, "counter", "SIGKILL"),
        (2.5, "proxy", SLOW, None),
        (3.0, "counter", "restart"),
        (4.0, "second's proxy", PASS, None),
        (4.5, "proxy", PASS, None),
        (5.0, "second", "SIGKILL"),
        (6.0, "second", "restart"),
    ]


def test_an_injected_status_may_carry_a_retry_after():
    calls = play([Fault(at=1.0, kind=COUNTER_STATUS, target=1, seconds=2.0, status=429,
                        retry_after=2)])  # fmt: skip
    assert calls == [(1.0, "second's proxy", "status", 429, 2), (3.0, "second's proxy", PASS, None)]


def test_one_proxys_fault_ending_leaves_the_others_fault_in_place():
    calls = play([
        Fault(at=1.0, kind=COUNTER_STATUS, target=0, seconds=5.0, status=429),
        Fault(at=2.0, kind=COUNTER_REFUSE, target=1, seconds=1.0),
    ])  # fmt: skip
    assert calls == [
        (1.0, "proxy", "status", 429),
        (2.0, "second's proxy", REFUSE, None),
        (3.0, "second's proxy", PASS, None),
        (6.0, "proxy", PASS, None),
    ]
