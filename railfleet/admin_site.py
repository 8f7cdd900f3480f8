"""The admin site: the service's name, and its own apps before the housekeeping.

Django lists the admin's apps alphabetically, which put the token, lockout
and account tables above Defects, the thing a rail engineer comes for. This
site lists the service's apps first, in DOMAIN_APPS' order, then every other
app (accounts, tokens, the login lockout: housekeeping) alphabetically, so an
app added later falls in with the housekeeping by itself. `AdminSite.get_app_list`
is the documented place for this; railfleet/apps.py makes this site the default.
"""

from django.contrib import admin

from railfleet.home import SERVICE_NAME

# App labels, in the order the admin's index lists them.
DOMAIN_APPS = ["defect", "broadcast"]


class RailfleetAdminSite(admin.AdminSite):
    site_header = SERVICE_NAME
    site_title = SERVICE_NAME
    index_title = "Defects, broadcast events and accounts"
    # The app list beside every page took a quarter of a 1280 px screen from
    # the lists; the breadcrumbs and the index lead to every page already.
    enable_nav_sidebar = False

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        return sorted(apps, key=domain_first)  # stable: the rest stays alphabetical


def domain_first(app: dict) -> int:
    """The app's place in DOMAIN_APPS; any other app after them."""
    label = app["app_label"]
    return DOMAIN_APPS.index(label) if label in DOMAIN_APPS else len(DOMAIN_APPS)
