"""Helpers of the security tests."""

from tests.helpers import basic_auth


def basic(username: str, password: str) -> dict:
    """Test-client keyword arguments for HTTP Basic credentials."""
    return {"HTTP_AUTHORIZATION": basic_auth(username, password)}
