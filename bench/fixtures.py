"""The bench database's contents: its user and token, and SQL fixtures.

The bulk fixtures are written in SQL, bypassing the outbox on purpose:
1,000,000 defects only feed the listing, and 100,000 pending events are a
backlog for the dispatcher to drain. (The database itself: bench/database.py.)
"""

EVENT_PAYLOAD = '{"user": 1, "action": "create"}'
TIES = 64  # fixture defects sharing one timestamp (the pagination keys on timestamp, id)


def bench_user_and_token() -> tuple[int, str]:
    """The `bench` user (no usable password: it authenticates by token) and a new token's text."""
    from django.contrib.auth import get_user_model

    from apitokens.services import token_create
    from bench.floor import BENCH_USERNAME

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USERNAME)
    user.set_unusable_password()
    user.save()
    _, text = token_create(user=user, name="bench")
    return user.pk, text


def add_defects(count: int, *, user_id: int, start: int = 0) -> None:
    """Insert `count` defects in SQL, from 2020 on, TIES of them per timestamp."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                """
                WITH RECURSIVE n(i) AS (SELECT %s UNION ALL SELECT i + 1 FROM n WHERE i < %s)
                INSERT INTO defect_defect (comment, timestamp, user_id)
                SELECT 'Bench defect ' || i || ': brake pad worn, axle 2',
                       strftime(
                           '%%Y-%%m-%%d %%H:%%M:%%S', '2020-01-01', '+' || (i / %s) || ' seconds'
                       ),
                       %s
                FROM n
                """,
                [start, start + count - 1, TIES, user_id],
            )
        else:
            cursor.execute(
                """
                INSERT INTO defect_defect (comment, timestamp, user_id)
                SELECT 'Bench defect ' || i || ': brake pad worn, axle 2',
                       TIMESTAMPTZ '2020-01-01 00:00:00+00' + (i / %s) * INTERVAL '1 second',
                       %s
                FROM generate_series(%s::bigint, %s::bigint) AS i
                """,
                [TIES, user_id, start, start + count - 1],
            )
            cursor.execute("ANALYZE defect_defect")


def add_pending_events(count: int) -> None:
    """Insert `count` due events in SQL, each with its delivery to every enabled destination
    subscribed to creations: a backlog for the dispatcher."""
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s)
                INSERT INTO broadcast_event (key, payload, created_at)
                SELECT lower(hex(randomblob(16))), %s, %s FROM n
                """,
                [count, EVENT_PAYLOAD, now],
            )
        else:
            cursor.execute(
                """
                INSERT INTO broadcast_event (key, payload, created_at)
                SELECT gen_random_uuid(), %s::jsonb, %s FROM generate_series(1, %s::bigint)
                """,
                [EVENT_PAYLOAD, now, count],
            )
        cursor.execute(
            """
            INSERT INTO broadcast_delivery (event_id, destination_id, status, available_at,
                                            claimed_by, attempts, last_error, created_at)
            SELECT e.id, d.id, 'pending', e.created_at, '', 0, '', e.created_at
            FROM broadcast_event e CROSS JOIN broadcast_destination d
            WHERE d.enabled AND d.on_create
              AND NOT EXISTS (SELECT 1 FROM broadcast_delivery x WHERE x.event_id = e.id)
            """
        )
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE broadcast_event")
            cursor.execute("ANALYZE broadcast_delivery")


def clear_events() -> None:
    """Empty the outbox, its deliveries and their attempt log (each run starts with none).

    On PostgreSQL by TRUNCATE: a DELETE leaves every row's dead versions in the
    indexes until autovacuum, and a dispatcher's claim walks the dead entries of
    the due index. After a drain, that doubled the next scenario's delivery
    latency (bench/ANALYSIS.md); each scenario measures its own load, not the
    last one's leftovers.
    """
    from django.db import connection, transaction

    from broadcast.models import Attempt, Delivery, Event

    models = (Attempt, Delivery, Event)  # the attempts refer to the deliveries
    if connection.vendor == "postgresql":
        # Locked in the order the writers lock them (an event, then its deliveries, then
        # their attempts): the other way round, a request still being answered and the
        # TRUNCATE each held a table the other waited for.
        tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in reversed(models))
        with connection.cursor() as cursor:
            # The deliveries' foreign keys are checked at commit: inside a transaction
            # (a test's) changes to them leave trigger events that TRUNCATE refuses.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {tables}")
    else:  # SQLite's DELETE without a WHERE empties the table at once (its truncate)
        # In one transaction: a request still being answered (wrk's last) committed
        # between two of them left a delivery whose event the next could not delete.
        with transaction.atomic(), connection.cursor() as cursor:
            for model in models:
                cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")


def pending_count(*, builtin_only: bool = False) -> int:
    """Deliveries not made yet (`builtin_only`: the built-in destination's only)."""
    from broadcast.models import Delivery

    pending = Delivery.objects.pending()
    return (pending.filter(destination__managed=True) if builtin_only else pending).count()


def add_destinations(urls: list[str], *, prefix: str = "bench") -> None:
    """A destination beside the built-in one for each of `urls` (both actions, the
    counter format), through the service an operator's API call goes through."""
    from broadcast.destinations import destination_create

    for i, url in enumerate(urls):
        destination_create(name=f"{prefix}-{i + 2}", url=url)


def remove_destinations() -> None:
    """Delete every destination but the built-in one, with their deliveries."""
    from broadcast.destinations import destination_delete
    from broadcast.models import Destination

    for destination in Destination.objects.filter(managed=False):
        destination_delete(destination=destination)


def attempt_storage() -> dict:
    """The attempt log's rows and the bytes its table and indexes take on disk.

    PostgreSQL: `pg_total_relation_size` (heap, TOAST, indexes, their free space and
    visibility maps). SQLite: the pages of its b-trees, the table's and its indexes'
    (the `dbstat` virtual table), whole pages as the file holds them.
    """
    from django.db import connection

    from broadcast.models import Attempt

    table = Attempt._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
        rows = cursor.fetchone()[0]
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
        else:
            cursor.execute(
                "SELECT SUM(pgsize) FROM dbstat"
                " WHERE name IN (SELECT name FROM sqlite_master WHERE tbl_name = %s)",
                [table],
            )
        size = cursor.fetchone()[0] or 0
    return {"attempts": rows, "attempt_bytes": size,
            "attempt_bytes_per_million": 1e6 * size / rows if rows else None}  # fmt: skip


def event_count() -> int:
    """Events in the outbox: after clear_events(), the creations served since."""
    from broadcast.models import Event

    return Event.objects.count()
