"""soak/services.py: which dispatcher exits after a SIGTERM count as unclean."""

import signal
import subprocess
import sys

from soak.services import terminated_while_starting
from tests.helpers import ROOT


def _dispatcher_stand_in(tmp_path, log_text: str, code: str) -> subprocess.Popen:
    """A process that writes `log_text` to its log and then runs `code`, as a dispatcher."""
    log = tmp_path / "dispatcher.log"
    log.write_text(log_text)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    proc.log_path = log
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
