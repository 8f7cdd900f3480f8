"""Health endpoints for load balancers and orchestrators.

`/health` (liveness) answers 200 as long as the process serves requests; it
touches nothing else, so a database outage never gets web processes restarted.
`/ready` (readiness) answers 200 when the database does, with the broadcast
backlog, and 503 when it does not, so traffic goes to other instances.

Both are plain Django views: no user or login (at most the monitoring
token, below), no DRF throttling, no session, no caching, and nothing in the
body beyond the fields below. Each costs at most four queries (the pending and
failed deliveries' counts, the pause state, one row read by primary key, and
each destination's pending count). A paused broadcast, or a paused or disabled
destination, is reported, not a failure.

The destinations, by name, are listed only to whoever may read the monitoring
data (`may_monitor`: METRICS_TOKEN's bearer, as for /metrics, or anyone in
debug mode without a token): no one else sees a destination through any route.
Everyone else gets the totals, which is all a load balancer needs.
"""

import logging

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from broadcast.control import pause_state
from broadcast.models import Delivery, Destination
from railfleet.metrics import may_monitor
from railfleet.outage import is_connection_failure, mark_logged, note_unavailable

logger = logging.getLogger(__name__)


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers; the broadcast backlog is reported."""
    try:
        backlog = Delivery.objects.backlog()
        state = pause_state()
        broadcast = {
            "pending": backlog.pending,
            "failed": backlog.failed,
            "oldest_pending_age_seconds": round(backlog.oldest_pending_age_seconds, 3),
            "paused": state.paused,
            "paused_reason": state.reason,
        }
        if may_monitor(request):
            broadcast["destinations"] = _destinations()
    except DatabaseError as exc:
        return _unavailable(request, exc)
    return JsonResponse({"database": "ok", "broadcast": broadcast})


def _destinations() -> list[dict]:
    """Each destination's backlog and state, by name. A paused or disabled destination
    does not make the service unready."""
    return [
        {
            "name": destination.name,
            "pending": destination.pending,
            "paused": destination.paused,
            "disabled": not destination.enabled,
        }
        for destination in Destination.objects.with_pending().order_by("name")
    ]


def _unavailable(request: HttpRequest, exc: DatabaseError) -> JsonResponse:
    """503. An unreachable database is logged once per outage, as every other answer's
    (railfleet/outage.py), however often the probes come; another database error each time."""
    if is_connection_failure(exc):
        note_unavailable(request, exc)
    else:
        # The reason goes to the log only (class name: no DSN or host in it).
        logger.warning("Readiness check: database unavailable (%s)", type(exc).__name__)
        mark_logged(request)
    return JsonResponse({"database": "unavailable"}, status=503)
