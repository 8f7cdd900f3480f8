"""Create the development superuser admin/admin, in debug mode only."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEV_USERNAME = "admin"
DEV_PASSWORD = "admin"  # noqa: S105 - documented development default, debug only


class Command(BaseCommand):
    help = "Create the development superuser admin/admin if missing (refused when DEBUG is off)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("Refusing to create admin/admin: DJANGO_DEBUG is off.")
        User = get_user_model()
        if User.objects.filter(username=DEV_USERNAME).exists():
            self.stdout.write("Development superuser admin already exists.")
            return
        User.objects.create_superuser(DEV_USERNAME, "admin@example.com", DEV_PASSWORD)
        self.stdout.write(self.style.SUCCESS("Created development superuser admin / admin."))
