"""`make soak`: the production shape under load and seeded faults, then the ledger.

`python -m soak` soaks SQLite, then PostgreSQL when DATABASE_URL names a
PostgreSQL server (in a database of its own, railfleet_soak, dropped and
created by the run), each in a child process with its own Django settings
(`python -m soak --db sqlite` runs one). SOAK_SECONDS (180) is the length of
the load, SOAK_SEED (random when unset, always printed) the fault schedule and
the load's choices. Logs and the SQLite database go to soak/tmp/<database>/.

Two destinations take the events, each a counters_server.js with its own --data
file behind its own fault proxy: the built-in one (COUNTER_SERVER_URL, both
actions) and a second one made with `destination_create` before the load,
subscribed to creations only, whose counter server checks its signing secret.
The counter-side faults hit one or the other (soak/faults.py), and the ledger
balances each on its own (soak/ledger.py).

It ends with one `soak: db=...` line per database (the totals, then each
destination's figures) and exits non-zero when any ledger check fails.
"""

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import random
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter

from bench import procs
from soak import faults as fault_kinds
from soak import ledger, pgcluster
from soak.faults import COUNTERS, Driver, schedule
from soak.load import CREATE, DELETE, ApiClient, OrmPaths
from soak.proxy import PASS, FaultProxy
from soak.services import Services, counter_supports_data

TMP = procs.ROOT / "soak" / "tmp"
SOAK_PG_DATABASE = "railfleet_soak"
USERS = 4  # API clients; the last one is deleted with their defects mid-run
REQUEST_TIMEOUT = 2.0  # the dispatchers' (BROADCAST_REQUEST_TIMEOUT): faults drain fast
DRAIN_SECONDS = 120  # after the load, the bound on waiting for nothing pending
# What each destination (soak.faults.COUNTERS) subscribes to: the built-in one to both
# actions, the second one to creations only.
SUBSCRIBED = {COUNTERS[0]: (CREATE, DELETE), COUNTERS[1]: (CREATE,)}
# The faults that delay every destination's deliveries alike.
SHARED_FAULTS = {fault_kinds.DISPATCHER_KILL, fault_kinds.DISPATCHER_TERM, fault_kinds.DB_RESTART}


def log(message: str) -> None:
    """One timestamped line of the soak's report."""
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Soak each database in a child process (or the one `--db` names); the exit code."""
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], help="soak one database")
    args = parser.parse_args(argv)
    seconds = float(os.environ.get("SOAK_SECONDS") or 180)
    seed = int(os.environ.get("SOAK_SEED") or secrets.randbelow(1_000_000))
    if args.db:
        return soak_one(args.db, seconds, seed)
    databases = ["sqlite"]
    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        databases.append("postgresql")
    how = "SOAK_SEED" if os.environ.get("SOAK_SEED") else "random; replay with SOAK_SEED"
    log(f"seed {seed} ({how}), {seconds:g} s of load on {', '.join(databases)}")
    lines, failed = [], False
    for database in databases:
        child = subprocess.run(
            [sys.executable, "-m", "soak", "--db", database],
            env={**os.environ, "SOAK_SEED": str(seed)},
            check=False,
        )
        failed |= child.returncode != 0
        summary = TMP / f"{database}-summary.txt"
        lines.append(
            summary.read_text().strip()
            if summary.exists()
            else f"soak: db={database} did not finish (exit {child.returncode})"
        )
    for line in lines:
        print(line, flush=True)
    return 1 if failed else 0


def environment(database: str, logs) -> dict:
    """The production settings (debug off), the soak's database and fast-draining dispatchers."""
    if database == "sqlite":
        url = f"sqlite:///{logs / 'soak.sqlite3'}"
    else:
        from bench.database import prepare_postgres

        url = prepare_postgres(SOAK_PG_DATABASE)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "railfleet.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": url,
        "API_THROTTLE_RATE": "1000000/second",  # the clients are not what is under test
        "BROADCAST_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
        "BROADCAST_LEASE_SECONDS": str(2.5 * REQUEST_TIMEOUT),
        "BROADCAST_RETRY_BASE_SECONDS": "0.2",
        "BROADCAST_RETRY_MAX_SECONDS": "2",
        "BROADCAST_SUMMARY_INTERVAL": "10",
        "PYTHONUNBUFFERED": "1",
    }


