"""Documents that move through ordered approval steps, and the people involved.

State changes happen only in `workflow.services`; these classes hold data and
the small read-only helpers that describe it.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

# A reminder or escalation sooner than this would fire before anyone could act on a task.
SHORTEST_WAIT = timedelta(seconds=1)


def wait_field(help_text: str) -> models.DurationField:
    """How long an open task may wait before something happens; empty: see `help_text`."""
    return models.DurationField(
        null=True, blank=True, validators=[MinValueValidator(SHORTEST_WAIT)], help_text=help_text
    )


def check_remind_before_escalate(remind_after: timedelta | None, escalate_after: timedelta | None) -> None:
    """A reminder after the escalation would remind of work already handed up: refuse that order."""
    if remind_after is not None and escalate_after is not None and remind_after >= escalate_after:
        raise ValidationError({"remind_after": "Remind before escalating: make this shorter than the escalation time."})


class Department(models.Model):
    code = models.CharField(
        max_length=32,
        unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9_-]+$", "Use letters, digits, '-' and '_' only.")],
        help_text="Short stable identifier used by the API, e.g. 'finance'.",
    )
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="DepartmentMembership",
        related_name="departments",
        blank=True,
    )
    # Escalation of ignored tasks (workflow/services/escalation.py), measured from when the task opened.
    remind_after = wait_field("Remind the approver once when a task has waited this long (e.g. 1 day). Empty: never.")
    escalate_after = wait_field(
        "Tell the escalation contact when a task has waited this long (e.g. 2 days). Empty: never."
    )
    escalation_contact = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="escalation_contact_for",
        help_text="Who hears of the department's ignored tasks. Empty: nobody (the escalation is only recorded).",
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def clean(self) -> None:
        check_remind_before_escalate(self.remind_after, self.escalate_after)


class DepartmentMembership(models.Model):
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="department_memberships")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["department", "user"], name="unique_department_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.department.code}"


class Document(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="requested_documents"
    )
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="documents")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    # Overrides of the department's times for this document (e.g. an urgent one); empty: the department's.
    remind_after = wait_field("Overrides the department's reminder time for this document. Empty: the department's.")
    escalate_after = wait_field(
        "Overrides the department's escalation time for this document. Empty: the department's."
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class ApprovalStep(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting for earlier steps"
        PENDING = "pending", "Pending decision"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        CANCELLED = "cancelled", "Cancelled: the document was withdrawn"

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField(help_text="1 for the first step.")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_steps")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="decided_steps"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # Set when a delegate decided for the approver (out of office): `decided_by` is the delegate.
    decided_on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["document_id", "order"]
        constraints = [models.UniqueConstraint(fields=["document", "order"], name="unique_step_order_per_document")]

    def __str__(self) -> str:
        return f"{self.document} step {self.order}"


class Task(models.Model):
    """The open approval work item of one step, assigned to one user."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="tasks")
    step = models.ForeignKey(ApprovalStep, on_delete=models.CASCADE, related_name="tasks")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks")
    # The step's approver, when the task went to their delegate instead (workflow/services/delegation.py).
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Set once each by workflow/services/escalation.py; never again for the same task.
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # Who it was escalated to, as the department said then (empty with `escalated_at`: there was nobody).
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="escalated_tasks"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["assignee", "status"], name="task_assignee_status"),
            # The escalation sweep reads open tasks only, oldest first.
            models.Index(fields=["created_at"], condition=models.Q(status="open"), name="task_open_created"),
        ]
        constraints = [
            # One open task per step: the database backs up the services' locking.
            models.UniqueConstraint(fields=["step"], condition=models.Q(status="open"), name="one_open_task_per_step")
        ]

    def __str__(self) -> str:
        return f"Task {self.pk}: {self.document} for {self.assignee}"


class Delegation(models.Model):
    """While `delegator` is out of office (from `starts_at` until `ends_at`), new tasks for them go to `delegate`.

    Written only by workflow/services/delegation.py, which refuses overlaps and loops. Cancelling ends it at
    `cancelled_at` (the row stays: the timeline says which delegation a task followed).
    """

    delegator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations")
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations_received"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(help_text="Exclusive: from this moment tasks go to the delegator again.")
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["delegator", "ends_at"], name="delegation_delegator_ends")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="delegation_ends_after_start"
            ),
            models.CheckConstraint(condition=~models.Q(delegator=models.F("delegate")), name="delegation_not_to_self"),
        ]

    def __str__(self) -> str:
        return f"{self.delegator} to {self.delegate}, {self.starts_at:%Y-%m-%d %H:%M} to {self.ends_at:%Y-%m-%d %H:%M}"

    @property
    def ended_at(self):
        """When it stops (or stopped) applying: its end, or its cancellation if that came first."""
        return min(self.ends_at, self.cancelled_at) if self.cancelled_at else self.ends_at
