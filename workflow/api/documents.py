"""/api/documents/: create, read and decide documents; each action calls one workflow service.

A document you are not part of (not its requester, approver, or a member of
its department) is a 404 for every action. Being able to see a document does
not let you decide it: the services refuse with `forbidden` (403).
"""

from typing import cast

from django.contrib.auth.models import User
from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from core.api.schema import error_response
from workflow import selectors, services
from workflow.api.serializers import ApproveSerializer, DocumentCreateSerializer, DocumentSerializer, RejectSerializer
from workflow.models import Document

FORBIDDEN = error_response(
    "Not yours to do: only the requester submits or withdraws, only the step's approver (or the delegate holding "
    "its task) decides."
)
WRONG_STATE = error_response("Not allowed in the document's current status (e.g. approving a draft).")


class DocumentFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Document.Status.choices)

    class Meta:
        model = Document
        fields = ["status"]


@extend_schema_view(
    list=extend_schema(summary="Documents I am part of, newest first"),
    retrieve=extend_schema(summary="One document with its approval steps"),
)
@extend_schema(tags=["workflow"])
class DocumentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DocumentSerializer
    filterset_class = DocumentFilter
    queryset = Document.objects.none()  # for schema introspection; get_queryset scopes to the caller

    def get_queryset(self):
        return (
            selectors.documents_visible_to(cast(User, self.request.user))  # signed in: IsAuthenticated
            .select_related("requester", "department")
            .prefetch_related("steps__approver", "steps__decided_by", "steps__decided_on_behalf_of")
        )

    def get_object(self) -> Document:
        """One document the caller is part of (list filters do not apply here)."""
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    @extend_schema(
        summary="Create a draft with its approvers",
        request=DocumentCreateSerializer,
        responses={201: DocumentSerializer},
    )
    def create(self, request):
        serializer = DocumentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        document = services.document_create(requester=request.user, **serializer.validated_data)
        return self._document_response(document, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Send a draft for approval",
        request=None,
        responses={200: DocumentSerializer, 403: FORBIDDEN, 409: WRONG_STATE},
    )
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        document = services.document_submit(document=self.get_object(), submitted_by=request.user)
        return self._document_response(document)

    @extend_schema(
        summary="Approve the current step",
        request=ApproveSerializer,
        responses={200: DocumentSerializer, 403: FORBIDDEN, 409: WRONG_STATE},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        serializer = ApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        document = services.step_approve(document=self.get_object(), approver=request.user, **serializer.validated_data)
        return self._document_response(document)

    @extend_schema(
        summary="Reject at the current step, saying why",
        request=RejectSerializer,
        responses={200: DocumentSerializer, 403: FORBIDDEN, 409: WRONG_STATE},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        serializer = RejectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        document = services.document_reject(
            document=self.get_object(), approver=request.user, **serializer.validated_data
        )
        return self._document_response(document)

    @extend_schema(
        summary="Withdraw a document in review (its requester): its open task is cancelled",
        request=None,
        responses={200: DocumentSerializer, 403: FORBIDDEN, 409: WRONG_STATE},
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        document = services.document_withdraw(document=self.get_object(), withdrawn_by=request.user)
        return self._document_response(document)

    def _document_response(self, document: Document, status_code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=document.pk)  # re-read with steps after the change
        headers = {"Location": reverse("document-detail", kwargs={"pk": document.pk})} if status_code == 201 else {}
        return Response(DocumentSerializer(fresh).data, status=status_code, headers=headers)