def make_users() -> list[tuple[int, str]]:
    """USERS users without a usable password, each with a token: (id, token text)."""
    from django.contrib.auth import get_user_model

    from apitokens.services import token_create

    users = []
    for n in range(USERS):
        user = get_user_model().objects.create_user(f"soak-{n}", password=None)
        users.append((user.pk, token_create(user=user, name="soak")[1]))
    return users


def prepare_faults(faults: list, database: str, url: str):
    """Mark the faults this run cannot apply; the database restart callable, or None."""
    if not counter_supports_data():
        for fault in faults:
            if fault.kind == fault_kinds.COUNTER_KILL:
                fault.skipped = "counters_server.js has no --data: its counts would not survive"
    if database != "postgresql":
        return None
    cluster, how = pgcluster.find_cluster(url)
    log(f"database restart: {'will run, ' if cluster else 'skipped, '}{how}")
    for fault in faults:
        if fault.kind == fault_kinds.DB_RESTART and cluster is None:
            fault.skipped = how
    return (lambda: pgcluster.restart(cluster, url)) if cluster else None


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports."""
    ports: list[int] = []
    while len(ports) < count:
        if (port := procs.free_port()) not in ports:
            ports.append(port)
    return ports


def make_second_destination(url: str) -> str:
    """The second destination, at `url`, subscribed to creations only, in the counter
    server's format; its signing secret (shown this once)."""
    from broadcast.destinations import destination_create
    from broadcast.models import BUILTIN_NAME, Format

    assert COUNTERS[0] == BUILTIN_NAME, "soak.faults.COUNTERS must start with the built-in one"
    destination, secret = destination_create(
        name=COUNTERS[1], url=url, actions=list(SUBSCRIBED[COUNTERS[1]]), format=Format.COUNTER
    )
    assert tuple(destination.actions) == SUBSCRIBED[COUNTERS[1]], destination.actions
    return secret


def soak_one(database: str, seconds: float, seed: int) -> int:
    """One database's soak, from an empty database to the verdict (0: the books balance)."""
    logs = TMP / database
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    summary = TMP / f"{database}-summary.txt"
    summary.unlink(missing_ok=True)
    env = environment(database, logs)
    os.environ.update(env)
    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    users = make_users()
    # Each destination's URL is its proxy's, in front of its counter server.
    ports = free_ports(len(COUNTERS))
    secret = make_second_destination(f"http://127.0.0.1:{ports[1]}/")
    services = Services(env, logs, f"http://127.0.0.1:{ports[0]}/", secrets={COUNTERS[1]: secret})
    proxies = [
        FaultProxy(counter.url, port, slow_seconds=REQUEST_TIMEOUT + 1)
        for counter, port in zip(services.counters, ports, strict=True)
    ]
    started: list[FaultProxy] = []
    faults = schedule(seed, seconds, database=database)
    restart_db = prepare_faults(faults, database, env["DATABASE_URL"])
    try:
        for proxy in proxies:
            started.append(proxy.start())
        services.start()
        subscribed = ", ".join(f"{name} ({'+'.join(a)})" for name, a in SUBSCRIBED.items())
        log(
            f"{database}: seed {seed}, {seconds:g} s, {len(faults)} faults scheduled, "
            f"destinations {subscribed}, logs in {logs}"
        )
        answers, orm_ops, errors = run_load(
            services, proxies, users, faults, seed, seconds, restart_db
        )
        figures, delays = settle_and_check(services, proxies, users, faults, answers, orm_ops)
    finally:
        services.stop()
        for proxy in started:
            proxy.stop()
    errors += services.unclean_exits()
    applied = sum(1 for fault in faults if fault.window)
    line = ledger.summary_line(database, figures, applied)
    report(figures, delays, faults, answers, orm_ops)
    keep_records(logs, answers, orm_ops, faults)
    keep_forwarded(logs, proxies)
    for error in errors:
        log(f"FAILED: {error}")
    print(line, flush=True)
    summary.write_text(line + "\n")
    return 0 if figures.ok and not errors else 1


