"""soak/services.py: which dispatcher exits after a SIGTERM count as unclean; each
destination's counter server."""

import signal
import subprocess
import sys

from soak.faults import COUNTERS
from soak.services import Services, terminated_while_starting
from tests.helpers import ROOT


def _dispatcher_stand_in(tmp_path, log_text: str, code: str) -> subprocess.Popen:
    """A process that writes `log_text` to its log and then runs `code`, as a dispatcher."""
    log = tmp_path / "dispatcher.log"
    log.write_text(log_text)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    proc.log_path = log  # type: ignore[attr-defined]
    return proc


def test_a_dispatcher_killed_by_sigterm_before_it_delivered_stopped_cleanly(tmp_path):
    proc = _dispatcher_stand_in(tmp_path, "", "import time; time.sleep(30)")
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    assert terminated_while_starting(proc)


def test_a_delivering_dispatcher_killed_by_sigterm_did_not(tmp_path):
    started = (
        "2026-12-01 INFO broadcast: Dispatcher x delivering "
        "(built-in destination: http://127.0.0.1:1/)\n"
    )
    proc = _dispatcher_stand_in(tmp_path, started, "import time; time.sleep(30)")
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    assert not terminated_while_starting(proc)


def test_another_exit_before_delivering_is_not_a_clean_stop(tmp_path):
    proc = _dispatcher_stand_in(tmp_path, "", "raise SystemExit(1)")
    proc.wait(10)
    assert not terminated_while_starting(proc)


def test_each_destination_has_its_counter_server_with_its_own_data_file(tmp_path):
    services = Services({"PATH": "/usr/bin"}, tmp_path, "http://127.0.0.1:1/")
    assert [counter.name for counter in services.counters] == list(COUNTERS)
    ports = {counter.port for counter in services.counters}
    datas = {counter.data for counter in services.counters}
    assert len(ports) == len(datas) == len(COUNTERS)
    for counter in services.counters:
        assert counter.url == f"http://127.0.0.1:{counter.port}/"
        assert ["--data", str(counter.data)] == counter.slot.args[-2:]


def test_a_counter_server_given_its_destinations_secret_checks_signatures(tmp_path):
    secret = "whsec_" + "A" * 44
    services = Services({"PATH": "/usr/bin"}, tmp_path, "http://127.0.0.1:1/",
                        secrets={COUNTERS[1]: secret})  # fmt: skip
    builtin, second = services.counters
    assert second.signed and second.slot.env["COUNTER_SIGNING_SECRETS"] == secret
    assert "--allow-env=COUNTER_SIGNING_SECRETS" in second.slot.args
    assert not builtin.signed and "COUNTER_SIGNING_SECRETS" not in builtin.slot.env
    assert not any(arg.startswith("--allow-env") for arg in builtin.slot.args)
