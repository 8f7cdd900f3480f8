"""The time tokens are created, checked and used at.

Everything in this app asks `clock.now()` (looked up on the module at each
call), so a test moves time exactly by replacing `apitokens.clock.now`.
"""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