def run_load(services, proxies, users, faults, seed, seconds, restart_db):
    """The clients, the ORM paths and the faults for `seconds`; then every fault ended."""
    answers: list = []
    clients = [
        ApiClient(services.base, user, token, seed * 100 + n, answers)
        for n, (user, token) in enumerate(users)
    ]

    def stop_last_client() -> int:
        """Before the cascade, the deleted user's client stops (no request races its deletion)."""
        clients[-1].stopping.set()
        clients[-1].join(60)
        return users[-1][0]

    started = time.time()
    cascade_at = started + random.Random(f"{seed}-cascade").uniform(0.3, 0.8) * seconds
    orm = OrmPaths(
        [user for user, _ in users], seed, cascade_at=cascade_at, cascade=stop_last_client
    )
    driver = Driver(faults, services, proxies, log=log, restart_db=restart_db)
    driver.started = started
    for thread in [*clients, orm, driver]:
        thread.start()
    time.sleep(max(0.0, started + seconds - time.time()))
    for thread in [*clients, orm]:
        thread.stopping.set()
    for thread in [*clients, orm]:
        thread.join(60)
    driver.join(120)
    log(
        f"load stopped after {time.time() - started:.0f} s: "
        f"{len(answers)} answers, {len(orm.ops)} ORM ops"
    )
    threads: list[ApiClient | OrmPaths | Driver] = [*clients, orm, driver]
    errors = [f"{t.name} stopped: {t.error!r}" for t in threads if t.error]
    return answers, orm.ops, errors


def wait_drained(timeout: float) -> int:
    """Wait until no delivery is pending (bounded); the number still pending."""
    from django.db import DatabaseError, connection

    from broadcast.models import Delivery

    deadline = time.monotonic() + timeout
    while True:
        try:
            pending = Delivery.objects.pending().count()
        except DatabaseError:
            connection.close()
            pending = -1
        if pending == 0 or time.monotonic() > deadline:
            return pending
        time.sleep(0.5)


def counter_counts(url: str, timeout: float = 30) -> dict:
    """The counter server's GET /, retried while it starts again (bounded)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=5).raise_for_status().json()
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def counter_keys(data) -> dict | None:
    """The keys the counter server recorded in its --data file: key -> (user, action)."""
    if not data.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{data}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT key, user, action FROM seen_keys").fetchall()
    return {key: (user, action) for key, user, action in rows}


def attempt_log(destination: str) -> dict[str, tuple[int, bool]]:
    """The attempt log of a destination's deliveries: event key -> (attempts recorded,
    whether the last one, by start, succeeded)."""
    from broadcast.models import Attempt

    log: dict[str, tuple[int, bool]] = {}
    attempts = Attempt.objects.filter(destination__name=destination).order_by("started_at", "id")
    for key, succeeded in attempts.values_list("delivery__event__key", "succeeded"):
        made, _ = log.get(str(key), (0, False))
        log[str(key)] = (made + 1, succeeded)
    return log


def settle_and_check(
    services, proxies, users, faults, answers, orm_ops
) -> tuple[ledger.Figures, list[ledger.Delays]]:
    """Every process back, the backlog drained (bounded), then the books balanced; and how
    long each destination waited while only another one was faulted."""
    from django.db import connection
    from django.db.models import Count

    from broadcast.models import Delivery, Event
    from defect.models import Defect

    for proxy in proxies:
        proxy.set_mode(PASS)
    services.restore()
    started = time.monotonic()
    pending = wait_drained(DRAIN_SECONDS)
    log(f"drained in {time.monotonic() - started:.1f} s ({pending} still pending)")
    connection.close()
    destinations = []
    for counter, proxy in zip(services.counters, proxies, strict=True):
        deliveries = Delivery.objects.filter(destination__name=counter.name)
        mine = ledger.DestinationBooks(
            name=counter.name,
            actions=SUBSCRIBED[counter.name],
            deliveries=[
                (str(key), status) for key, status in deliveries.values_list("event__key", "status")
            ],
            forwarded=list(proxy.forwarded),
            counts=counter_counts(counter.url),
            counter_keys=counter_keys(counter.data),
            attempts=attempt_log(counter.name),
        )
        recorded = "no --data file" if mine.counter_keys is None else len(mine.counter_keys)
        log(
            f"{counter.name}{' (signed)' if counter.signed else ''}: "
            f"{len(mine.forwarded)} requests forwarded, keys it recorded: {recorded}"
        )
        destinations.append(mine)
    books = ledger.Books(
        events=[(str(k), p) for k, p in Event.objects.values_list("key", "payload")],
        destinations=destinations,
        defects=dict(
            Defect.objects.values("user_id").annotate(n=Count("id")).values_list("user_id", "n")
        ),
        defect_ids=set(Defect.objects.values_list("id", flat=True)),
        answers=list(answers),
        orm_ops=list(orm_ops),
        users=[user for user, _ in users],
        web_windows=[
            (fault.kind, *fault.window)
            for fault in faults
            if fault.kind in fault_kinds.WEB_FAULTS and fault.window
        ],
    )
    applied = [fault for fault in faults if fault.window]
    delays = ledger.delays(
        books,
        created={
            str(k): at.timestamp() for k, at in Event.objects.values_list("key", "created_at")
        },
        counter_windows=[
            (fault.target, *fault.window)
            for fault in applied
            if fault.kind in fault_kinds.COUNTER_FAULTS
        ],
        shared_windows=[
            (fault.window[0], fault.window[1]) for fault in applied if fault.kind in SHARED_FAULTS
        ],
    )
    return ledger.check(books), delays


def keep_records(logs, answers, orm_ops, faults) -> None:
    """The run's raw records, one JSON object a line, for a post-mortem."""
    for name, rows in (("answers", answers), ("orm_ops", orm_ops), ("faults", faults)):
        with open(logs / f"{name}.jsonl", "w") as out:
            for row in rows:
                out.write(json.dumps(dataclasses.asdict(row)) + "\n")


