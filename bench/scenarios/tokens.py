"""API create and list with the hashed tokens against the lookup they replaced (issue
#27: DRF's authtoken keys in clear, as at `c530585`; bench/legacy_tokens.py).

Two web servers over the same database, identical but for the API's token
authentication: the run's own, and a second one started with BENCH_LEGACY_TOKENS=1
(bench/settings.py). Target 15 is the hashed side's rate over the legacy side's: 1
means the tokens cost nothing.

The difference sought (5%) is smaller than the noise of one run on these shared
machines, which comes in bursts of seconds. So a repetition is many short runs
(SHORT_SECONDS), alternated between the servers in both orders (A B, B A, ...), and
its ratio is of the requests each side served over all of its runs: a burst then
slows both sides' runs alike instead of deciding one pair.
"""

import secrets
import subprocess

from bench import config, procs
from bench.loadgen import wrk
from bench.scenarios.create import create

TITLE = "API create and list: hashed tokens against authtoken's lookup (target 15)"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = True
LEGACY = {"BENCH_LEGACY_TOKENS": "1"}


# Short runs per side in one repetition, for the creates and again for the lists.
PAIRS = 10


def run(bench) -> None:
    key = legacy_key(bench)
    legacy = bench.start_web("web-legacy", token=key, **LEGACY)
    servers = {"hashed": (bench.web, bench.token), "legacy": (legacy, key)}

    def api_create(web, token: str) -> dict:
        return create(bench, "/api/defects", web=web, token=token, seconds=config.SHORT_SECONDS)

    def api_list(web, token: str) -> dict:
        return wrk(web.base + "/api/defects", seconds=config.SHORT_SECONDS, token=token)

    try:
        for rep in range(config.REPS):
            bench.log_rep(rep)
            rates = {"create": alternated(servers, api_create),
                     "list": alternated(servers, api_list)}  # fmt: skip
            bench.record("tokens", {
                **{kind: rate["hashed"] / rate["legacy"] for kind, rate in rates.items()},
                **{f"{side}_{kind}_rps": rate[side] for kind, rate in rates.items()
                   for side in rate},
                "pairs": PAIRS,
            })  # fmt: skip
    finally:
        procs.stop(legacy)


def alternated(servers: dict, measure) -> dict[str, float]:
    """Each server's requests per second over PAIRS runs of `measure(web, token)`, the
    servers' order alternating from one pair to the next."""
    totals = {side: {"requests": 0.0, "seconds": 0.0} for side in servers}
    sides = list(servers)
    for n in range(PAIRS):
        for side in sides if n % 2 == 0 else reversed(sides):
            result = measure(*servers[side])
            if result["status_errors"]:
                raise RuntimeError(f"{result['status_errors']} API requests refused ({side}): "
                                   "a wrong token?")  # fmt: skip
            totals[side]["requests"] += result["requests"]
            totals[side]["seconds"] += result["seconds"]
    return {side: total["requests"] / total["seconds"] for side, total in totals.items()}


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
