from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BroadcastConfig(AppConfig):
    name = "broadcast"
    verbose_name = "Broadcast to destinations"

    def ready(self) -> None:
        from broadcast import checks  # noqa: F401 - registers the system checks

        post_migrate.connect(builtin_destination_after_migrate, sender=self)


def builtin_destination_after_migrate(sender, using: str, apps=None, **kwargs) -> None:
    """After `migrate` (and a test database's flush): the built-in destination follows
    COUNTER_SERVER_URL (broadcast/destinations.py).

    Not when the destinations' table is not there: a migration back to before it.
    """
    try:
        if apps is not None:
            apps.get_model("broadcast", "Destination")
    except LookupError:
        return
    from broadcast.destinations import sync_alerts_destination, sync_builtin_destination

    sync_builtin_destination(using=using)
    sync_alerts_destination(using=using)
