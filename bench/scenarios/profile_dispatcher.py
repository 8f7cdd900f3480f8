"""py-spy on one dispatcher draining PROFILE_EVENTS events (not counted in the targets)."""

from bench import config, procs
from bench.fixtures import add_pending_events, clear_events
from bench.profiles import summarize

TITLE = "profile: dispatcher"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = False


def run(bench) -> None:
    clear_events()
    add_pending_events(config.PROFILE_EVENTS)
    counter = bench.start_counter("counter-profile")
    out = bench.path("profile-dispatcher.txt")
    try:
        env = bench.dispatcher_env(counter.url, "profile")
        spy = bench.py_spy(out, "--threads", "--", config.PY, "manage.py", "broadcast", "--once",
                           env=env)  # fmt: skip
        spy.wait(300)
        procs.stop(spy)
    finally:
        procs.stop(counter)
        clear_events()
    bench.out["profile_dispatcher"] = summarize(out)