def keep_forwarded(logs, proxies) -> None:
    """What each destination's proxy forwarded (time, key, counter server's status, body),
    one JSON object a line in forwarded-<destination>.jsonl, for a post-mortem."""
    for name, proxy in zip(COUNTERS, proxies, strict=True):
        with open(logs / f"forwarded-{name}.jsonl", "w") as out:
            for sent in proxy.forwarded:
                row = {"at": sent.at, "key": sent.key, "status": sent.status,
                       "body": sent.body.decode(errors="replace")}  # fmt: skip
                out.write(json.dumps(row) + "\n")


def report(figures: ledger.Figures, delays: list[ledger.Delays], faults, answers, orm_ops) -> None:
    """The figures of the run, before its summary line."""
    applied = [fault for fault in faults if fault.window]
    log(f"faults: {len(applied)} applied, {len(faults) - len(applied)} skipped: "
        + ", ".join(f"+{fault.at:.0f}s {fault.kind}{_on(fault)}" for fault in applied))  # fmt: skip
    for op in (CREATE, DELETE):
        statuses = Counter(answer.status for answer in answers if answer.op == op)
        log(
            f"API {op}: {sum(statuses.values())} requests, "
            f"by status {dict(sorted(statuses.items()))}"
        )
    kinds = Counter(op.kind for op in orm_ops)
    errors = sum(1 for op in orm_ops if op.error)
    log(f"ORM paths: {dict(kinds)} ({errors} raised)")
    log(
        f"events {figures.events}: lost {figures.lost}, phantom {figures.phantom}, wrong payloads "
        f"{figures.wrong}, left pending or failed {figures.left}, duplicates sent "
        f"{figures.duplicates}, ledger mismatches {figures.ledger_mismatches}"
    )
    for destination in figures.destinations:
        log(f"  {ledger.destination_figures(destination)}")
    for mine in delays:
        log(f"  {ledger.describe_delays(mine)}")
    log(
        f"client errors (status 0: no answer) inside fault windows "
        f"{dict(figures.errors_inside)}, outside {dict(figures.errors_outside)}; "
        f"{figures.client_failures} count as failures"
    )
    for problem in figures.problems:
        log(f"  {problem}")
    log("PASSED: the books balance" if figures.ok else "FAILED")


def _on(fault) -> str:
    """Which counter server a counter-side fault hit, as the report names it."""
    return f" ({COUNTERS[fault.target]})" if fault.kind in fault_kinds.COUNTER_FAULTS else ""
