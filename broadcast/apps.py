from django.apps import AppConfig


class BroadcastConfig(AppConfig):
    name = "broadcast"
    verbose_name = "Broadcast to the counter server"

    def ready(self) -> None:
        from broadcast import checks  # noqa: F401 - registers the system checks
