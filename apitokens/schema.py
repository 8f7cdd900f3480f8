"""The OpenAPI schema's name for the Bearer form (drf-spectacular documents the Token form
itself, as `tokenAuth`, from DRF's TokenAuthentication)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apitokens.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API token (`rft_...`)."}
