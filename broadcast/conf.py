"""The dispatcher's settings, `settings.BROADCAST`, read in one place.

The dictionary mixes numbers, strings and lists, so type checkers see its
values as `object`; each caller states the type it expects of its own key.
"""

from typing import Any

from django.conf import settings


def broadcast_setting(key: str, default: Any = None) -> Any:
    """`settings.BROADCAST[key]`, or `default` when the key is absent."""
    return settings.BROADCAST.get(key, default)
