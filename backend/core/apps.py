from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "backend.core"
    label = "core"

    def ready(self):
        from . import account_signals, body_parsers, schema_auth  # noqa: F401 (schema_auth registers itself)

        account_signals.connect()
        body_parsers.install()
