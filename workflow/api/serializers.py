"""Request and response shapes of the workflow API."""

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework import serializers

from core.api.serializers import IdOrNameField, StrictInputSerializer, UserSummarySerializer
from workflow.models import ApprovalStep, Delegation, Department, Document, Task

MAX_DESCRIPTION_LENGTH = 10_000
MAX_COMMENT_LENGTH = 2_000
MAX_APPROVERS = 20


class DocumentCreateSerializer(StrictInputSerializer):
    title = serializers.CharField(max_length=Document._meta.get_field("title").max_length)
    description = serializers.CharField(max_length=MAX_DESCRIPTION_LENGTH, required=False, allow_blank=True, default="")
    department = IdOrNameField(help_text="Department id or code; you must be a member.")
    approvers = serializers.ListField(
        child=IdOrNameField(),
        min_length=1,
        max_length=MAX_APPROVERS,
        help_text="User ids or usernames, in the order they decide.",
    )

    def validate_department(self, reference: int | str) -> Department:
        lookup = {"pk": reference} if isinstance(reference, int) else {"code": reference}
        department = Department.objects.filter(**lookup).first()
        if department is None:
            raise serializers.ValidationError(f"No such department: {reference}.")
        return department

    def validate_approvers(self, references: list[int | str]) -> list:
        User = get_user_model()
        ids = [reference for reference in references if isinstance(reference, int)]
        names = [reference for reference in references if isinstance(reference, str)]
        by_id = {user.pk: user for user in User.objects.filter(pk__in=ids)}
        by_name = {user.get_username(): user for user in User.objects.filter(**{f"{User.USERNAME_FIELD}__in": names})}
        approvers, unknown = [], []
        for reference in references:
            user = by_id.get(reference) if isinstance(reference, int) else by_name.get(reference)
            if user is None:
                unknown.append(str(reference))
            approvers.append(user)
        if unknown:
            raise serializers.ValidationError(f"No such user: {', '.join(unknown)}.")
        return approvers


class ApproveSerializer(StrictInputSerializer):
    comment = serializers.CharField(max_length=MAX_COMMENT_LENGTH, required=False, allow_blank=True, default="")


class RejectSerializer(StrictInputSerializer):
    comment = serializers.CharField(max_length=MAX_COMMENT_LENGTH, help_text="Why: the requester reads this.")


class DepartmentSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class ApprovalStepSerializer(serializers.Serializer):
    order = serializers.IntegerField(help_text="1 for the first step.")
    approver = UserSummarySerializer()
    status = serializers.ChoiceField(choices=ApprovalStep.Status.choices)
    decided_by = UserSummarySerializer(allow_null=True)
    decided_on_behalf_of = UserSummarySerializer(
        allow_null=True, help_text="The approver, when their delegate decided for them (out of office)."
    )
    decided_at = serializers.DateTimeField(allow_null=True)
    comment = serializers.CharField()


class DocumentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(choices=Document.Status.choices)
    requester = UserSummarySerializer()
    department = DepartmentSummarySerializer()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    steps = ApprovalStepSerializer(many=True, help_text="In order.")
    current_step = serializers.SerializerMethodField(help_text="The step awaiting a decision, if any.")

    def get_current_step(self, document: Document) -> int | None:
        pending = [step.order for step in document.steps.all() if step.status == ApprovalStep.Status.PENDING]
        return min(pending, default=None)


class TaskDocumentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=Document.Status.choices)
    requester = UserSummarySerializer()


class TaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Task.Status.choices)
    step = serializers.IntegerField(source="step.order", help_text="Which step of the document is yours.")
    document = TaskDocumentSerializer()
    on_behalf_of = UserSummarySerializer(
        allow_null=True, help_text="The step's approver, when the task came to you as their delegate."
    )
    created_at = serializers.DateTimeField()


class DelegationCreateSerializer(StrictInputSerializer):
    delegate = IdOrNameField(help_text="User id or username of who takes your new tasks.")
    starts_at = serializers.DateTimeField(required=False, help_text="Default: now.")
    ends_at = serializers.DateTimeField(help_text="Exclusive: from then on your tasks come to you again.")

    def validate_delegate(self, reference: int | str):
        User = get_user_model()
        lookup = {"pk": reference} if isinstance(reference, int) else {User.USERNAME_FIELD: reference}
        delegate = User.objects.filter(**lookup).first()
        if delegate is None:
            raise serializers.ValidationError(f"No such user: {reference}.")
        return delegate

    def validate(self, attrs: dict) -> dict:
        attrs.setdefault("starts_at", timezone.now())
        return attrs


class DelegationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    delegate = UserSummarySerializer()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    cancelled_at = serializers.DateTimeField(allow_null=True)
    active = serializers.SerializerMethodField(help_text="Whether it applies now: new tasks go to the delegate.")

    def get_active(self, delegation: Delegation) -> bool:
        now = timezone.now()
        return delegation.starts_at <= now < delegation.ended_at
