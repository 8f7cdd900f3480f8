"""Login lockout (django-axes): 10 failures for one username lock it for 15 minutes.

Axes watches every `django.contrib.auth.authenticate()` call that carries the
HTTP request: the admin login form and DRF's Basic authentication both do.
A locked-out username is refused even with the right password, with HTTP 429,
a Retry-After header and a clear message (JSON under /api/, text elsewhere).
Other usernames are not affected.
"""

from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

LOCKOUT_MESSAGE = (
    "Too many failed login attempts for this username: it is locked for {minutes} minutes. "
    "Try again later."
)


class LoginLockoutBackend(AxesStandaloneBackend):
    """Axes' lockout check, for authentications that come with an HTTP request.

    A call without a request (code, management commands, the test client's
    `login()`) cannot come from a network attacker; stock axes raises on it,
    this backend lets the next backend decide instead.
    """

    def authenticate(self, request: HttpRequest | None, username=None, password=None, **kwargs):
        if request is None:
            return None
        try:
            return super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            # DRF authenticates with its own Request wrapping Django's; axes flags
            # the wrapper, but AxesMiddleware looks at Django's request.
            django_request: Any = getattr(request, "_request", request)
            django_request.axes_locked_out = True
            raise


def _cool_off_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    """The answer to a locked-out login (AXES_LOCKOUT_CALLABLE)."""
    seconds = _cool_off_seconds()
    message = LOCKOUT_MESSAGE.format(minutes=seconds // 60)
    headers = {"Retry-After": str(seconds)}
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message, "code": "locked_out"}, status=429, headers=headers)
    return HttpResponse(
        message, status=429, content_type="text/plain; charset=utf-8", headers=headers
    )
