"""The Defect: a comment on a vehicle's fault, who reported it and when."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models, transaction
from django.utils import timezone
from django.utils.text import Truncator

from defect.events import defects_created

COMMENT_MAX_LENGTH = 10_000


class DefectQuerySet(models.QuerySet):
    def newest_first(self) -> "DefectQuerySet":
        """Order as the listing index serves: newest timestamp first, then highest id."""
        return self.order_by("-timestamp", "-id")

    def bulk_create(self, objs, *args, **kwargs):
        """Insert many defects and their broadcast events in one transaction.

        `bulk_create` sends no post_save signal, so the events are written here.
        Conflict handling is refused: with it the database may skip rows without
        saying which, and an event would be invented for a defect never created.
        """
        if kwargs.get("ignore_conflicts") or kwargs.get("update_conflicts"):
            raise ValueError(
                "Defect.objects.bulk_create() does not support ignore_conflicts or "
                "update_conflicts: the broadcast needs to know which rows were created."
            )
        with transaction.atomic(using=self.db, savepoint=False):
            created = super().bulk_create(objs, *args, **kwargs)
            defects_created(created, using=self.db)
        return created


class Defect(models.Model):
    # TextField's max_length only sizes form widgets; the validator enforces it.
    comment = models.TextField(
        max_length=COMMENT_MAX_LENGTH, validators=[MaxLengthValidator(COMMENT_MAX_LENGTH)]
    )
    timestamp = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="defects",
        help_text="Who reported the defect; set automatically to its creator.",
    )

    objects = DefectQuerySet.as_manager()

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            # Serves the newest-first listing and its keyset pagination.
            models.Index(
                models.F("timestamp").desc(), models.F("id").desc(), name="defect_newest_idx"
            ),
            # Serves the same listing filtered by one user.
            models.Index(
                "user",
                models.F("timestamp").desc(),
                models.F("id").desc(),
                name="defect_user_newest_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(comment=""), name="defect_comment_not_blank"
            ),
        ]

    def __str__(self) -> str:
        return Truncator(self.comment).chars(60)

    def save(self, *args, **kwargs) -> None:
        """Save the defect and, for a new one, its broadcast event, atomically.

        A defect without a user is refused with a ValidationError naming the
        field, before the database would answer with an IntegrityError.
        """
        if self.user_id is None:
            raise ValidationError({"user": "A defect must have the user who creates it."})
        if not (self.comment or "").strip():
            raise ValidationError({"comment": "A defect needs a comment."})
        # The post_save receiver writes the event; one transaction holds both.
        with transaction.atomic(using=kwargs.get("using"), savepoint=False):
            super().save(*args, **kwargs)
