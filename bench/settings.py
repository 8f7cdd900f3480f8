"""Settings of the benchmark server: the project's own, plus the floor views' URLs.

Everything else (debug off, database, middleware, DRF) comes from the
environment exactly as in production; bench/run.py sets that environment.
"""

import os

from railfleet.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# A second web server of the same run authenticates as before issue #27 (DRF's
# authtoken, bench/legacy_tokens.py): target 15 compares the two.
if os.environ.get("BENCH_LEGACY_TOKENS") == "1":
    INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework.authtoken"]  # noqa: F405
    REST_FRAMEWORK = {
        **REST_FRAMEWORK,  # noqa: F405
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "rest_framework.authentication.BasicAuthentication",
            "bench.legacy_tokens.TokenAuthentication",
            "rest_framework.authentication.SessionAuthentication",
        ],
    }
