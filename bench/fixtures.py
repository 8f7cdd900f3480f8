"""The bench database: its creation, users and token, and SQL fixtures.

The bench never uses the development database: SQLite gets its own file under
bench/results/tmp/, PostgreSQL a database of its own (railfleet_bench) on the
server DATABASE_URL names. The bulk fixtures are written in SQL, bypassing the
outbox on purpose: 1,000,000 defects only feed the listing, and 100,000
pending events are a backlog for the dispatcher to drain.
"""

from urllib.parse import urlsplit, urlunsplit

BENCH_PG_DATABASE = "railfleet_bench"
EVENT_PAYLOAD = '{"user": 1, "action": "create"}'
TIES = 64  # fixture defects sharing one timestamp (the pagination keys on timestamp, id)


def postgres_bench_url(url: str, database: str = BENCH_PG_DATABASE) -> str:
    """DATABASE_URL with its database replaced by the bench's own (or `database`)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def recreate_postgres(url: str, database: str = BENCH_PG_DATABASE) -> None:
    """Drop and create the bench database (or `database`, only that one) on DATABASE_URL's
    server."""
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {database}")


def bench_user_and_token() -> tuple[int, str]:
    """The `bench` user (no usable password: it authenticates by token) and its token."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from bench.floor import BENCH_USERNAME

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USERNAME)
    user.set_unusable_password()
    user.save()
    token, _ = Token.objects.get_or_create(user=user)
    return user.pk, token.key


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
                FROM generate_series(%s, %s) AS i
                """,
                [TIES, user_id, start, start + count - 1],
            )
            cursor.execute("ANALYZE defect_defect")


def add_pending_events(count: int) -> None:
    """Insert `count` due events in SQL: a backlog for the dispatcher."""
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s)
                INSERT INTO broadcast_event (key, payload, status, created_at, available_at,
                                             claimed_by, attempts, last_error)
                SELECT lower(hex(randomblob(16))), %s, 'pending', %s, %s, '', 0, '' FROM n
                """,
                [count, EVENT_PAYLOAD, now, now],
            )
        else:
            cursor.execute(
                """
                INSERT INTO broadcast_event (key, payload, status, created_at, available_at,
                                             claimed_by, attempts, last_error)
                SELECT gen_random_uuid(), %s::jsonb, 'pending', %s, %s, '', 0, ''
                FROM generate_series(1, %s)
                """,
                [EVENT_PAYLOAD, now, now, count],
            )
            cursor.execute("ANALYZE broadcast_event")


def clear_events() -> None:
    from broadcast.models import Event

    Event.objects.all()._raw_delete(Event.objects.db)


def pending_count() -> int:
    from broadcast.models import Event

    return Event.objects.pending().count()
