"""WSGI entry point (gunicorn railfleet.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "railfleet.settings")

application = get_wsgi_application()
