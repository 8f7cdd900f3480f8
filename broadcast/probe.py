"""SQLite: is anything due? Asked from the dispatcher's loop thread, for almost nothing.

On SQLite the doorbell announces a commit, but not what nothing commits (a lease
run out, a retry falling due), so the dispatcher still polls, as a safety net.
A round costs a millisecond or so of CPU even when it finds nothing (the
hand-off to the database thread, Django's cursor, the wake-up back); the probe
asks the round's first question, whether a delivery to one of the destinations it
claims for is due (queries.SQLITE_PROBE), on a connection of its own through the standard library's
sqlite3, for a few tens of microseconds, and the dispatcher starts a round
only when the answer is yes. In WAL mode a reader neither blocks nor waits for
the writer, and `query_only` keeps this connection from ever writing.
"""

import datetime
import json
import sqlite3

from django.db import connections

from broadcast import queries
from broadcast.models import Status


class DueProbe:
    """`due(now, destinations)`: whether a delivery to one of them is due at `now`. For one
    thread (the loop's)."""

    def __init__(self, using: str = "default") -> None:
        connection = connections[using]
        self._path = connection.settings_dict["NAME"]
        self._adapt = connection.ops.adapt_datetimefield_value
        self._sql = queries.SQLITE_PROBE
        self._db: sqlite3.Connection | None = None

    def due(self, now: datetime.datetime, destinations: list[int]) -> bool:
        """True if a delivery to one of `destinations` (ids) is due at `now`, or if the probe
        cannot tell (a round will)."""
        try:
            if self._db is None:
                self._db = sqlite3.connect(self._path, isolation_level=None)
                self._db.execute("PRAGMA query_only = ON")
            ids = json.dumps(destinations)
            row = self._db.execute(self._sql, (ids, Status.PENDING, self._adapt(now))).fetchone()
        except sqlite3.Error:
            self.close()  # opened again at the next question
            return True
        return row is not None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def probe_for(using: str = "default") -> DueProbe | None:
    """The probe for this database: SQLite's; none on PostgreSQL, where NOTIFY says it."""
    return DueProbe(using) if connections[using].vendor == "sqlite" else None
