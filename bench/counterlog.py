"""Reading counters_server.js's log: one line per event, prefixed with its arrival time.

2026-11-28T05:31:34.123Z user 1 create (key <uuid>)
2026-11-28T05:31:34.124Z duplicate <uuid>: user 1 create (not counted)
"""

import datetime
import re
from pathlib import Path

ARRIVAL = re.compile(r"^(\S+) (?:user \S+ \S+ \(key ([0-9a-f-]+)\)|duplicate ([0-9a-f-]+):)")


def arrivals(path: Path, keys, offset: int = 0) -> dict[str, datetime.datetime]:
    """First arrival time (aware datetime) of each of `keys` in the log, from byte `offset`."""
    found: dict = {}
    with open(path, "rb") as lines:
        lines.seek(offset)
        for raw in lines:
            match = ARRIVAL.match(raw.decode(errors="replace"))
            key = match and (match[2] or match[3])
            if key in keys and key not in found:
                found[key] = datetime.datetime.fromisoformat(match[1])
    return found


def tally(path: Path) -> dict:
    """Events the counter server counted, and repeats it saw (by Idempotency-Key)."""
    counted = duplicates = 0
    with open(path, errors="replace") as lines:
        for line in lines:
            event = line.split(" ", 1)[-1]  # after the arrival time
            if event.startswith("duplicate "):
                duplicates += 1
            elif event.startswith("user "):
                counted += 1
    return {"counted": counted, "duplicates": duplicates}
