"""broadcast/conf.py: the dispatcher's Config, from settings.BROADCAST and overrides."""

import pytest

from broadcast.conf import Config, broadcast_setting
from broadcast.signing import new_secret


def test_a_lease_shorter_than_two_timeouts_is_refused():
    with pytest.raises(ValueError, match="twice the request timeout"):
        Config(url="http://127.0.0.1:1/", lease=10, request_timeout=6)


def test_from_settings_reads_each_key_and_keeps_the_default_of_a_missing_one(settings):
    settings.COUNTER_SERVER_URL = "http://counter.test:9000/"
    settings.BROADCAST = {
        "CONCURRENCY": 7,
        "POLL_INTERVAL": 0.5,
        "MAX_RATE": 40.0,
        "RETENTION_DAYS": 3,
        "SIGNING_SECRETS": [new_secret()],
    }
    config = Config.from_settings()
    assert (config.url, config.concurrency, config.poll_interval) == (
        "http://counter.test:9000/", 7, 0.5,
    )  # fmt: skip
    assert (config.max_rate, config.retention_days) == (40.0, 3.0)
    assert config.signer
    assert config.batch_size == 500  # not in settings.BROADCAST: the field's default


def test_from_settings_overrides_win_and_none_leaves_the_setting(settings):
    settings.BROADCAST = {"CONCURRENCY": 7, "BATCH_SIZE": 20}
    config = Config.from_settings(concurrency=3, batch_size=None)
    assert (config.concurrency, config.batch_size) == (3, 20)
    assert not config.signer


def test_broadcast_setting_falls_back_to_its_default(settings):
    settings.BROADCAST = {"CONCURRENCY": 7}
    assert broadcast_setting("CONCURRENCY", 1) == 7
    assert broadcast_setting("BATCH_SIZE", 500) == 500
