"""JSON errors for the API: every failure under /api/ is a JSON body, never a traceback.

DRF's own handler covers its exceptions (validation, authentication, 404, 405,
415...). This one adds what Django raises below DRF: a model ValidationError
(the services call full_clean) becomes a 400 naming the fields, a body over
DATA_UPLOAD_MAX_MEMORY_SIZE a 413, other suspicious requests a 400, and
anything unexpected a logged JSON 500 (also in debug mode, where Django would
otherwise answer with its HTML technical page).

An anonymous browser is the exception: a GET that DRF's content negotiation
answers with the browsable API (the client asked for HTML) is sent to the
API's login page and back, rather than to the 401 whose `WWW-Authenticate:
Basic` makes a browser pop its own password box. Scripts asking for JSON (or
anything) keep the 401.
"""

import logging

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from railfleet.outage import is_connection_failure

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


# For API views: refuse a body over DATA_UPLOAD_MAX_MEMORY_SIZE before anything
# reads it. DRF's JSON parser reads the request stream directly, past Django's
# own check of that setting (which guards only request.body and form data).
# (No class docstring: drf-spectacular would take it as every view's description.)
class BodySizeLimitMixin:
    def initial(self, request, *args, **kwargs):
        """A 413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE, before it is read."""
        try:
            length = int(request.headers.get("content-length") or 0)
        except ValueError:
            length = 0
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            raise PayloadTooLarge(f"Request body too large: the limit is {limit} bytes.")
        super().initial(request, *args, **kwargs)  # type: ignore[misc]


def validation_error_from_django(exc: DjangoValidationError) -> exceptions.ValidationError:
    """The DRF equivalent of a model ValidationError, its `__all__` key renamed."""
    detail = as_serializer_error(exc)
    if NON_FIELD_ERRORS in detail:
        detail[api_settings.NON_FIELD_ERRORS_KEY] = detail.pop(NON_FIELD_ERRORS)
    return exceptions.ValidationError(detail)


def exception_handler(exc, context):
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: DRF's handler, extended as the module says."""
    if is_connection_failure(exc):
        return None  # DRF re-raises it: railfleet/outage.py answers 503, logged once
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, DjangoValidationError):
        exc = validation_error_from_django(exc)
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError(str(exc) or "Bad request.")
    request = context.get("request")
    if isinstance(exc, exceptions.NotAuthenticated) and wants_browsable_api(request):
        return redirect_to_login(request.get_full_path(), reverse("rest_framework:login"))
    response = drf_exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        logger.error("Unhandled error in %s", type(view).__name__, exc_info=exc)
        response = Response(
            {"detail": "Internal server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
    return response


def wants_browsable_api(request) -> bool:
    """A GET (or HEAD) that DRF's content negotiation gave the browsable API: a browser."""
    renderer = getattr(request, "accepted_renderer", None)
    return request.method in ("GET", "HEAD") and isinstance(renderer, BrowsableAPIRenderer)


# A plain view: no CSRF check, so that a POST to an unknown path is a 404, not an HTML 403.
@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Any other path under /api/: a JSON 404 (Django's would be HTML, in debug a debug page)."""
    return JsonResponse({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
