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
