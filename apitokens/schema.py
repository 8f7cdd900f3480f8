"""The OpenAPI schema's name for the Bearer form (drf-spectacular documents the Token form
itself, as `tokenAuth`, from DRF's TokenAuthentication).

Imported by apitokens/authentication.py, which DRF imports wherever the API is
served, rather than at Django's setup: drf-spectacular's plumbing (with requests
and PyYAML) would then be loaded, and held in memory, by every process, the
dispatcher's and every management command's, for nothing."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apitokens.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API token (`rft_...`)."}
