"""The seeded fault schedule and the driver that plays it against the running services.

`schedule(seed, seconds, ...)` is a pure function: the same seed, length and
database give the same faults at the same offsets, which is what replaying a
run with SOAK_SEED means. A counter-side fault (a kill, an error status, slow
answers, refusals) hits one destination's counter server or proxy, the one its
`target` names (COUNTERS), so that one may be down while the other is healthy.
The driver turns each fault into timed actions (the fault, then its end: a
restart, the proxy back to passing) and records, for each fault, the wall-clock
window during which it acted.
"""

import random
import signal
import threading
import time
from dataclasses import dataclass, field

from soak import proxy as proxy_modes

DISPATCHER_KILL = "dispatcher-sigkill"
DISPATCHER_TERM = "dispatcher-sigterm"
COUNTER_KILL = "counter-sigkill"
COUNTER_STATUS = "counter-status"
COUNTER_SLOW = "counter-slow"
COUNTER_REFUSE = "counter-refuse"
WEB_WORKER_KILL = "web-worker-sigkill"
DB_RESTART = "db-restart"
KINDS = [
    DISPATCHER_KILL, DISPATCHER_TERM, COUNTER_KILL, COUNTER_STATUS, COUNTER_SLOW,
    COUNTER_REFUSE, WEB_WORKER_KILL,
]  # fmt: skip
COUNTER_FAULTS = {COUNTER_KILL, COUNTER_STATUS, COUNTER_SLOW, COUNTER_REFUSE}
# The destinations' counter servers, each behind its proxy, by a counter-side fault's
# `target`: the built-in destination (both actions) and a second one (creations only).
COUNTERS = ("counter-server", "second-counter")
# Faults that touch the web path: the clients' errors inside their windows are expected.
WEB_FAULTS = {WEB_WORKER_KILL, DB_RESTART}
WEB_GRACE_SECONDS = 5.0  # a window lasts until gunicorn or the database has recovered, and this


@dataclass
class Fault:
    at: float  # seconds from the start of the load
    kind: str
    target: int = 0  # which dispatcher, web worker or counter server (COUNTERS)
    seconds: float = 0.0  # restart delay or duration
    status: int = 0  # for COUNTER_STATUS
    retry_after: int = 0  # for COUNTER_STATUS: the Retry-After (seconds) answered with it, if any
    skipped: str = ""  # why the fault was not applied, when it was not
    window: list[float] = field(default_factory=list)  # [start, end], time.time()

    def describe(self) -> str:
        """The fault as logged: kind, target and duration."""
        counter = COUNTERS[self.target] if self.kind in COUNTER_FAULTS else ""
        detail = {
            DISPATCHER_KILL: f"dispatcher-{self.target}, restart after {self.seconds:.1f} s",
            DISPATCHER_TERM: f"dispatcher-{self.target}, restart after {self.seconds:.1f} s",
            COUNTER_KILL: f"{counter}, restart after {self.seconds:.1f} s",
            COUNTER_STATUS: f"{counter} answers {self.status}"
            + (f" with Retry-After: {self.retry_after}" if self.retry_after else "")
            + f" for {self.seconds:.1f} s",
            COUNTER_SLOW: f"{counter} answers late for {self.seconds:.1f} s",
            COUNTER_REFUSE: f"{counter} refuses connections for {self.seconds:.1f} s",
            WEB_WORKER_KILL: f"worker #{self.target}",
            DB_RESTART: "pg_ctlcluster restart",
        }[self.kind]
        return f"{self.kind} ({detail})"


