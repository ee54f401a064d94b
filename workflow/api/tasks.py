"""/api/tasks/: my open approval tasks, newest first."""

from typing import cast

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets

from workflow import selectors
from workflow.api.serializers import TaskSerializer
from workflow.models import Task


@extend_schema(tags=["workflow"], summary="My open approval tasks")
class TaskViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = TaskSerializer
    queryset = Task.objects.none()  # for schema introspection; get_queryset scopes to the caller
    filter_backends = []

    def get_queryset(self):
        return selectors.tasks_open_for(cast(User, self.request.user))  # signed in: IsAuthenticated
