"""Write operations on defects: the one place the API and the admin call.

Both create, update and delete a defect through these functions (the admin's
bulk "delete selected" goes through QuerySet.delete(), whose events the same
receivers write) and both ask `can_delete`.

The creator is always passed in explicitly (never read from a thread-local
"current request"); the broadcast event is written by the model layer in the
same transaction (see defect/events.py).
"""

import datetime
from typing import TYPE_CHECKING

from django.utils import timezone

from defect.models import Defect

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def defect_create(
    *, user: "User", comment: str, timestamp: datetime.datetime | None = None
) -> Defect:
    """Create a defect reported by `user`; its creation is broadcast.

    Validation runs before any transaction opens; Defect.save() then writes the
    defect and its event in one short transaction (on SQLite, the write lock is
    held for the two INSERTs only).
    """
    defect = Defect(user=user, comment=comment, timestamp=timestamp or timezone.now())
    _validate(defect)
    defect.save(force_insert=True)
    return defect


def defect_update(
    *, defect: Defect, comment: str | None = None, timestamp: datetime.datetime | None = None
) -> Defect:
    """Change a defect's comment and/or timestamp. The creator never changes."""
    fields = []
    if comment is not None:
        defect.comment = comment
        fields.append("comment")
    if timestamp is not None:
        defect.timestamp = timestamp
        fields.append("timestamp")
    if fields:
        _validate(defect)
        defect.save(update_fields=fields)
    return defect


def _validate(defect: Defect) -> None:
    """Field validation (length...) without a database round trip.

    The user is an object in hand, not an id to look up, and the not-blank rule
    is checked by Defect.save() and enforced by the database's constraint, so
    full_clean's two queries (user exists, constraint holds) would buy nothing.
    """
    defect.full_clean(exclude=["user"], validate_constraints=False)


def defect_delete(*, defect: Defect) -> int:
    """Delete a defect; its deletion is broadcast (Django's delete is atomic).

    Returns the number of defects deleted: 1, or 0 when another deleter took
    the row first (after `defect` was read), in which case no event is written
    here either (defect/events.py).
    """
    _, per_model = defect.delete()
    return per_model.get(Defect._meta.label, 0)


def can_delete(
    *, user: "User | AnonymousUser", defect: Defect, superuser_may: bool = False
) -> bool:
    """The delete rule, the one place it is decided: only a defect's creator may delete it.

    `superuser_may` is the admin's exception (there a superuser may delete any
    defect); the API passes nothing, so it has no exception.
    """
    if superuser_may and user.is_superuser:
        return True
    return defect.user_id == user.pk
