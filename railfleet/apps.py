"""App configurations the project chooses for third-party apps (INSTALLED_APPS)."""

from axes.apps import AppConfig as AxesConfig
from django.contrib.admin.apps import AdminConfig


class RailfleetAdminConfig(AdminConfig):
    """Django's admin, with the service's site as `admin.site` (railfleet/admin_site.py)."""

    default_site = "railfleet.admin_site.RailfleetAdminSite"


class LoginLockoutConfig(AxesConfig):
    """django-axes under the name an operator knows it by (the admin showed "AXES")."""

    verbose_name = "Login lockout"
