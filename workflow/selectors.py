"""Read-side queries of the workflow domain, filtered by who is asking."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from workflow.models import ApprovalStep, Delegation, Department, DepartmentMembership, Document, Task


def documents_visible_to(user: AbstractUser) -> QuerySet[Document]:
    """Documents a user may see: their own, those they approve (or hold a task of, as a delegate), their
    departments', and those of the departments whose escalation contact they are (an escalation links to the
    document)."""
    if not user.is_active:
        return Document.objects.none()
    if user.is_staff:
        return Document.objects.all()
    is_approver = ApprovalStep.objects.filter(document=OuterRef("pk"), approver_id=user.pk)
    in_department = DepartmentMembership.objects.filter(department=OuterRef("department_id"), user_id=user.pk)
    holds_task = Task.objects.filter(document=OuterRef("pk"), assignee_id=user.pk)
    return Document.objects.filter(
        Q(requester_id=user.pk)
        | Exists(is_approver)
        | Exists(in_department)
        | Exists(holds_task)
        | Q(department__escalation_contact_id=user.pk)
    )


def document_is_visible_to(*, document_id: int, user: AbstractUser) -> bool:
    return documents_visible_to(user).filter(pk=document_id).exists()


def tasks_open_for(user: AbstractUser) -> QuerySet[Task]:
    return Task.objects.filter(assignee_id=user.pk, status=Task.Status.OPEN).select_related(
        "document__requester", "step", "on_behalf_of"
    )


def department_ids_of(user_id: int) -> list[int]:
    return list(
        DepartmentMembership.objects.filter(user_id=user_id)
        .order_by("department_id")
        .values_list("department_id", flat=True)
    )


def documents_listed_for(user: AbstractUser) -> QuerySet[Document]:
    """`documents_visible_to` with what a list of them shows (requester, department), newest first."""
    return documents_visible_to(user).select_related("requester", "department").order_by("-created_at", "-id")


def document_visible_to(*, document_id: int, user: AbstractUser) -> Document | None:
    """One document with its steps (approvers and deciders loaded), if the user may see it; else None."""
    return (
        documents_visible_to(user)
        .select_related("requester", "department")
        .prefetch_related(Prefetch("steps", queryset=_steps_with_people().order_by("order")))
        .filter(pk=document_id)
        .first()
    )


def _steps_with_people() -> QuerySet[ApprovalStep]:
    return ApprovalStep.objects.select_related("approver", "decided_by", "decided_on_behalf_of")


@dataclass(frozen=True)
class DocumentActions:
    """What a user may do to a document now: the services decide, this only says which buttons to offer."""

    submit: bool  # the requester, while it is a draft
    decide: bool  # the approver of the step awaiting a decision, or the delegate holding its task
    current_step: ApprovalStep | None
    withdraw: bool = False  # the requester, while it is in review


def document_actions_for(document: Document, user: AbstractUser) -> DocumentActions:
    """The actions `workflow.services` would allow `user` on `document` (its steps prefetched or not)."""
    current = None
    if document.status == Document.Status.IN_REVIEW:
        pending = [step for step in document.steps.all() if step.status == ApprovalStep.Status.PENDING]
        current = min(pending, key=lambda step: step.order, default=None)
    return DocumentActions(
        submit=document.status == Document.Status.DRAFT and document.requester_id == user.pk,
        decide=current is not None
        and (
            current.approver_id == user.pk
            or Task.objects.filter(step=current, status=Task.Status.OPEN, assignee_id=user.pk).exists()
        ),
        current_step=current,
        withdraw=document.status == Document.Status.IN_REVIEW and document.requester_id == user.pk,
    )


def departments_of(user: AbstractUser) -> QuerySet[Department]:
    """The departments a user belongs to (where they may file documents), by name."""
    return Department.objects.filter(memberships__user_id=user.pk).order_by("name")


def approver_candidates_for(user: AbstractUser) -> QuerySet[AbstractUser]:
    """Who a user may name as an approver: every active user but themselves, by username."""
    User = get_user_model()
    return User.objects.filter(is_active=True).exclude(pk=user.pk).order_by(User.USERNAME_FIELD)


def users_named(usernames: Iterable[str]) -> dict[str, AbstractUser]:
    """The users with these usernames, by username (unknown names are left out)."""
    User = get_user_model()
    return {
        user.get_username(): user for user in User.objects.filter(**{f"{User.USERNAME_FIELD}__in": list(usernames)})
    }


def delegations_of(user: AbstractUser) -> QuerySet[Delegation]:
    """A user's delegations (out of office), the latest period first, with their delegates."""
    return Delegation.objects.filter(delegator_id=user.pk).select_related("delegate").order_by("-starts_at", "-id")


def delegations_ahead_of(user: AbstractUser) -> QuerySet[Delegation]:
    """A user's delegations that apply now or later (not ended, not cancelled), the soonest first; `started`:
    whether it applies now."""
    now = timezone.now()
    return (
        Delegation.objects.filter(delegator_id=user.pk, ends_at__gt=now, cancelled_at__isnull=True)
        .annotate(started=ExpressionWrapper(Q(starts_at__lte=now), output_field=BooleanField()))
        .select_related("delegate")
        .order_by("starts_at", "id")
    )
