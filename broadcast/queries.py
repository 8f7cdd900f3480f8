"""The broadcast's hand-written SQL, all of it, as literal SQL (as Procrastinate keeps its
`queries.sql`): the dispatcher's claim and record, and the fan-out of new events to
their destinations. Everything else the broadcast runs is the ORM.

Why by hand: the claim is one statement the ORM cannot say (an UPDATE of the
rows a locked, ordered, limited SELECT picks, RETURNING them ready to send),
and the rounds run them fifty times a second under a steady load, where
compiling a queryset each time dominated a trickle's profile (BENCHMARKS.md).

"Due" has two spellings, `EventQuerySet.due()` and `DUE` below, which every claim
is built from; tests/broadcast/test_queries.py checks that each statement selects
exactly what `due()` selects, and that the table is the model's.

Placeholders are Django's (`%s`), every value a parameter; the events are
returned with their key as the UUID's hyphenated text (PostgreSQL) or its 32
hex digits (SQLite), the payload as its JSON text and the creation time as
Unix seconds, so that nothing is decoded per event to send it or to time it.
"""

from broadcast.models import ACTION_COLUMNS

# The due events, oldest first: every claim's choice, and on SQLite the idle
# claim's first, read-only question (LIMIT 1). Parameters: pending, now, limit.
DUE = """
SELECT id FROM broadcast_event
WHERE status = %s AND available_at <= %s
ORDER BY available_at, id
LIMIT %s"""

# What a claim returns of each event (SQLite's is its own, below).
_CLAIMED = """id, CAST(key AS text), CAST(payload AS text), attempts,
          CAST(EXTRACT(EPOCH FROM created_at) AS double precision)"""

# --- PostgreSQL --------------------------------------------------------------------

# The claim. The events are picked in a MATERIALIZED common table expression,
# which runs once: PostgreSQL may run a subquery under `IN (...)` again for each
# row it updates, and each run would lock more rows than the LIMIT (a known trap
# of SKIP LOCKED queues). The UPDATE finds them by primary key (`= ANY` of their
# array): as a join, `IN (SELECT ...)` was planned as a scan of the whole table
# once the LIMIT was a sizeable share of it (bench/ANALYSIS.md).
# Parameters: pending, now, limit, the lease's end, the owner.
POSTGRESQL_CLAIM = f"""
WITH picked AS MATERIALIZED ({DUE} FOR UPDATE SKIP LOCKED)
UPDATE broadcast_event SET available_at = %s, claimed_by = %s
WHERE id = ANY(ARRAY(SELECT id FROM picked))
RETURNING {_CLAIMED}
"""  # noqa: S608 - literal SQL, no value interpolated

# Parameters: delivered, now, the ids (an array), delivered.
POSTGRESQL_DELIVERED = """
UPDATE broadcast_event
SET status = %s, delivered_at = %s, attempts = attempts + 1, claimed_by = '', last_error = ''
WHERE id = ANY(%s::bigint[]) AND status <> %s"""

# A round's record of its deliveries and its claim, in one statement (a round
# under a steady load carries a few events: its cost is its statements'). The
# claim leaves out the ids just delivered (a statement must not update a row
# twice), through a subquery PostgreSQL hashes once; a data-modifying CTE runs
# to completion even when nothing is due, so the deliveries are always recorded.
# Parameters: delivered, now, the delivered ids (an array), delivered;
# then the claim's: pending, now, limit, the lease's end, the owner.
POSTGRESQL_DELIVER_AND_CLAIM = f"""
WITH delivered AS ({POSTGRESQL_DELIVERED} RETURNING id),
picked AS MATERIALIZED ({DUE} FOR UPDATE SKIP LOCKED)
UPDATE broadcast_event SET available_at = %s, claimed_by = %s
WHERE id = ANY(ARRAY(SELECT id FROM picked)) AND id NOT IN (SELECT id FROM delivered)
RETURNING {_CLAIMED}
"""  # noqa: S608 - literal SQL, no value interpolated

# --- SQLite --------------------------------------------------------------------------

# The claim, in the round's write transaction (SQLite serialises writers, so no
# lock is needed). julianday() rather than unixepoch(..., 'subsec'), which needs
# SQLite 3.42; it keeps milliseconds, finer than the latency histogram's buckets.
# Parameters: the lease's end, the owner, pending, now, limit.
SQLITE_CLAIM = f"""
UPDATE broadcast_event SET available_at = %s, claimed_by = %s
WHERE id IN ({DUE})
RETURNING id, key, payload, attempts, (julianday(created_at) - 2440587.5) * 86400.0
"""  # noqa: S608 - literal SQL, no value interpolated

# Parameters: delivered, now, the ids (a JSON array), delivered.
SQLITE_DELIVERED = """
UPDATE broadcast_event
SET status = %s, delivered_at = %s, attempts = attempts + 1, claimed_by = '', last_error = ''
WHERE id IN (SELECT value FROM json_each(%s)) AND status <> %s
"""

# The probe's question (broadcast/probe.py, through the sqlite3 module's own
# placeholders). Parameters: pending, now.
SQLITE_PROBE = """
SELECT 1 FROM broadcast_event WHERE status = ? AND available_at <= ? LIMIT 1
"""

# --- The fan-out (broadcast/services.py) -----------------------------------------------

# A new event's deliveries: one per enabled destination subscribed to its action, in one
# statement whatever the number of destinations (the ORM has no INSERT ... SELECT). The
# WHERE is `DestinationQuerySet.subscribed()`'s; tests/broadcast/test_fanout.py checks
# that both select the same destinations. One statement per action, so that the
# subscription's column is part of the literal SQL.
_DELIVERY_COLUMNS = """broadcast_delivery (event_id, destination_id, status, available_at,
                    claimed_by, attempts, last_error, created_at)"""

# One event. Parameters: the event's id, pending, its available_at, its created_at.
FAN_OUT = {
    action: f"""
INSERT INTO {_DELIVERY_COLUMNS}
SELECT %s, id, %s, %s, '', 0, '', %s FROM broadcast_destination
WHERE enabled AND {column}"""  # noqa: S608 - literal SQL, no value interpolated
    for action, column in ACTION_COLUMNS.items()
}

# Many events (a bulk insert's), each with every subscribed destination. Parameters:
# pending, then the events' ids: a bigint[] array on PostgreSQL, a JSON array on SQLite.
_FAN_OUT_MANY = """
INSERT INTO {columns}
SELECT e.id, d.id, %s, e.available_at, '', 0, '', e.created_at
FROM broadcast_event e CROSS JOIN broadcast_destination d
WHERE e.id {ids} AND d.enabled AND d.{column}"""
POSTGRESQL_FAN_OUT_MANY = {
    action: _FAN_OUT_MANY.format(
        columns=_DELIVERY_COLUMNS, ids="= ANY(%s::bigint[])", column=column
    )
    for action, column in ACTION_COLUMNS.items()
}
SQLITE_FAN_OUT_MANY = {
    action: _FAN_OUT_MANY.format(
        columns=_DELIVERY_COLUMNS, ids="IN (SELECT value FROM json_each(%s))", column=column
    )
    for action, column in ACTION_COLUMNS.items()
}
