"""py-spy on one web worker during an API create run, broadcast on (not counted in targets)."""

import time

from bench import config, procs
from bench.fixtures import clear_events
from bench.profiles import summarize
from bench.scenarios.create import create

TITLE = "profile: web worker"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = True


def run(bench) -> None:
    worker = procs.children(bench.web.pid)[0]
    out = bench.path("profile-web.txt")
    dispatcher = bench.start_dispatcher(bench.counter.url, "profile-web")
    try:
        spy = bench.py_spy(out, "--pid", str(worker), "--duration", str(int(config.SECONDS)),
                           "--nonblocking")  # fmt: skip
        time.sleep(0.5)  # py-spy attached
        create(bench, "/api/defects")
        spy.wait(60)
        procs.stop(spy)
    finally:
        procs.stop(dispatcher)
        clear_events()
    bench.out["profile_web"] = summarize(out)
