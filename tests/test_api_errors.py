"""railfleet/api_errors.py: the exception handler (requests: tests/defect/test_api_input.py)."""

from django.core.exceptions import ValidationError as DjangoValidationError

from railfleet.api_errors import exception_handler


def test_a_model_validation_error_becomes_a_400_naming_fields():
    exc = DjangoValidationError({"comment": ["Bad."], "__all__": ["Both bad."]})
    response = exception_handler(exc, {})
    assert response.status_code == 400
    assert response.data == {"comment": ["Bad."], "non_field_errors": ["Both bad."]}


def test_an_unexpected_error_is_a_logged_json_500(caplog):
    response = exception_handler(RuntimeError("boom"), {"view": None})
    assert response.status_code == 500
    assert response.data == {"detail": "Internal server error."}
    assert "boom" in caplog.text
