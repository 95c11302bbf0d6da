from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "backend.core"
    label = "core"

    def ready(self):
        from . import account_signals, body_parsers

        account_signals.connect()
        body_parsers.install()
