"""/api/destinations routes, with and without a trailing slash (as defect/api/urls.py)."""

from django.urls import re_path

from broadcast.api import DestinationDetail, DestinationList, DestinationRotateSecret

urlpatterns = [
    re_path(r"^destinations/?$", DestinationList.as_view(), name="destination-list"),
    re_path(
        r"^destinations/(?P<pk>[^/.]+)/?$", DestinationDetail.as_view(), name="destination-detail"
    ),
    re_path(
        r"^destinations/(?P<pk>[^/.]+)/rotate-secret/?$",
        DestinationRotateSecret.as_view(),
        name="destination-rotate-secret",
    ),
]
