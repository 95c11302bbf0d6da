import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")
# A web process: Django's requests share a connection pool (settings/database.py). Read when
# the settings load, so it only applies where this module is what starts Django.
os.environ.setdefault("RAZMETKA_DB_POOL", "1")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from backend.annotations.hot_routes import HotRoutes  # noqa: E402
from backend.config.routing import websocket_urlpatterns  # noqa: E402
from backend.images.hot_upload import UploadRoutes  # noqa: E402
from backend.realtime.origin import SameOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        # The review app's image detail and review POST (backend/annotations/hot_routes.py) and
        # an upload's session, chunk and status requests (backend/images/hot_upload.py) skip
        # Django's per-request thread and ORM; everything else, and every case those do not
        # handle plainly, is Django's.
        # RAZMETKA_HOT_ROUTES=0 serves them through Django too (a switch for comparing, or for ops).
        "http": django_asgi_app if os.environ.get("RAZMETKA_HOT_ROUTES") == "0"
        else UploadRoutes(HotRoutes(django_asgi_app)),
        # The host in ALLOWED_HOSTS, and the whole origin (scheme, host, port) this site's own.
        "websocket": SameOriginValidator(AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))),
    }
)
