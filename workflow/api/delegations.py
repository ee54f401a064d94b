"""/api/me/delegations/: my out-of-office delegations; creating and cancelling call the delegation services.

Another user's delegation is a 404 (the list is only ever mine).
"""

from typing import cast

from django.contrib.auth.models import User
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from core.api.schema import error_response
from workflow import selectors, services
from workflow.api.serializers import DelegationCreateSerializer, DelegationSerializer
from workflow.models import Delegation

ENDED = error_response("The delegation has ended or was cancelled already.")


@extend_schema_view(list=extend_schema(summary="My delegations (out of office), the latest period first"))
@extend_schema(tags=["workflow"])
class DelegationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = DelegationSerializer
    queryset = Delegation.objects.none()  # for schema introspection; get_queryset scopes to the caller
    filter_backends = []

    def get_queryset(self):
        return selectors.delegations_of(cast(User, self.request.user))  # signed in: IsAuthenticated

    @extend_schema(
        summary="Name a delegate for a period: new tasks for me go to them meanwhile",
        request=DelegationCreateSerializer,
        responses={201: DelegationSerializer},
    )
    def create(self, request):
        serializer = DelegationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        delegation = services.delegation_create(delegator=request.user, **serializer.validated_data)
        headers = {"Location": reverse("delegation-detail", kwargs={"pk": delegation.pk})}
        return Response(DelegationSerializer(delegation).data, status=status.HTTP_201_CREATED, headers=headers)

    @extend_schema(
        summary="Cancel a delegation: it ends now (tasks it moved stay with the delegate)",
        request=None,
        responses={200: DelegationSerializer, 409: ENDED},
    )
    def destroy(self, request, pk=None):
        delegation = get_object_or_404(self.get_queryset(), pk=pk)
        cancelled = services.delegation_cancel(delegation=delegation, cancelled_by=request.user)
        return Response(DelegationSerializer(cancelled).data)
