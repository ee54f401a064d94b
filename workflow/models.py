"""Documents that move through ordered approval steps, and the people involved.

State changes happen only in `workflow.services`; these classes hold data and
the small read-only helpers that describe it.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models


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

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


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

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["assignee", "status"], name="task_assignee_status")]
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
