"""API routes. Each path answers with and without a trailing slash, with no redirect.

An id that is not a number is a JSON 404 (`[^/.]+` is also what tells
drf-spectacular to document the id as the model's integer primary key).
"""

from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from defect.api.views import DefectDetail, DefectList

# The browsable API's log in and out: DRF's `rest_framework.urls`, in its namespace (which
# the browsable API's links name), each path also without its slash. Of two paths of one
# name, reverse() gives the last: the links and the login redirect keep DRF's slash.
login = auth_views.LoginView.as_view(template_name="rest_framework/login.html")
logout = auth_views.LogoutView.as_view()
auth_urls = [
    path("login", login, name="login"),
    path("login/", login, name="login"),
    path("logout", logout, name="logout"),
    path("logout/", logout, name="logout"),
]

urlpatterns = [
    re_path(r"^defects/?$", DefectList.as_view(), name="defect-list"),
    re_path(r"^defects/(?P<pk>[^/.]+)/?$", DefectDetail.as_view(), name="defect-detail"),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="api-schema"),
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Log in and out for the browsable API (the admin's session works too).
    path("auth/", include((auth_urls, "rest_framework"))),
]
