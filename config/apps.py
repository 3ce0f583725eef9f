from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project itself, as an app: its system checks."""

    name = "config"
    label = "project"

    def ready(self):
        from config import checks  # noqa: F401  (registers them)
