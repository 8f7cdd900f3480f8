"""URL routes: the landing page, the admin, the REST API and its documentation."""

from django.contrib import admin
from django.urls import include, path, re_path

from railfleet import health
from railfleet.api_errors import api_not_found
from railfleet.home import home
from railfleet.metrics import metrics_view

# A database outage raised after the view is a 503 too (railfleet/outage.py).
handler500 = "railfleet.outage.server_error"

urlpatterns = [
    path("", home, name="home"),
    # Liveness and readiness: unauthenticated, unthrottled (railfleet/health.py).
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    # Prometheus scrape: Bearer METRICS_TOKEN, or debug mode (railfleet/metrics.py).
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    # /api/defects, /api/schema, /api/docs, /api/auth/ (defect/api/urls.py).
    path("api/", include("defect.api.urls")),
    # /api/tokens: each user's own API tokens (apitokens/urls.py).
    path("api/", include("apitokens.urls")),
    # /api/destinations: where events are delivered, for staff (broadcast/urls.py).
    path("api/", include("broadcast.urls")),
    # Keep last: any other path under /api/ is a JSON 404, not Django's HTML page.
    re_path(r"^api/", api_not_found),
]
