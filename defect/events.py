"""Turn every creation and deletion of a defect into a broadcast event.

Receivers on the model, not calls in the services, because a defect can also
come or go through paths no service sees: the admin's bulk delete,
`QuerySet.delete()`, and the cascade when a user is deleted, which reach the
model only through Django's delete collector and its post_delete signal.
Each receiver runs inside the transaction of the change (Defect.save() and the
delete collector are atomic; bulk_create is wrapped in DefectQuerySet), so the
event commits or rolls back with it. No receiver does network I/O: the
broadcast dispatcher sends the events later.

A deletion is broadcast only for a row its own transaction deleted. Two
deleters can take the same defect at once (an API DELETE and the admin's bulk
delete, a QuerySet.delete() and a user's cascade): both collect the instance
before either transaction runs, the second DELETE then removes no row, yet
Django's delete collector sends post_delete for every instance it collected,
whatever the row count. So `defect_deleting` (pre_delete, inside the
collector's transaction, before any DELETE) re-reads each row with a lock:
`select_for_update()` on PostgreSQL, which waits for a concurrent deleter to
end and then sees the row gone; on SQLite the transaction is IMMEDIATE and
already holds the database's write lock, so the plain read (Django drops FOR
UPDATE there) sees the committed state and nobody can delete the row before
this transaction ends. It marks the instance with what it found, and
`defect_deleted` (post_delete) writes the event only for a row it found.

It costs one indexed SELECT per deleted defect, beside the event's INSERT per
defect that post_delete already makes. pre_delete receives the instances one
by one and never the collector, so locking a whole batch in one query would
mean re-implementing QuerySet.delete() and still miss the cascades; the
collector sorts its instances by pk, so concurrent deletes take their
defects' row locks in the same order and do not deadlock over them.

This module is the one home of the event writing, and it does not import
defect.models (the receivers name their sender "defect.Defect"), so that the
model layer can import it for bulk_create with no import circle.
"""

import datetime
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver
from django.utils import timezone

from broadcast.services import event_enqueue, events_enqueue

if TYPE_CHECKING:
    from defect.models import Defect

SENDER = "defect.Defect"

# Set on an instance by defect_deleting: whether its row was there, locked, before the DELETE.
ROW_FOUND = "_defect_row_found_for_delete"

CREATE = "create"
DELETE = "delete"


# The Standard Webhooks event type of each action (the `event` format's `type`).
EVENT_TYPES = {CREATE: "defect.created", DELETE: "defect.deleted"}


def defect_event(defect: "Defect", action: str) -> dict:
    """The counter server's payload for `action` on `defect` (the `counter` format)."""
    return {"user": defect.user_id, "action": action}


def defect_envelope(defect: "Defect", action: str, *, at: datetime.datetime) -> dict:
    """The `event` format's body for `action` on `defect` at `at`: a Standard Webhooks
    envelope, the defect as the API shows it (a deletion's as it was)."""
    return {
        "type": EVENT_TYPES[action],
        "timestamp": _iso(at),
        "data": {
            "id": defect.pk,
            "user": defect.user_id,
            "comment": defect.comment,
            "timestamp": _iso(defect.timestamp),
        },
    }


def _iso(at: datetime.datetime) -> str:
    """ISO 8601 in UTC with a "Z", as the API writes times."""
    return at.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def enqueue(defect: "Defect", action: str, *, using: str) -> None:
    """Write the event of `action` on `defect`, in both formats, and its deliveries."""
    event_enqueue(
        payload=defect_event(defect, action),
        action=action,
        envelope=defect_envelope(defect, action, at=timezone.now()),
        subject=defect.pk,
        using=using,
    )


@receiver(post_save, sender=SENDER, dispatch_uid="defect_created_event")
def defect_saved(sender, instance: "Defect", created: bool, raw: bool, using: str, **kwargs):
    """A new defect: enqueue its creation (fixture loading, `raw`, is not a creation)."""
    if created and not raw:
        enqueue(instance, CREATE, using=using)


@receiver(pre_delete, sender=SENDER, dispatch_uid="defect_deleting_lock")
def defect_deleting(sender, instance: "Defect", using: str, **kwargs):
    """Lock the row about to be deleted and note whether it is still there (see above)."""
    row = sender._base_manager.using(using).select_for_update().filter(pk=instance.pk)
    setattr(instance, ROW_FOUND, row.exists())


@receiver(post_delete, sender=SENDER, dispatch_uid="defect_deleted_event")
def defect_deleted(sender, instance: "Defect", using: str, **kwargs):
    """A deleted defect (one by one, in bulk, or by cascade): enqueue its deletion.

    Only when defect_deleting found its row: a row another transaction deleted
    first was not deleted here, and its event is that transaction's.
    """
    if instance.__dict__.pop(ROW_FOUND, False):
        enqueue(instance, DELETE, using=using)


def defects_created(defects: Iterable["Defect"], *, using: str) -> None:
    """Enqueue the creation of defects inserted by bulk_create (no signal is sent)."""
    defects = list(defects)
    at = timezone.now()
    events_enqueue(
        payloads=[defect_event(d, CREATE) for d in defects],
        action=CREATE,
        envelopes=[defect_envelope(d, CREATE, at=at) for d in defects],
        subjects=[d.pk for d in defects],
        using=using,
    )
