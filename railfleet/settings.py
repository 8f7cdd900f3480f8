"""Settings of the Railfleet defect service, read from the environment.

Development needs no environment at all (`python manage.py runserver` works as
the brief's setup does); production sets DJANGO_DEBUG=0 and a real
DJANGO_SECRET_KEY. README.md lists the variables, docs/production.md the rest.
"""

import os
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from railfleet.database import database_config
from railfleet.env import env_bool, env_float, env_int, env_list

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", default=True)

# A development-only key: refused as soon as debug is off.
_DEV_SECRET_KEY = "django-insecure-railfleet-development-only"  # noqa: S105
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off "
            '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(50))").'
        )
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "railfleet.apps.RailfleetAdminConfig",  # django.contrib.admin, the service's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "railfleet.apps.LoginLockoutConfig",  # django-axes (railfleet/security.py)
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "defect",
    "broadcast",
    # Hashed API tokens; replaces DRF's authtoken, whose clear-text keys its
    # migration 0002 hashed in place.
    "apitokens",
]

MIDDLEWARE = [
    # First: counts and times every /api/ request with its final status (railfleet/metrics.py).
    "railfleet.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # An unreachable database: 503 with Retry-After, logged once (railfleet/outage.py).
    "railfleet.outage.DatabaseOutageMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a locked-out login into its 429 answer (railfleet/security.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "railfleet.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The landing page (railfleet/home.py) and the browsable API's under our name.
        "DIRS": [BASE_DIR / "railfleet" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "railfleet.home.service",
            ],
        },
    },
]

WSGI_APPLICATION = "railfleet.wsgi.application"
ASGI_APPLICATION = "railfleet.asgi.application"

