from django.apps import AppConfig


class DefectConfig(AppConfig):
    name = "defect"
    verbose_name = "Defects"

    def ready(self) -> None:
        # Connects the receivers that turn every creation and deletion of a
        # defect into a broadcast event, whatever path the change takes (defect.models
        # imports the module too; this says where the receivers come from).
        from defect import events  # noqa: F401
