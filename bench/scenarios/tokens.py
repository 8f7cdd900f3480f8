"""API create and list with the hashed tokens against the lookup they replaced (issue
#27: DRF's authtoken keys in clear, as at `c530585`; bench/legacy_tokens.py).

Two web servers over the same database, identical but for the API's token
authentication: the run's own, and a second one started with BENCH_LEGACY_TOKENS=1
(bench/settings.py). Per round, the API's create (no dispatcher, as create.py's
`api_create_off`) on one server and then on the other, then the API's first page on
each, in the same order, which alternates from round to round. Target 15 is the
hashed side's rate over the legacy side's: 1 means the tokens cost nothing. The
difference sought (5%) is smaller than a run's noise on these shared machines, so a
repetition is two rounds, one in each order, and the lists run as long as the
creates.
"""

import secrets
import subprocess

from bench import config, procs
from bench.context import log
from bench.loadgen import wrk
from bench.scenarios.create import create

TITLE = "API create and list: hashed tokens against authtoken's lookup (target 15)"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = True
LEGACY = {"BENCH_LEGACY_TOKENS": "1"}


def run(bench) -> None:
    key = legacy_key(bench)
    legacy = bench.start_web("web-legacy", token=key, **LEGACY)
    servers = {"hashed": (bench.web, bench.token), "legacy": (legacy, key)}
    try:
        rounds = 2 * config.REPS
        for n in range(rounds):
            log(f"{bench.db} round {n + 1}/{rounds}")
            order = ("hashed", "legacy") if n % 2 == 0 else ("legacy", "hashed")
            creates = {side: create(bench, "/api/defects", web=servers[side][0],
                                    token=servers[side][1]) for side in order}  # fmt: skip
            lists = {side: wrk(servers[side][0].base + "/api/defects", seconds=config.SECONDS,
                               token=servers[side][1]) for side in order}  # fmt: skip
            for side in order:
                if refused := creates[side]["status_errors"] + lists[side]["status_errors"]:
                    raise RuntimeError(f"{refused} API requests refused ({side}): a wrong token?")
            bench.record("tokens", {
                "first": order[0],
                "create": creates["hashed"]["rps"] / creates["legacy"]["rps"],
                "list": lists["hashed"]["rps"] / lists["legacy"]["rps"],
                **{f"{side}_create_rps": creates[side]["rps"] for side in order},
                **{f"{side}_list_rps": lists[side]["rps"] for side in order},
                **{f"{side}_web_cpu_ms_per_create": creates[side]["web_cpu_ms_per_create"]
                   for side in order},
            })  # fmt: skip
    finally:
        procs.stop(legacy)


def legacy_key(bench) -> str:
    """A DRF authtoken key for the bench user: authtoken's table migrated (here only),
    and the key written as `drf_create_token` wrote one."""
    from django.db import connection
    from django.utils import timezone

    command = [config.PY, "manage.py", "migrate", "authtoken", "--verbosity", "0"]
    subprocess.run(command, cwd=config.ROOT, env=bench.env | LEGACY, check=True)
    key = secrets.token_hex(20)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM authtoken_token WHERE user_id = %s", [bench.user_id])
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
            [key, timezone.now(), bench.user_id],
        )
    return key
