"""Turn every creation and deletion of a defect into a broadcast event.

Receivers on the model, not calls in the services, because a defect can also
come or go through paths no service sees: the admin's bulk delete,
`QuerySet.delete()`, and the cascade when a user is deleted, which reach the
model only through Django's delete collector and its post_delete signal.
Each receiver runs inside the transaction of the change (Defect.save() and the
delete collector are atomic; bulk_create is wrapped in DefectQuerySet), so the
event commits or rolls back with it. No receiver does network I/O: the
broadcast dispatcher sends the events later.

This module is the one home of the event writing, and it does not import
defect.models (the receivers name their sender "defect.Defect"), so that the
model layer can import it for bulk_create with no import circle.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from broadcast.services import event_enqueue, events_enqueue

if TYPE_CHECKING:
    from defect.models import Defect

SENDER = "defect.Defect"

CREATE = "create"
DELETE = "delete"


def defect_event(defect: "Defect", action: str) -> dict:
    """The counter server's payload for `action` on `defect`."""
    return {"user": defect.user_id, "action": action}


@receiver(post_save, sender=SENDER, dispatch_uid="defect_created_event")
def defect_saved(sender, instance: "Defect", created: bool, raw: bool, using: str, **kwargs):
    """A new defect: enqueue its creation (fixture loading, `raw`, is not a creation)."""
    if created and not raw:
        event_enqueue(payload=defect_event(instance, CREATE), using=using)


@receiver(post_delete, sender=SENDER, dispatch_uid="defect_deleted_event")
def defect_deleted(sender, instance: "Defect", using: str, **kwargs):
    """A deleted defect (one by one, in bulk, or by cascade): enqueue its deletion."""
    event_enqueue(payload=defect_event(instance, DELETE), using=using)


def defects_created(defects: Iterable["Defect"], *, using: str) -> None:
    """Enqueue the creation of defects inserted by bulk_create (no signal is sent)."""
    events_enqueue(payloads=[defect_event(d, CREATE) for d in defects], using=using)
