from django.urls import path, re_path

from .consumers import NoRoute, ProjectConsumer

websocket_urlpatterns = [
    path("ws/projects/<int:project_id>/", ProjectConsumer.as_asgi()),
    re_path(r"", NoRoute.as_asgi()),  # last: every other path is refused, not a router error
]
