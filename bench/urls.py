"""The project's URLs plus the two floor views, served by the same process and settings."""

from django.urls import path

from bench import floor
from railfleet.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("floor/create", floor.create, name="floor-create"),
    path("floor/list", floor.list_200, name="floor-list"),
    *project_urlpatterns,
]
