"""Routes of the workflow API (mounted under /api/)."""

from rest_framework.routers import SimpleRouter

from workflow.api.documents import DocumentViewSet
from workflow.api.tasks import TaskViewSet

router = SimpleRouter()
router.register("documents", DocumentViewSet, basename="document")
router.register("tasks", TaskViewSet, basename="task")

urlpatterns = router.urls
