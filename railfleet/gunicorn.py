"""gunicorn's configuration (`gunicorn -c python:railfleet.gunicorn`): metrics across workers.

The API's request metrics are counted in each worker; prometheus-client's
multiprocess mode keeps them in memory-mapped files in PROMETHEUS_MULTIPROC_DIR
so that a scrape, whichever worker answers it, adds every worker's up (as
django-prometheus documents it). This module:

- sets PROMETHEUS_MULTIPROC_DIR for the web processes only, when the
  environment has not: a fresh temporary directory of this server's own,
  removed at exit (the dispatcher never has it: its metrics are its own,
  broadcast/metrics.py);
- empties the directory when the server starts, so that counts of a previous
  run never add up with this one's;
- marks a dead worker's live gauges gone (`child_exit`); its counters and
  histograms stay counted, as they must.

The other settings stay on gunicorn's command line (Procfile).
"""

import os
import shutil
import tempfile
from pathlib import Path

_OWN_DIRECTORY = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_DIRECTORY:
    # Before the workers import prometheus_client, which reads it at import.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="railfleet-metrics-")


def on_starting(server) -> None:
    """Empty the metrics directory before the first worker starts."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    """A worker exited: drop its live gauges from the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """Remove the directory this module created."""
    if _OWN_DIRECTORY:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
