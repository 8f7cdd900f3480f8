"""The landing page at `/` and the service's name, which the admin shows too."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

SERVICE_NAME = "Railfleet defect service"


def service(request: HttpRequest) -> dict[str, str]:
    """A context processor: every page (the browsable API's too) can say the service's name."""
    return {"service_name": SERVICE_NAME}


def home(request: HttpRequest) -> HttpResponse:
    """Where the admin, the API, its documentation and the health endpoints are (public)."""
    context = {"service_name": SERVICE_NAME, "dev_admin": settings.DEBUG}
    return render(request, "railfleet/home.html", context)
