from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "backend.annotations"
    label = "annotations"
