"""Find the PostgreSQL cluster behind DATABASE_URL, to restart it once mid-run.

Restarting a server is only done when the run may: SOAK_PG_RESTART=1 (CI sets
it; a developer's shared server is never restarted by default), the server is
on this machine, we run as root, and Debian's `pg_lsclusters` lists a cluster on
DATABASE_URL's port. Otherwise the fault is skipped and the reason printed.
"""

import os
import shutil
import subprocess
import time
from urllib.parse import urlsplit


def find_cluster(url: str) -> tuple[tuple[str, str] | None, str]:
    """((version, name), how it was found) or (None, why the restart is skipped)."""
    parts = urlsplit(url)
    port = parts.port or 5432
    if os.environ.get("SOAK_PG_RESTART") != "1":
        return None, "SOAK_PG_RESTART is not 1 (the server may be shared: it is never restarted)"
    if parts.hostname not in ("127.0.0.1", "localhost"):
        return None, f"the server ({parts.hostname}) is not on this machine"
    if os.geteuid() != 0:
        return None, "pg_ctlcluster needs root"
    if shutil.which("pg_lsclusters") is None:
        return None, "pg_lsclusters (Debian's postgresql-common) is not installed"
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
    ).stdout
    for line in listing.splitlines():
        version, name, cluster_port, *_ = line.split()
        if int(cluster_port) == port:
            return (version, name), f"pg_lsclusters lists {version}/{name} on port {port}"
    return None, f"pg_lsclusters lists no cluster on port {port}"


def restart(cluster: tuple[str, str], url: str, timeout: float = 60) -> None:
    """`pg_ctlcluster VERSION NAME restart`, then wait until the server accepts connections."""
    subprocess.run(["pg_ctlcluster", *cluster, "restart"], check=True, timeout=timeout)
    port = str(urlsplit(url).port or 5432)
    deadline = time.monotonic() + timeout
    while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", port]).returncode:
        if time.monotonic() > deadline:
            raise TimeoutError(f"PostgreSQL {cluster} not ready {timeout} s after its restart")
        time.sleep(0.2)
