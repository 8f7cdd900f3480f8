"""py-spy during an API create run, broadcast on: one web worker, and the dispatcher.

Not counted in the targets: what bounds targets 4, 8 and 9 under load. The
dispatcher's profile covers its threads (`--threads`), idle ones excluded.
"""

import time

from bench import config, procs
from bench.fixtures import clear_events
from bench.profiles import summarize
from bench.scenarios.create import create, start_dispatcher

TITLE = "profile: web worker and dispatcher under load"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = True


def run(bench) -> None:
    worker = procs.children(bench.web.pid)[0]
    out_web = bench.path("profile-web.txt")
    out_dispatcher = bench.path("profile-dispatcher-load.txt")
    dispatcher = start_dispatcher(bench, bench.counter.url, "profile-load")
    duration = str(int(config.SECONDS))
    try:
        spies = [
            bench.py_spy(out_web, "--pid", str(worker), "--duration", duration, "--nonblocking"),
            bench.py_spy(out_dispatcher, "--pid", str(dispatcher.pid), "--duration", duration,
                         "--threads", "--nonblocking"),
        ]  # fmt: skip
        time.sleep(0.5)  # py-spy attached
        create(bench, "/api/defects")
        for spy in spies:
            spy.wait(60)
            procs.stop(spy)
    finally:
        procs.stop(dispatcher)
        clear_events()
    bench.out["profile_web"] = summarize(out_web)
    bench.out["profile_dispatcher_load"] = summarize(out_dispatcher)
