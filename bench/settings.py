"""Settings of the benchmark server: the project's own, plus the floor views' URLs.

Everything else (debug off, database, middleware, DRF) comes from the
environment exactly as in production; bench/run.py sets that environment.
"""

from railfleet.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
