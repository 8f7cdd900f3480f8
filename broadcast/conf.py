"""The dispatcher's settings: `settings.BROADCAST`, read in one place, and its `Config`.

The dictionary mixes numbers, strings and lists, so type checkers see its
values as `object`; each caller states the type it expects of its own key.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

if TYPE_CHECKING:
    from broadcast.signing import Signer


def broadcast_setting(key: str, default: Any = None) -> Any:
    """`settings.BROADCAST[key]`, or `default` when the key is absent."""
    return settings.BROADCAST.get(key, default)


def counter_server_url() -> str:
    """COUNTER_SERVER_URL: the built-in destination's URL; empty, no built-in destination."""
    return settings.COUNTER_SERVER_URL


# Config's fields read from settings.BROADCAST, and their keys there.
SETTINGS_KEYS = {
    "concurrency": "CONCURRENCY",
    "batch_size": "BATCH_SIZE",
    "poll_interval": "POLL_INTERVAL",
    "lease": "LEASE_SECONDS",
    "request_timeout": "REQUEST_TIMEOUT",
    "retry_base": "RETRY_BASE_SECONDS",
    "retry_max": "RETRY_MAX_SECONDS",
    "probe_interval": "BREAKER_PROBE_SECONDS",
    "summary_interval": "SUMMARY_INTERVAL",
    "max_rate": "MAX_RATE",
    "log_successes": "LOG_SUCCESSES",
    "disable_after_hours": "DISABLE_AFTER_HOURS",
}


@dataclass
class Config:
    url: str
    concurrency: int = 64
    batch_size: int = 500
    poll_interval: float = 0.02
    lease: float = 60.0
    request_timeout: float = 10.0
    retry_base: float = 1.0
    retry_max: float = 300.0
    # While a destination looks down, one event is sent to it per this many seconds.
    probe_interval: float = 1.0
    summary_interval: float = 60.0
    # The time stamped in the database (claims, leases, retry schedules) and the
    # source of the retries' jitter: injected by tests to assert schedules exactly.
    clock: Callable[[], datetime] = timezone.now
    rand: Callable[[], float] = random.random
    # Operations (docs/operations.md): webhook signatures (None: unsigned),
    # requests started per second at most (0: unlimited), days delivered events
    # are kept (0: kept until `broadcast_prune`).
    signer: Signer | None = None
    max_rate: float = 0.0
    retention_days: float = 0.0
    # The attempt log keeps successful attempts too (failed ones always).
    log_successes: bool = True
    # A destination failing this long is disabled (broadcast/failing.py); 0: never.
    disable_after_hours: float = 120.0

    def __post_init__(self) -> None:
        # An event waits in the local queue, then for its answer, within its
        # lease; a lease shorter than two request timeouts would let it expire
        # mid-flight and another dispatcher send the event a second time.
        if self.lease < 2 * self.request_timeout:
            raise ValueError(
                f"The lease ({self.lease:g} s) must be at least twice the request timeout "
                f"({self.request_timeout:g} s): set BROADCAST_LEASE_SECONDS accordingly."
            )

    @classmethod
    def from_settings(cls, **overrides: Any) -> Config:
        """Build from settings.COUNTER_SERVER_URL and settings.BROADCAST, then overrides.

        A key missing from settings.BROADCAST leaves the field's default; an
        override of None leaves the setting.
        """
        from broadcast.retention import retention_days  # here: both modules import this one
        from broadcast.signing import Signer

        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {
            name: broadcast_setting(key, defaults[name]) for name, key in SETTINGS_KEYS.items()
        }
        values |= {
            "url": counter_server_url(),
            "signer": Signer.from_settings(),
            "retention_days": retention_days(),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
