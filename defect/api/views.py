"""Defect endpoints. Views validate (the serializer), call a service (via the
serializer's create/update, or defect_delete) and serialize; the creator is
passed in explicitly from request.user, never read from a thread-local."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated

from defect.api.filters import DefectFilter, DefectFilterBackend
from defect.api.pagination import KeysetPagination
from defect.api.permissions import CreatorMayDelete
from defect.api.serializers import DefectSerializer, ErrorSerializer, ValidationErrorSerializer
from defect.models import Defect
from defect.services import defect_delete
from railfleet.api_errors import BodySizeLimitMixin

BAD_REQUEST = OpenApiResponse(ValidationErrorSerializer, description="Invalid input.")
UNAUTHORIZED = OpenApiResponse(ErrorSerializer, description="No or wrong credentials.")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No defect with this id.")
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="Only the creator may delete a defect.")


class DefectAPIView(BodySizeLimitMixin, generics.GenericAPIView):
    serializer_class = DefectSerializer
    # JSON bodies only: in form data an empty field means "not given", which
    # the schema cannot say; the browsable API offers a JSON form instead.
    parser_classes = [JSONParser]
    permission_classes = [IsAuthenticated, CreatorMayDelete]

    def get_queryset(self):
        return Defect.objects.select_related("user").only(
            "comment", "timestamp", "user", "user__username"
        )


@extend_schema_view(
    get=extend_schema(
        summary="List defects, newest first",
        responses={200: DefectSerializer(many=True), 400: BAD_REQUEST, 401: UNAUTHORIZED},
    ),
    post=extend_schema(
        summary="Create a defect (its creator is the authenticated user)",
        responses={201: DefectSerializer, 400: BAD_REQUEST, 401: UNAUTHORIZED},
    ),
)
class DefectList(DefectAPIView, generics.ListCreateAPIView):
    pagination_class = KeysetPagination
    filterset_class = DefectFilter
    filter_backends = [DefectFilterBackend]
    # Built once and cloned per request (as DRF does with a view's `queryset`):
    # setting up `.values()` and its join shows in the listing's profile
    # (BENCHMARKS.md).
    list_queryset = DefectSerializer.values(Defect.objects.all())

    def get_queryset(self):
        if self.request.method == "GET":
            return self.list_queryset.all()
        return super().get_queryset()

    def perform_create(self, serializer):
        serializer.save(user=self.request.user)


@extend_schema_view(
    get=extend_schema(
        summary="Retrieve a defect",
        responses={200: DefectSerializer, 401: UNAUTHORIZED, 404: NOT_FOUND},
    ),
    put=extend_schema(
        summary="Replace a defect's comment and timestamp (timestamp kept if omitted)",
        responses={200: DefectSerializer, 400: BAD_REQUEST, 401: UNAUTHORIZED, 404: NOT_FOUND},
    ),
    patch=extend_schema(
        summary="Change some of a defect's fields",
        responses={200: DefectSerializer, 400: BAD_REQUEST, 401: UNAUTHORIZED, 404: NOT_FOUND},
    ),
    delete=extend_schema(
        summary="Delete a defect (its creator only)",
        responses={204: None, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND},
    ),
)
class DefectDetail(DefectAPIView, generics.RetrieveUpdateDestroyAPIView):
    def perform_destroy(self, instance):
        """Delete; a defect another deleter took after it was read is a 404, like an unknown id."""
        if not defect_delete(defect=instance):
            raise NotFound(f"No {Defect._meta.object_name} matches the given query.")
