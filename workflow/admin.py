from django.contrib import admin

from workflow.models import ApprovalStep, Department, DepartmentMembership, Document, Task


class DepartmentMembershipInline(admin.TabularInline):
    model = DepartmentMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "member_count"]
    search_fields = ["code", "name"]
    inlines = [DepartmentMembershipInline]

    @admin.display(description="members")
    def member_count(self, department: Department) -> int:
        return department.memberships.count()


class ApprovalStepInline(admin.TabularInline):
    model = ApprovalStep
    extra = 0
    fields = ["order", "approver", "status", "decided_by", "decided_at", "comment"]
    readonly_fields = ["status", "decided_by", "decided_at", "comment"]
    autocomplete_fields = ["approver"]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    """Browse documents; transitions belong to the workflow services, so status is read-only here."""

    list_display = ["id", "title", "requester", "department", "status", "submitted_at", "decided_at"]
    list_filter = ["status", "department"]
    search_fields = ["title", "requester__username", "department__code"]
    date_hierarchy = "created_at"
    readonly_fields = ["status", "created_at", "updated_at", "submitted_at", "decided_at"]
    autocomplete_fields = ["requester", "department"]
    list_select_related = ["requester", "department"]
    inlines = [ApprovalStepInline]


@admin.register(ApprovalStep)
class ApprovalStepAdmin(admin.ModelAdmin):
    list_display = ["document", "order", "approver", "status", "decided_by", "decided_at"]
    list_filter = ["status"]
    search_fields = ["document__title", "approver__username"]
    list_select_related = ["document", "approver", "decided_by"]
    readonly_fields = ["status", "decided_by", "decided_at"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "document", "assignee", "step_order", "status", "created_at", "closed_at"]
    list_filter = ["status"]
    search_fields = ["document__title", "assignee__username"]
    list_select_related = ["document", "assignee", "step"]
    readonly_fields = ["status", "created_at", "closed_at"]

    @admin.display(description="step", ordering="step__order")
    def step_order(self, task: Task) -> int:
        return task.step.order
