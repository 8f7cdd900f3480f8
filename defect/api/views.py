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
from defect.api.serializers import DefectSerializer, ValidationErrorSerializer
from defect.models import Defect
from defect.services import defect_delete
from railfleet.api import RETRY_AFTER, ErrorSerializer, answers
from railfleet.api import WITH_A_BODY as SHARED_WITH_A_BODY
from railfleet.api_errors import BodySizeLimitMixin

BAD_REQUEST = OpenApiResponse(ValidationErrorSerializer, description="Invalid input.")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No defect with this id.")

# What every operation with a request body may answer: the project's, and this API's 400.
WITH_A_BODY = {**SHARED_WITH_A_BODY, 400: BAD_REQUEST}


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
        parameters=[RETRY_AFTER],
        responses=answers({200: DefectSerializer(many=True), 400: BAD_REQUEST}),
    ),
    post=extend_schema(
        summary="Create a defect (its creator is the authenticated user)",
        parameters=[RETRY_AFTER],
        responses=answers({201: DefectSerializer}, WITH_A_BODY),
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
        parameters=[RETRY_AFTER],
        responses=answers({200: DefectSerializer, 404: NOT_FOUND}),
    ),
    put=extend_schema(
        summary="Replace a defect's comment and timestamp (timestamp kept if omitted)",
        parameters=[RETRY_AFTER],
        responses=answers({200: DefectSerializer, 404: NOT_FOUND}, WITH_A_BODY),
    ),
    patch=extend_schema(
        summary="Change some of a defect's fields",
        parameters=[RETRY_AFTER],
        responses=answers({200: DefectSerializer, 404: NOT_FOUND}, WITH_A_BODY),
    ),
    delete=extend_schema(
        summary="Delete a defect (its creator only)",
        parameters=[RETRY_AFTER],
        responses=answers(
            {204: None, 404: NOT_FOUND},
            {
                403: OpenApiResponse(
                    ErrorSerializer,
                    description="Not the defect's creator (only the creator may delete it), "
                    "or session authentication without its CSRF token.",
                )
            },
        ),
    ),
)
class DefectDetail(DefectAPIView, generics.RetrieveUpdateDestroyAPIView):
    def perform_destroy(self, instance):
        """Delete; a defect another deleter took after it was read is a 404, like an unknown id."""
        if not defect_delete(defect=instance):
            raise NotFound(f"No {Defect._meta.object_name} matches the given query.")
