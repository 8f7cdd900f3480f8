"""CPU time of processes, from /proc: the dispatcher's, its PostgreSQL backends', web workers'.

User + system time as the kernel accounts it (`/proc/PID/stat`, all threads),
in seconds. A PostgreSQL backend is found by the `application_name` its client
sets (libpq reads it from `PGAPPNAME`, which the bench puts in each
dispatcher's environment) through `pg_stat_activity`.
"""

import contextlib
import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` (None once it is gone).

    Readable for a zombie too: an exited child that was not reaped yet
    (procs.wait_exit) still shows its final times.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after "pid (comm)": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def run_seconds(pid: int) -> float | None:
    """CPU seconds of process `pid`, all its threads, to the nanosecond (the scheduler's
    own account, `/proc/PID/task/*/schedstat`; None once it is gone). For small figures,
    such as an idle process's, which `cpu_seconds`' ticks of 10 ms cannot tell apart;
    threads that have ended are not counted."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                total += int((task / "schedstat").read_text().split()[0])
    except OSError:
        return None
    return total / 1e9


def total_cpu_seconds(pids) -> float:
    """Sum of cpu_seconds over `pids` (processes already gone count 0)."""
    return sum(cpu_seconds(pid) or 0.0 for pid in pids)


def backend_pids(application_name: str) -> list[int]:
    """PIDs of the PostgreSQL backends serving connections named `application_name`."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [application_name]
        )
        return [row[0] for row in cursor.fetchall()]


class BackendMeter:
    """CPU of a client's PostgreSQL backends, sampled: each is kept at its last reading.

    A backend exits with its client, so its CPU is read while it lives; the
    caller samples it about every 0.05 s and the last reading stands.
    """

    def __init__(
        self, application_name: str | None, *, whole_life: bool = False, read=cpu_seconds
    ) -> None:
        """`whole_life`: count each backend's CPU from its start (it began with the run);
        `read`: how to read a process's CPU seconds (`run_seconds` for small figures)."""
        self.read = read
        self.application_name = application_name
        self.whole_life = whole_life
        self.last: dict[int, float] = {}
        self.first: dict[int, float] = {}

    def sample(self, *, discover: bool = False) -> None:
        """Read each known backend's CPU; with `discover`, ask pg_stat_activity for new ones."""
        if self.application_name is None:
            return
        if discover:
            for pid in backend_pids(self.application_name):
                self.last.setdefault(pid, self.read(pid) or 0.0)
                self.first.setdefault(pid, 0.0 if self.whole_life else self.last[pid])
        for pid in self.last:
            seconds = self.read(pid)
            if seconds is not None:
                self.last[pid] = seconds

    def seconds(self) -> float:
        """CPU the backends spent since each was first seen."""
        return sum(self.last[pid] - self.first[pid] for pid in self.last)
