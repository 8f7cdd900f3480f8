"""/api/destinations routes, with and without a trailing slash (as defect/api/urls.py): the
destinations (broadcast/api.py), and each one's delivery log (broadcast/deliveries_api.py)."""

from django.urls import re_path

from broadcast.api import DestinationDetail, DestinationList, DestinationRotateSecret
from broadcast.deliveries_api import AttemptList, DeliveryList, DeliveryResend, DestinationReplay

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
    re_path(
        r"^destinations/(?P<pk>[^/.]+)/deliveries/?$",
        DeliveryList.as_view(),
        name="destination-deliveries",
    ),
    re_path(
        r"^destinations/(?P<pk>[^/.]+)/deliveries/(?P<delivery_id>[^/.]+)/resend/?$",
        DeliveryResend.as_view(),
        name="destination-delivery-resend",
    ),
    re_path(
        r"^destinations/(?P<pk>[^/.]+)/attempts/?$",
        AttemptList.as_view(),
        name="destination-attempts",
    ),
    re_path(
        r"^destinations/(?P<pk>[^/.]+)/replay/?$",
        DestinationReplay.as_view(),
        name="destination-replay",
    ),
]
