from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from backend.annotations.views import AnnotationViewSet, ImageBundleViewSet
from backend.core import auth_views
from backend.core.frontend import frontend_view
from backend.core.health import health_view
from backend.core.schema_view import SchemaView
from backend.exchange.views import ExportViewSet, ImportViewSet
from backend.gallery.views import GalleryViewSet
from backend.images.views import ImageReviewViewSet, ImageViewSet
from backend.jobs.views import ImageSegmentViewSet, PrelabelJobViewSet
from backend.projects.views import LabelClassViewSet, MembershipViewSet, ProjectViewSet

root = SimpleRouter(trailing_slash=True, use_regex_path=False)
root.register("projects", ProjectViewSet, basename="project")

nested = SimpleRouter(trailing_slash=True, use_regex_path=False)
nested.register("members", MembershipViewSet, basename="member")
nested.register("classes", LabelClassViewSet, basename="class")
nested.register("gallery", GalleryViewSet, basename="gallery")
nested.register("images", ImageViewSet, basename="image")
nested.register("images", ImageReviewViewSet, basename="image-review")
nested.register("images", ImageBundleViewSet, basename="image-bundle")
nested.register("images", ImageSegmentViewSet, basename="image-segment")
nested.register("jobs", PrelabelJobViewSet, basename="job")
nested.register("annotations", AnnotationViewSet, basename="annotation")
nested.register("exports", ExportViewSet, basename="export")
nested.register("imports", ImportViewSet, basename="import")

api = [
    path("auth/login/", auth_views.login_view, name="login"),
    path("auth/logout/", auth_views.logout_view, name="logout"),
    path("auth/me/", auth_views.me_view, name="me"),
    path("auth/token/", auth_views.token_view, name="token"),
    path("", include(root.urls)),
    path("projects/<int:project_pk>/", include(nested.urls)),
    path("projects/<int:project_pk>/", include("backend.learning.urls")),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("health/", health_view, name="health"),
    path("engines/", include("backend.jobs.engines_api")),
]

urlpatterns = [
    path("api/", include(api)),
    # Django's admin only when asked for (RAZMETKA_DJANGO_ADMIN=1): its sign-in form has none of
    # the API's throttle and account lockout, so it was a way to guess the instance admin's password.
    *([path("admin/", admin.site.urls)] if settings.RAZMETKA_DJANGO_ADMIN else []),
    # Last: the app's routes get index.html; /static/, /media/, /api/ misses answer 404 (see frontend.py).
    path("", frontend_view, name="frontend"),
    path("<path:path>", frontend_view),
]

handler400 = "backend.core.errors.bad_request"  # JSON under /api/