def fault_count(rng: random.Random, seconds: float) -> int:
    """15 to 30 faults in the default 180 s, a handful in 30 s: one per 6 to 12 s."""
    return min(30, rng.randint(max(3, int(seconds // 12)), max(3, int(seconds // 6))))


def schedule(seed: int, seconds: float, *, database: str) -> list[Fault]:
    """The run's faults, sorted by time, all within the load (the last ends before it does)."""
    rng = random.Random(seed)
    faults = []
    for _ in range(fault_count(rng, seconds)):
        kind = rng.choice(KINDS)
        fault = Fault(at=round(rng.uniform(1, max(2, seconds - 6)), 2), kind=kind)
        if kind in (DISPATCHER_KILL, DISPATCHER_TERM):
            fault.target, fault.seconds = rng.randrange(2), rng.uniform(0, 3)
        elif kind == COUNTER_KILL:
            fault.seconds = rng.uniform(1, 5)
        elif kind == WEB_WORKER_KILL:
            fault.target = rng.randrange(2)
        else:
            fault.seconds = rng.uniform(2, 5)
            fault.status = rng.choice([503, 500, 429]) if kind == COUNTER_STATUS else 0
            if fault.status in (429, 503):  # an overloaded answer may say when to come back
                fault.retry_after = rng.choice([0, 1, 2])
        if kind in COUNTER_FAULTS:
            fault.target = rng.randrange(len(COUNTERS))
        faults.append(fault)
    if database == "postgresql":  # once, in the middle of the run
        faults.append(Fault(at=round(rng.uniform(0.3, 0.7) * seconds, 2), kind=DB_RESTART))
    return sorted(faults, key=lambda fault: fault.at)


class Driver(threading.Thread):
    """Plays a schedule: each fault at its time, its end `seconds` later.

    `services.counters[n]` and `proxies[n]` are the counter server and the proxy of
    COUNTERS[n], which a counter-side fault with `target` n hits.
    """

    def __init__(
        self, faults, services, proxies, *, log, restart_db=None, clock=time.time, sleep=time.sleep
    ) -> None:
        super().__init__(name="soak-faults", daemon=True)
        self.clock = clock  # injectable, with `sleep`, for tests
        self.sleep = sleep
        self.faults = faults
        self.services = services
        self.proxies = proxies
        self.log = log
        self.restart_db = restart_db  # a callable, None when the restart is skipped
        self.started = 0.0
        self.error: BaseException | None = None
        self._proxy_owners: dict[int, Fault] = {}  # per proxy, the fault that set its mode

    def run(self) -> None:
        """Play the schedule from `started` (time.time()); an error ends it and is kept."""
        try:
            self._play()
        except BaseException as exc:  # reported by the run, which fails
            self.error = exc
            self.log(f"fault driver stopped: {exc!r}")

    def _play(self) -> None:
        actions = []
        for fault in self.faults:
            actions.append((fault.at, 0, fault, self._begin))
            if fault.kind not in (WEB_WORKER_KILL, DB_RESTART):
                actions.append((fault.at + fault.seconds, 1, fault, self._end))
        actions.sort(key=lambda action: action[:2])
        for at, _, fault, act in actions:
            self.sleep(max(0.0, self.started + at - self.clock()))
            act(fault)

    def _begin(self, fault: Fault) -> None:
        number = self.faults.index(fault) + 1
        if fault.skipped:
            self.log(
                f"fault {number}/{len(self.faults)} {fault.describe()}: SKIPPED, {fault.skipped}"
            )
            return
        fault.window = [self.clock(), self.clock()]
        self.log(f"fault {number}/{len(self.faults)} {fault.describe()}")
        kind = fault.kind
        if kind in (DISPATCHER_KILL, DISPATCHER_TERM):
            signum = signal.SIGKILL if kind == DISPATCHER_KILL else signal.SIGTERM
            if not self.services.dispatchers[fault.target].signal(signum):
                self.log(f"  dispatcher-{fault.target} was already down")
        elif kind == COUNTER_KILL:
            if not self.services.counters[fault.target].slot.signal(signal.SIGKILL):
                self.log(f"  {COUNTERS[fault.target]} was already down")
        elif kind == WEB_WORKER_KILL:
            pid = self.services.kill_web_worker(fault.target)
            self.log(f"  killed worker pid {pid}")
            self._wait_web_workers(pid)
            fault.window[1] = self.clock() + WEB_GRACE_SECONDS
        elif kind == DB_RESTART:
            self.restart_db()
            fault.window[1] = self.clock() + WEB_GRACE_SECONDS
            self.log(f"  database back after {self.clock() - fault.window[0]:.1f} s")
        else:
            mode = {COUNTER_STATUS: "status", COUNTER_SLOW: proxy_modes.SLOW}.get(
                kind, proxy_modes.REFUSE
            )
            self.proxies[fault.target].set_mode(
                mode, fault.status or None, retry_after=fault.retry_after or None
            )
            self._proxy_owners[fault.target] = fault

    def _end(self, fault: Fault) -> None:
        if fault.skipped:
            return
        fault.window[1] = self.clock()
        if fault.kind in (DISPATCHER_KILL, DISPATCHER_TERM):
            if self.services.dispatchers[fault.target].restart_if_down():
                self.log(f"  dispatcher-{fault.target} restarted")
        elif fault.kind == COUNTER_KILL:
            if self.services.counters[fault.target].slot.restart_if_down():
                self.log(f"  {COUNTERS[fault.target]} restarted")
        elif self._proxy_owners.get(fault.target) is fault:  # a later fault may have taken over
            self.proxies[fault.target].set_mode(proxy_modes.PASS)
            del self._proxy_owners[fault.target]
            self.log(f"  {COUNTERS[fault.target]}'s proxy passing again after {fault.kind}")

    def _wait_web_workers(self, killed: int | None, timeout: float = 30) -> None:
        """Until gunicorn has reaped the killed worker and runs two again (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = self.services.web_workers()
            if killed not in workers and len(workers) >= 2:
                return
            time.sleep(0.05)
