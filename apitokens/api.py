"""/api/tokens: a user creates, lists and revokes their own API tokens.

Creating one takes the password (HTTP Basic, under the login lockout) or the
admin session, never a token: a leaked token cannot make itself successors.
Listing and revoking take any of the API's credentials, so a client may
revoke the very token it holds. Another user's token is a 404, as an unknown id.
"""

from typing import cast

from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from apitokens.authentication import TokenAuthentication
from apitokens.models import NAME_MAX_LENGTH, ApiToken
from apitokens.selectors import token_list
from apitokens.services import DEFAULT_EXPIRY_DAYS, MAX_EXPIRY_DAYS, token_create, token_revoke
from railfleet.api import RETRY_AFTER, WITH_A_BODY, ErrorSerializer, answers
from railfleet.api_errors import BodySizeLimitMixin


class TokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its text nor its hash."""

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created", "last_used", "expires"]


class TokenCreatedSerializer(TokenSerializer):
    """A new token, with its text: in the answer to its creation only."""

    token = serializers.CharField(help_text="The token's text: shown this once, never again.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=NAME_MAX_LENGTH, help_text='What the token is for, e.g. "CI pipeline".'
    )
    expires_days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        default=DEFAULT_EXPIRY_DAYS,
        help_text=f"Days until it expires, 1 to {MAX_EXPIRY_DAYS} (default {DEFAULT_EXPIRY_DAYS}).",
    )


class TokenCreateErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(required=False, help_text="Set when the body is unreadable.")
    name = serializers.ListField(child=serializers.CharField(), required=False)
    expires_days = serializers.ListField(child=serializers.CharField(), required=False)


class CreateWithPasswordOrSession(BasePermission):
    """POST only with Basic credentials or the session: a token cannot create tokens."""

    message = "Creating a token needs your password (HTTP Basic) or the admin session."

    def has_permission(self, request, view) -> bool:
        return request.method != "POST" or not isinstance(
            request.successful_authenticator, TokenAuthentication
        )


# The security requirements of POST (the schema would otherwise list the token schemes too).
PASSWORD_OR_SESSION: list[dict[str, list[str]]] = [{"basicAuth": []}, {"cookieAuth": []}]


class TokenAPIView(BodySizeLimitMixin, generics.GenericAPIView):
    parser_classes = [JSONParser]
    permission_classes = [IsAuthenticated, CreateWithPasswordOrSession]
    serializer_class = TokenSerializer
    pagination_class = None

    def get_queryset(self):
        # IsAuthenticated has let in only a logged-in user.
        return token_list(user=cast(User, self.request.user))


@extend_schema_view(
    get=extend_schema(
        summary="List your API tokens",
        parameters=[RETRY_AFTER],
        responses=answers({200: TokenSerializer(many=True)}),
    ),
    post=extend_schema(
        summary="Create an API token (its text is in this answer only)",
        request=TokenCreateSerializer,
        auth=PASSWORD_OR_SESSION,  # type: ignore[arg-type]  # hinted as names, used as given
        parameters=[RETRY_AFTER],
        responses=answers(
            {201: TokenCreatedSerializer},
            WITH_A_BODY,
            {
                400: OpenApiResponse(TokenCreateErrorSerializer, description="Invalid input."),
                403: OpenApiResponse(
                    ErrorSerializer,
                    description="Authenticated by a token, or session authentication "
                    "without its CSRF token.",
                ),
            },
        ),
    ),
)
class TokenList(TokenAPIView, generics.ListAPIView):
    def post(self, request, *args, **kwargs):
        serializer = TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, text = token_create(user=cast(User, request.user), **serializer.validated_data)
        # The text's only copy: this answer (TokenCreatedSerializer in the schema), never cached.
        body = {**TokenSerializer(token).data, "token": text}
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


@extend_schema_view(
    delete=extend_schema(
        summary="Revoke one of your API tokens",
        parameters=[RETRY_AFTER],
        responses=answers(
            {
                204: None,
                404: OpenApiResponse(ErrorSerializer, description="None of yours has this id."),
            }
        ),
    ),
)
class TokenDetail(TokenAPIView, generics.DestroyAPIView):
    def perform_destroy(self, instance: ApiToken) -> None:
        token_revoke(token=instance)
