"""Admin: departments and their members are edited here; documents, steps and tasks are only browsed.

A document's state belongs to the workflow services (workflow/services/: submit, approve, reject, reassign),
which send the signals its notifications hang on; an edit here would bypass them. So documents, approval steps
and tasks are read-only for everyone (but for a document's own reminder and escalation times, which staff who may
change departments set through their service), and a document's page tells its story as a timeline
(workflow/timeline.py), with the notifications published about it. Those come through the `notifications` related
name: workflow never imports the notifications app.

Delegations (out of office) are added and cancelled here through their services (`delegation_create`, the
"cancel" action: `delegation_cancel`), so the admin refuses overlaps and loops as the API does; a delegation's
period is not edited afterwards (cancel it and add another).
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.duration import duration_string

from core.read_only_admin import TIMELINE_CSS, ReadOnlyAdminMixin, ReadOnlyTabularInline
from workflow import services
from workflow.errors import WorkflowError
from workflow.models import ApprovalStep, Delegation, Department, DepartmentMembership, Document, Task
from workflow.timeline import Entry, at_second, document_timeline, follow_up_rule, person_name


class DepartmentMembershipInline(admin.TabularInline):
    model = DepartmentMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "member_count", "remind_after", "escalate_after", "escalation_contact"]
    list_select_related = ["escalation_contact"]
    search_fields = ["code", "name"]
    autocomplete_fields = ["escalation_contact"]
    inlines = [DepartmentMembershipInline]
    fieldsets = [
        (None, {"fields": ["code", "name"]}),
        (
            "Tasks nobody acts on",
            {
                "fields": ["remind_after", "escalate_after", "escalation_contact"],
                "description": (
                    "Measured from when a task opened; a document may have its own times. Write a duration as "
                    "days hours:minutes:seconds: “1 00:00:00” is a day, “04:00:00” four hours. The approver is "
                    "reminded once, then the escalation contact is told once, with a link to the document."
                ),
            },
        ),
    ]

    @admin.display(description="members")
    def member_count(self, department: Department) -> int:
        return department.memberships.count()


class ApprovalStepInline(ReadOnlyTabularInline):
    model = ApprovalStep
    fields = ["order", "approver", "status", "decided_by", "decided_on_behalf_of", "decided_at", "comment"]
    readonly_fields = ["order", "approver", "status", "decided_by", "decided_on_behalf_of", "decided_at", "comment"]
    verbose_name_plural = "approval steps (raw)"


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "title", "requester_name", "department", "status", "submitted", "decided"]
    list_filter = ["status", "department"]
    search_fields = ["title", "requester__username", "department__code"]
    date_hierarchy = "created_at"
    list_select_related = ["requester", "department"]
    inlines = [ApprovalStepInline]
    change_form_template = "admin/workflow/document/change_form.html"

    @admin.display(description="requester", ordering="requester__username")
    def requester_name(self, document: Document) -> str:
        return person_name(document.requester)

    @admin.display(description="submitted at", ordering="submitted_at")
    def submitted(self, document: Document) -> str:
        return at_second(document.submitted_at) if document.submitted_at else ""

    @admin.display(description="decided at", ordering="decided_at")
    def decided(self, document: Document) -> str:
        return at_second(document.decided_at) if document.decided_at else ""

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """The document's timeline on top (steps, decisions, tasks, its notifications), the raw fields below."""
        document = self.get_object(request, object_id)
        context = {}
        if document is not None:
            context = {
                "timeline": document_timeline(document),
                "follow_up_rule": follow_up_rule(document),
                "notifications": _notifications_about(document),
                "follow_ups_form": (
                    FollowUpTimesForm(
                        initial={
                            field: duration_string(wait) if (wait := getattr(document, field)) is not None else ""
                            for field in FollowUpTimesForm.base_fields
                        }
                    )
                    if _may_set_follow_ups(request)
                    else None
                ),
            }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **context})

    def get_urls(self) -> list[URLPattern]:
        follow_ups = path(
            "<int:document_id>/follow-ups/",
            self.admin_site.admin_view(self.follow_ups_view),
            name="workflow_document_follow_ups",
        )
        return [follow_ups, *super().get_urls()]

    def follow_ups_view(self, request: HttpRequest, document_id: int) -> HttpResponse:
        """The document page's "reminder and escalation times" form: the one workflow service that sets them."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not _may_set_follow_ups(request):
            return HttpResponse("Setting a document's times needs the permission to change departments.", status=403)
        document = get_object_or_404(Document, pk=document_id)
        form = FollowUpTimesForm(request.POST)
        if not form.is_valid():
            for field, errors in form.errors.get_json_data().items():
                messages.error(request, f"{form.fields[field].label}: {' '.join(e['message'] for e in errors)}")
        else:
            try:
                services.document_escalation_set(document=document, **form.cleaned_data)
            except WorkflowError as error:
                messages.error(request, error.message)
            else:
                messages.success(request, "Saved the document's own reminder and escalation times.")
        return HttpResponseRedirect(reverse("admin:workflow_document_change", args=[document.pk]))


class FollowUpTimesForm(forms.Form):
    """A document's own times (workflow/services/escalation.py); empty: its department's."""

    remind_after = forms.DurationField(required=False, label="Remind after")
    escalate_after = forms.DurationField(required=False, label="Escalate after")


def _may_set_follow_ups(request: HttpRequest) -> bool:
    """Staff who may set a department's times may set one document's."""
    return request.user.has_perm("workflow.change_department")


def _notifications_about(document: Document) -> list[Entry]:
    """The notifications published about the document, oldest first, with links to their admin pages.

    Through the reverse relation the notifications app declares (`Notification.document`, related name
    `notifications`): no import of the notifications app, so the dependency still points one way.
    """
    notifications = document.notifications.order_by("created_at")
    return [
        Entry(
            notification.created_at,
            f"{notification.title}",
            _resolved_or_open(notification),
            url=reverse("admin:notifications_notification_change", args=[notification.pk]),
            link_text="its deliveries",
        )
        for notification in notifications
    ]


def _resolved_or_open(notification) -> str:
    """'NewTask', or 'NewTask; resolved at 2026-12-06 14:05:02 UTC: Done: the task was decided'."""
    if notification.resolved_at is None:
        return notification.event
    resolution = notification.get_resolution_display()
    return f"{notification.event}; resolved at {at_second(notification.resolved_at)}: {resolution}"


@admin.register(ApprovalStep)
class ApprovalStepAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["document", "order", "approver_name", "status", "decided_by_name", "decided"]
    list_filter = ["status"]
    search_fields = ["document__title", "approver__username"]
    list_select_related = ["document", "approver", "decided_by"]

    @admin.display(description="approver", ordering="approver__username")
    def approver_name(self, step: ApprovalStep) -> str:
        return person_name(step.approver)

    @admin.display(description="decided by", ordering="decided_by__username")
    def decided_by_name(self, step: ApprovalStep) -> str:
        return person_name(step.decided_by) if step.decided_by else ""

    @admin.display(description="decided at", ordering="decided_at")
    def decided(self, step: ApprovalStep) -> str:
        return at_second(step.decided_at) if step.decided_at else ""


@admin.register(Task)
class TaskAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "document",
        "assignee_name",
        "on_behalf_of_name",
        "step_order",
        "status",
        "created",
        "reminded",
        "escalated",
        "closed",
    ]
    list_filter = ["status"]
    search_fields = ["document__title", "assignee__username"]
    list_select_related = ["document", "assignee", "on_behalf_of", "step", "escalated_to"]

    @admin.display(description="assignee", ordering="assignee__username")
    def assignee_name(self, task: Task) -> str:
        return person_name(task.assignee)

    @admin.display(description="on behalf of", ordering="on_behalf_of__username")
    def on_behalf_of_name(self, task: Task) -> str:
        return person_name(task.on_behalf_of) if task.on_behalf_of else ""

    @admin.display(description="opened at", ordering="created_at")
    def created(self, task: Task) -> str:
        return at_second(task.created_at)

    @admin.display(description="closed at", ordering="closed_at")
    def closed(self, task: Task) -> str:
        return at_second(task.closed_at) if task.closed_at else ""

    @admin.display(description="reminded at", ordering="reminded_at")
    def reminded(self, task: Task) -> str:
        return at_second(task.reminded_at) if task.reminded_at else ""

    @admin.display(description="escalated", ordering="escalated_at")
    def escalated(self, task: Task) -> str:
        if task.escalated_at is None:
            return ""
        to = person_name(task.escalated_to) if task.escalated_to else "nobody to tell"
        return f"{at_second(task.escalated_at)} to {to}"

    @admin.display(description="step", ordering="step__order")
    def step_order(self, task: Task) -> int:
        return task.step.order


class DelegationForm(forms.ModelForm):
    """A new delegation, checked by the service that will write it (field errors beside their fields)."""

    class Meta:
        model = Delegation
        fields = ["delegator", "delegate", "starts_at", "ends_at"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors and self.instance.pk is None:  # a saved one has no editable field
            try:
                services.delegation_check(
                    delegator=cleaned["delegator"],
                    delegate=cleaned["delegate"],
                    starts_at=cleaned["starts_at"],
                    ends_at=cleaned["ends_at"],
                )
            except WorkflowError as error:
                raise ValidationError({error.field: error.message} if error.field else error.message) from None
        return cleaned


class DelegationStateFilter(admin.SimpleListFilter):
    """Which delegations apply now, later, or no more (as the `state` column says)."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active now"), ("upcoming", "Upcoming"), ("ended", "Ended"), ("cancelled", "Cancelled")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Delegation]) -> QuerySet[Delegation]:
        now = timezone.now()
        not_cancelled = Q(cancelled_at__isnull=True) | Q(cancelled_at__gt=now)
        filters = {
            "active": Q(starts_at__lte=now, ends_at__gt=now) & not_cancelled,
            "upcoming": Q(starts_at__gt=now) & not_cancelled,
            "ended": Q(ends_at__lte=now) & (Q(cancelled_at__isnull=True) | Q(cancelled_at__gte=F("ends_at"))),
            "cancelled": Q(cancelled_at__lte=now, cancelled_at__lt=F("ends_at")),
        }
        value = self.value()
        return queryset.filter(filters[value]) if value in filters else queryset


