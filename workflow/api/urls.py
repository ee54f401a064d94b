"""Routes of the workflow API (mounted under /api/)."""

from rest_framework.routers import SimpleRouter

from workflow.api.delegations import DelegationViewSet
from workflow.api.documents import DocumentViewSet
from workflow.api.tasks import TaskViewSet

router = SimpleRouter()
router.register("documents", DocumentViewSet, basename="document")
router.register("tasks", TaskViewSet, basename="task")
router.register("me/delegations", DelegationViewSet, basename="delegation")

urlpatterns = router.urls
