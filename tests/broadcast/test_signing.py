"""Signed deliveries (Standard Webhooks): headers, rotation, bad secrets and the start-up check."""

import base64
import time

import pytest
from django.core.management import call_command
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from broadcast.checks import signing_secrets
from broadcast.signing import Signer, SigningSecretError, new_secret, parse_secrets

BODY = b'{"user": 12, "action": "create"}'
EVENT_ID = "0b7f0b7e-3c1b-4a57-9d6f-8d2c6a1e2f00"


def secret_of(size: int, fill: bytes = b"k") -> str:
    return "whsec_" + base64.b64encode(fill * size).decode()


def signer_for(*secrets: str, now: float | None = None) -> Signer:
    clock = time.time if now is None else (lambda: now)
    return Signer(parse_secrets(list(secrets)), clock=clock)


def test_headers_verify_with_the_standardwebhooks_package():
    secret = new_secret()
    headers = signer_for(secret).headers(EVENT_ID, BODY)

    assert headers["webhook-id"] == EVENT_ID
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(BODY, headers) == {"user": 12, "action": "create"}


def test_header_lines_are_the_headers_as_name_value_lines():
    signer = signer_for(new_secret(), new_secret(), now=1764590000.0)
    expected = [f"{name}: {value}" for name, value in signer.headers(EVENT_ID, BODY).items()]
    assert signer.header_lines(EVENT_ID, BODY) == expected


def test_header_lines_verify_with_the_standardwebhooks_package():
    secret = new_secret()
    lines = signer_for(secret).header_lines(EVENT_ID, BODY)
    headers = dict(line.split(": ", 1) for line in lines)
    assert Webhook(secret).verify(BODY, headers) == {"user": 12, "action": "create"}


def test_the_timestamp_is_the_integer_unix_second_of_the_attempt():
    headers = signer_for(new_secret(), now=1764590000.75).headers(EVENT_ID, BODY)
    assert headers["webhook-timestamp"] == "1764590000"


def test_each_attempt_is_signed_afresh_at_its_own_time():
    now = [1764590000.0]
    signer = Signer(parse_secrets([new_secret()]), clock=lambda: now[0])
    first = signer.headers(EVENT_ID, BODY)
    now[0] += 2
    second = signer.headers(EVENT_ID, BODY)
    assert int(second["webhook-timestamp"]) == int(first["webhook-timestamp"]) + 2
    assert second["webhook-signature"] != first["webhook-signature"]


def test_a_forged_body_or_a_foreign_secret_does_not_verify():
    secret = new_secret()
    headers = signer_for(secret).headers(EVENT_ID, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"user": 13, "action": "create"}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_rotation_signs_with_every_secret_newest_first_and_each_verifies():
    new, old = new_secret(), new_secret()
    headers = signer_for(new, old).headers(EVENT_ID, BODY)

    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    for secret in (new, old):
        assert Webhook(secret).verify(BODY, headers)
    # Newest first: the first value alone verifies with the new secret.
    assert Webhook(new).verify(BODY, {**headers, "webhook-signature": signatures[0]})
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(BODY, {**headers, "webhook-signature": signatures[0]})


def test_without_secrets_nothing_is_signed():
    signer = Signer([])
    assert not signer
    assert signer.headers(EVENT_ID, BODY) == {}
    assert signer.header_lines(EVENT_ID, BODY) == []


def test_from_settings_reads_the_broadcast_setting(settings):
    secret = new_secret()
    settings.BROADCAST = {**settings.BROADCAST, "SIGNING_SECRETS": [secret]}
    headers = Signer.from_settings().headers(EVENT_ID, BODY)
    assert Webhook(secret).verify(BODY, headers)


def test_the_comma_separated_variable_is_read_in_order():
    assert parse_secrets(f" {secret_of(24, b'a')} , {secret_of(32, b'b')} ") == [
        b"a" * 24,
        b"b" * 32,
    ]
    assert parse_secrets("") == []


def test_unpadded_base64_is_accepted():
    unpadded = secret_of(25, b"c").rstrip("=")
    assert parse_secrets([unpadded]) == [b"c" * 25]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["abc" + secret_of(32)[6:]], "entry 1 does not start with 'whsec_'"),
        ([new_secret(), "whsec_not*base64!"], "entry 2 is not valid base64"),
        ([secret_of(23)], "entry 1 decodes to 23 bytes; at least 24"),
        (f"{new_secret()},,{new_secret()}", "entry 2 is empty"),
    ],
)
def test_bad_secrets_are_refused_naming_the_variable_and_the_entry(values, expected):
    with pytest.raises(SigningSecretError) as refused:
        parse_secrets(values)
    message = str(refused.value)
    assert message.startswith("BROADCAST_SIGNING_SECRETS: ")
    assert expected in message


def test_the_error_never_shows_the_secret():
    short = secret_of(20, b"s")
    with pytest.raises(SigningSecretError) as refused:
        parse_secrets([short])
    assert short[6:] not in str(refused.value)
    assert "whsec_c3" not in str(refused.value)


def test_the_system_check_refuses_a_bad_secret(settings):
    bad = secret_of(16)
    settings.BROADCAST = {**settings.BROADCAST, "SIGNING_SECRETS": [new_secret(), bad]}

    (error,) = signing_secrets(None)

    assert error.id == "broadcast.E002"
    assert "BROADCAST_SIGNING_SECRETS: entry 2" in error.msg
    assert bad[6:] not in error.msg


def test_the_system_check_accepts_good_or_no_secrets(settings):
    settings.BROADCAST = {**settings.BROADCAST, "SIGNING_SECRETS": [new_secret(), new_secret()]}
    assert signing_secrets(None) == []
    settings.BROADCAST = {**settings.BROADCAST, "SIGNING_SECRETS": []}
    assert signing_secrets(None) == []


def test_the_broadcast_command_does_not_start_with_a_bad_secret(settings):
    from django.core.management.base import SystemCheckError

    settings.BROADCAST = {**settings.BROADCAST, "SIGNING_SECRETS": [secret_of(8)]}
    with pytest.raises(SystemCheckError, match="BROADCAST_SIGNING_SECRETS: entry 1"):
        call_command("broadcast", once=True, skip_checks=False)


def test_broadcast_secret_prints_a_fresh_valid_secret(capsys):
    call_command("broadcast_secret")
    first = capsys.readouterr().out.strip()
    call_command("broadcast_secret")
    second = capsys.readouterr().out.strip()

    assert first.startswith("whsec_") and first != second
    assert parse_secrets([first]) == [base64.b64decode(first[6:])]
    assert len(base64.b64decode(first[6:])) == 32
