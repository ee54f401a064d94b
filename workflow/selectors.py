"""Read-side queries of the workflow domain, filtered by who is asking."""

from django.contrib.auth.models import AbstractUser
from django.db.models import Exists, OuterRef, Q, QuerySet

from workflow.models import ApprovalStep, DepartmentMembership, Document, Task


def documents_visible_to(user: AbstractUser) -> QuerySet[Document]:
    """Documents a user may see: their own, those they approve, and their departments'."""
    if not user.is_active:
        return Document.objects.none()
    if user.is_staff:
        return Document.objects.all()
    is_approver = ApprovalStep.objects.filter(document=OuterRef("pk"), approver_id=user.pk)
    in_department = DepartmentMembership.objects.filter(department=OuterRef("department_id"), user_id=user.pk)
    return Document.objects.filter(Q(requester_id=user.pk) | Exists(is_approver) | Exists(in_department))


def document_is_visible_to(*, document_id: int, user: AbstractUser) -> bool:
    return documents_visible_to(user).filter(pk=document_id).exists()


def tasks_open_for(user: AbstractUser) -> QuerySet[Task]:
    return Task.objects.filter(assignee_id=user.pk, status=Task.Status.OPEN).select_related("document", "step")


def department_ids_of(user_id: int) -> list[int]:
    return list(
        DepartmentMembership.objects.filter(user_id=user_id)
        .order_by("department_id")
        .values_list("department_id", flat=True)
    )