DATABASES = {"default": database_config(os.environ.get("DATABASE_URL"), BASE_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The lockout check first: a locked-out username never reaches the password check.
AUTHENTICATION_BACKENDS = [
    "railfleet.security.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# The admin shows times in this zone, named with each (railfleet/formats/);
# the API always answers in UTC.
TIME_ZONE = "UTC"
FORMAT_MODULE_PATH = ["railfleet.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Request bodies above 1 MiB are refused (413 under /api/).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# --- Security (production) --------------------------------------------------
# HTTPS settings are off by default so that a debug-off server still answers
# plain HTTP on 127.0.0.1; a deployment behind a TLS proxy switches them on.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
if env_bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Load balancers probe the health endpoints over plain HTTP behind the TLS proxy.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]

# GET /metrics (railfleet/metrics.py): with a token, only `Authorization: Bearer
# <token>`; without one, served in debug mode only.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# Login lockout (django-axes): 10 failures for one username within 15 minutes
# lock that username for 15 minutes, whatever the client's address; the
# counts live in the database, so every web process shares them.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "railfleet.security.lockout_response"
# W006 warns that locking by username alone lets an attacker rotate user agents
# or cookies; those are not lockout parameters here, so there is nothing to rotate.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# Per-process memory cache: it holds the API throttle counters. With several
# web processes each counts on its own (see docs/production.md, Deploying).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    # Basic first: an anonymous request then gets 401 with a WWW-Authenticate
    # header (DRF takes the header from the first class), never a bare 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.BasicAuthentication",
        "apitokens.authentication.TokenAuthentication",
        "apitokens.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "railfleet.api_errors.exception_handler",
    # Per user (per address for anonymous callers); 429 with Retry-After.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("API_THROTTLE_RATE", "100/second"),
        "anon": os.environ.get("API_THROTTLE_RATE", "100/second"),
    },
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Railfleet defect service API",
    "DESCRIPTION": (
        "Record defects on rail vehicles. Every creation and deletion is broadcast "
        "to the counter server."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Document /api/defects, not /api/defects/ (both work, see defect/api/urls.py).
    "PREPROCESSING_HOOKS": ["railfleet.api_schema.unslashed_paths"],
}

# --- Broadcast (counter server notification) ---------------------------------
COUNTER_SERVER_URL = os.environ.get("COUNTER_SERVER_URL", "http://127.0.0.1:8888/")
BROADCAST = {
    "REQUEST_TIMEOUT": env_float("BROADCAST_REQUEST_TIMEOUT", 10.0),
    "CONCURRENCY": env_int("BROADCAST_CONCURRENCY", 64),
    "BATCH_SIZE": env_int("BROADCAST_BATCH_SIZE", 500),
    "POLL_INTERVAL": env_float("BROADCAST_POLL_INTERVAL", 0.02),
    "LEASE_SECONDS": env_float("BROADCAST_LEASE_SECONDS", 60.0),
    "RETRY_BASE_SECONDS": env_float("BROADCAST_RETRY_BASE_SECONDS", 1.0),
    "RETRY_MAX_SECONDS": env_float("BROADCAST_RETRY_MAX_SECONDS", 300.0),
    "BREAKER_PROBE_SECONDS": env_float("BROADCAST_BREAKER_PROBE_SECONDS", 1.0),
    "SUMMARY_INTERVAL": env_float("BROADCAST_SUMMARY_INTERVAL", 60.0),
    # The dispatcher's own /metrics (broadcast/metrics.py): unset port, none.
    "METRICS_PORT": env_int("BROADCAST_METRICS_PORT", None),
    "METRICS_ADDRESS": os.environ.get("BROADCAST_METRICS_ADDRESS", "127.0.0.1"),
    # Standard Webhooks secrets, newest first (checked at start: broadcast/checks.py).
    "SIGNING_SECRETS": env_list("BROADCAST_SIGNING_SECRETS", default=[]),
    # The built-in destination's deliveries per second, from every dispatcher together,
    # when its own max_rate is 0; 0: unlimited (broadcast/ratelimit.py).
    "MAX_RATE": env_float("BROADCAST_MAX_RATE", 0.0),
    # Delivered events older than this are deleted; 0 keeps all (broadcast/retention.py).
    "RETENTION_DAYS": env_float("BROADCAST_RETENTION_DAYS", 7.0),
    # Destinations (broadcast/destinations.py): how many at most, and how long a
    # rotated secret keeps signing beside its successor.
    "MAX_DESTINATIONS": env_int("BROADCAST_MAX_DESTINATIONS", 50),
    "SECRET_OVERLAP_HOURS": env_float("BROADCAST_SECRET_OVERLAP_HOURS", 24.0),
    # The attempt log (docs/operations.md) keeps successful attempts too, or failures only.
    "LOG_SUCCESSES": env_bool("BROADCAST_LOG_SUCCESSES", default=True),
    # Failed deliveries' attempts are deleted after this (broadcast/retention.py).
    "FAILED_RETENTION_DAYS": env_float("BROADCAST_FAILED_RETENTION_DAYS", 30.0),
    # A destination whose every attempt failed for this long (10 times at least) is
    # disabled (0: never), and announced to ALERT_URL if set (broadcast/failing.py).
    "DISABLE_AFTER_HOURS": env_float("BROADCAST_DISABLE_AFTER_HOURS", 120.0),
    "ALERT_URL": os.environ.get("BROADCAST_ALERT_URL", ""),
    # The most deliveries one POST /api/destinations/<id>/replay re-queues (broadcast/replay.py).
    "REPLAY_MAX": env_int("BROADCAST_REPLAY_MAX", 100_000),
}

# --- Logging ----------------------------------------------------------------
# Every line goes through the root logger's one handler, in one format. Django's
# own defaults (django.utils.log.DEFAULT_LOGGING) give the "django" logger a
# console handler of its own in debug mode, so each request warning came out
# twice, and "django.server" (runserver's request lines) a format of its own:
# naming both loggers here removes their handlers, and they propagate to root.
# "django.request" keeps only errors (5xx, with their traceback): its warnings
# ("Bad Request: /api/defects" for every 4xx) repeat what the request line of
# runserver or of gunicorn's access log already says, with the status. Its errors
# leave out the answers logged already (a database outage is logged once, not per
# request: railfleet/outage.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "filters": {"answer_logged": {"()": "railfleet.outage.AnswerLoggedFilter"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        "django.request": {"level": "ERROR", "filters": ["answer_logged"]},
        "django.db.backends": {"level": "WARNING"},
        "axes.apps": {"level": "WARNING"},  # its start-up banner, in every command
    },
}
