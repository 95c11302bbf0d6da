"""Routes under /api/projects/<project_pk>/ (included by backend/config/urls.py)."""
from rest_framework.routers import SimpleRouter

from .views import EvaluationViewSet, ModelVersionViewSet, TrainingViewSet

router = SimpleRouter(trailing_slash=True, use_regex_path=False)
router.register("evaluations", EvaluationViewSet, basename="evaluation")
router.register("trainings", TrainingViewSet, basename="training")
router.register("models", ModelVersionViewSet, basename="model-version")

urlpatterns = router.urls