@admin.register(Delegation)
class DelegationAdmin(admin.ModelAdmin):
    list_display = ["delegator_name", "delegate_name", "starts", "ends", "state"]
    list_filter = [DelegationStateFilter]
    search_fields = ["delegator__username", "delegate__username"]
    list_select_related = ["delegator", "delegate"]
    autocomplete_fields = ["delegator", "delegate"]
    form = DelegationForm
    actions = ["cancel"]

    class Media:
        css = {"all": [TIMELINE_CSS]}

    def get_readonly_fields(self, request: HttpRequest, obj: Delegation | None = None) -> list[str]:
        """A saved delegation is not edited: cancel it (and add another)."""
        return ["delegator", "delegate", "starts_at", "ends_at", "created_at", "cancelled_at"] if obj else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the row is what the timeline's "on behalf of ... until" reads: cancel instead

    def save_model(self, request: HttpRequest, obj: Delegation, form: forms.ModelForm, change: bool) -> None:
        if change:
            return  # nothing is editable (get_readonly_fields)
        created = services.delegation_create(
            delegator=obj.delegator, delegate=obj.delegate, starts_at=obj.starts_at, ends_at=obj.ends_at
        )
        obj.pk, obj.created_at = created.pk, created.created_at

    @admin.action(description="Cancel selected delegations (they end now)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Delegation]) -> None:
        cancelled = 0
        for delegation in queryset.filter(cancelled_at__isnull=True, ends_at__gt=timezone.now()):
            services.delegation_cancel(delegation=delegation, cancelled_by=request.user)  # type: ignore[arg-type]
            cancelled += 1
        self.message_user(request, f"Cancelled {cancelled} delegation(s).", messages.SUCCESS)

    @admin.display(description="out of office", ordering="delegator__username")
    def delegator_name(self, delegation: Delegation) -> str:
        return person_name(delegation.delegator)

    @admin.display(description="delegate", ordering="delegate__username")
    def delegate_name(self, delegation: Delegation) -> str:
        return person_name(delegation.delegate)

    @admin.display(description="from", ordering="starts_at")
    def starts(self, delegation: Delegation) -> str:
        return at_second(delegation.starts_at)

    @admin.display(description="until", ordering="ends_at")
    def ends(self, delegation: Delegation) -> str:
        return at_second(delegation.ended_at)

    @admin.display(description="state")
    def state(self, delegation: Delegation) -> str:
        now = timezone.now()
        if (
            delegation.cancelled_at is not None
            and delegation.cancelled_at <= now
            and delegation.ended_at < delegation.ends_at
        ):
            return "cancelled"
        if delegation.ends_at <= now:
            return "ended"
        return "active" if delegation.starts_at <= now else "upcoming"
