"""Helpers of the security tests."""

import base64


def basic(username: str, password: str) -> dict:
    """Test-client keyword arguments for HTTP Basic credentials."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}
