"""A second destination down, slow or overloaded beside a healthy one (target 12).

Per repetition, back to back, five steady runs as bench/scenarios/steady_latency.py
makes them (LATENCY_RATE creations a second for RUN_SECONDS, one dispatcher, a
fresh counter server as the built-in destination): the counter server alone; beside a
second destination (a Destination row, both actions) that is healthy, another counter
server (the control: what a second destination costs when nothing is wrong); then
beside one that is down (a port nothing listens on), slow (answering after 10 s, the
dispatcher's request timeout), or overloaded (503 at once with `Retry-After: 1`, so
that it is tried again every second). Each run's figure is the healthy counter
server's commit-to-arrival; the second destination's attempts are recorded to show
it was really tried. Its dispatcher starts with the second destination there: the
run includes the first failures and the breaker's opening.
"""

from bench import config, procs
from bench.scenarios.steady_latency import steady

TITLE = "a faulty destination beside a healthy one (target 12)"
DATABASES = ("sqlite", "postgresql")
NEEDS_WEB = False
SLOW_SECONDS = 10
# Each run's p99 is judged against the run alone's within 1.5x, on figures of a few
# milliseconds: at 20 a second, 30 s give 600 deliveries, a p99 of the 6 worst rather
# than of the 2 worst of steady_latency's 10 s (whose spread exceeded the 1.5x).
RUN_SECONDS = 30
RETRY_AFTER = 1
FAULTS = {  # name: the faulty server's arguments (None: nothing listens)
    "down": None,
    "slow": ["--delay", str(SLOW_SECONDS)],
    "overloaded": ["--status", "503", "--retry-after", str(RETRY_AFTER)],
}


def run(bench) -> None:
    servers, urls = [], {}
    try:
        second = bench.start_counter("isolation-second")
        servers.append(second)
        urls["healthy"] = second.url
        for name, args in FAULTS.items():
            port = procs.free_port()
            urls[name] = f"http://127.0.0.1:{port}/"
            if args is not None:
                command = [config.PY, "-m", "bench.slow_server", str(port), *args]
                server = procs.start(command, env=bench.env, log=bench.path(f"{name}-server.log"))
                procs.wait_port(port, proc=server)
                servers.append(server)
        for rep in range(config.REPS):
            bench.log_rep(rep)
            alone = steady(bench, rep, name="isolation-alone", seconds=RUN_SECONDS)
            bench.record("isolation_alone", alone)
            for name, url in urls.items():
                result = steady(bench, rep, beside=url, name=f"isolation-{name}",
                                seconds=RUN_SECONDS)  # fmt: skip
                bench.record(f"isolation_{name}", result)
    finally:
        for server in servers:
            procs.stop(server)
