"""Request and response shapes of the notifications API."""

import json
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.serializers import (
    ErrorSerializer,
    FieldsKeptPerThread,
    IdOrNameField,
    StrictInputSerializer,
    UserSummarySerializer,
)
from notifications.api.idempotency import (
    IDEMPOTENCY_KEY_FORMAT,
    IDEMPOTENCY_KEY_MESSAGE,
    IDEMPOTENCY_KEY_SCHEMA,
    canonical_hash,
)
from notifications.hub.signalr.protocol import NOTIFICATION_DEFAULT_KEYS, NOTIFICATION_OWN_KEYS
from notifications.models import EVENT_NAME_VALIDATOR, ActionPerformance, Delivery, DeliveryAttempt, Notification
from notifications.services.actions import (
    ACTION_ID_PATTERN,
    MAX_ACTION_COMMENT_LENGTH,
    MAX_ACTION_LABEL_LENGTH,
    MAX_ACTIONS,
)
from notifications.services.publish_batch import PublishBatchItem
from workflow.models import Document

MAX_BODY_LENGTH = 4_000
MAX_DATA_BYTES = 4_096  # FCM carries at most 4 KB of data: what cannot be pushed is not accepted
MAX_USER_REFERENCES = 1_000
MAX_DEPARTMENT_REFERENCES = 100
MAX_TTL_SECONDS = 30 * 86_400
MAX_ID = 2**63 - 1


# --- Publish -------------------------------------------------------------------
class RecipientsSerializer(StrictInputSerializer):
    users = serializers.ListField(
        child=IdOrNameField(),
        required=False,
        default=list,
        max_length=MAX_USER_REFERENCES,
        help_text="User ids (integers) or usernames (strings).",
    )
    departments = serializers.ListField(
        child=IdOrNameField(),
        required=False,
        default=list,
        max_length=MAX_DEPARTMENT_REFERENCES,
        help_text="Department ids (integers) or codes (strings): every active member receives it.",
    )

    def validate(self, attrs: dict) -> dict:
        if not attrs["users"] and not attrs["departments"]:
            raise serializers.ValidationError("Name at least one user or department.")
        return attrs


class NotificationActionSerializer(StrictInputSerializer):
    """One thing a recipient may do from the notification: a button on every client."""

    id = serializers.RegexField(
        ACTION_ID_PATTERN,
        max_length=32,
        help_text="What a client performs (POST /api/notifications/<id>/actions/<action>/): lower-case letters, "
        "digits, '-' and '_', starting with a letter.",
    )
    # drf-stubs sees this as replacing Field.label; SerializerMetaclass takes declared fields out of the class.
    label = serializers.CharField(  # type: ignore[assignment]
        max_length=MAX_ACTION_LABEL_LENGTH, help_text="The button's text."
    )
    requires_comment = serializers.BooleanField(
        default=False, help_text="Performing it needs a comment (clients ask for one first)."
    )


class PublishSerializer(FieldsKeptPerThread, StrictInputSerializer):
    event = serializers.CharField(
        max_length=64,
        validators=[EVENT_NAME_VALIDATOR],
        help_text="The client handler name, e.g. InvoiceOverdue: one your publishing scope allows, and not one "
        "reserved for the system (the workflow's events, the hub's own messages; any case).",
    )
    title = serializers.CharField(max_length=Notification._meta.get_field("title").max_length)
    body = serializers.CharField(max_length=MAX_BODY_LENGTH, required=False, allow_blank=True, default="")
    # drf-stubs sees this as replacing Serializer.data; SerializerMetaclass takes declared fields out of the class.
    data = serializers.DictField(  # type: ignore[assignment]
        required=False,
        default=dict,
        help_text=f"Any JSON object, at most {MAX_DATA_BYTES} bytes encoded, without the keys the hub sets itself "
        f"({', '.join(sorted(NOTIFICATION_OWN_KEYS + NOTIFICATION_DEFAULT_KEYS))}; any case).",
    )
    recipients = RecipientsSerializer()
    priority = serializers.ChoiceField(choices=Notification.Priority.choices, default=Notification.Priority.NORMAL)
    ttl_seconds = serializers.IntegerField(
        min_value=1, max_value=MAX_TTL_SECONDS, required=False, help_text="Expire this many seconds from now."
    )
    expires_at = serializers.DateTimeField(required=False, help_text="Or expire at this time (not both).")
    document_id = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        allow_null=True,
        help_text="The workflow document it is about, if your publishing scope may attach documents (those of "
        "its departments; any with all recipients).",
    )

    subject = serializers.CharField(
        max_length=Notification._meta.get_field("subject").max_length,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text="What it is about, in your own terms (e.g. invoice:42): retracting is per notification, and "
        "the workflow resolves `task:<id>` when that task closes. Printable characters only.",
    )

    actions = NotificationActionSerializer(  # type: ignore[call-arg]  # many=True takes ListSerializer's max_length
        many=True,
        required=False,
        default=list,
        max_length=MAX_ACTIONS,
        help_text=f"At most {MAX_ACTIONS} actions each recipient may perform from the notification, once; you hear "
        "of each through your action callback (a signed POST), which you must have registered first.",
    )

    def validate_actions(self, value: list[dict]) -> list[dict]:
        ids = [action["id"] for action in value]
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("Each action needs its own id.")
        return value

    def validate_subject(self, value: str) -> str:
        if not value.isprintable():
            raise serializers.ValidationError("Printable characters only (no control characters or line breaks).")
        return value

    def validate_data(self, value: dict) -> dict:
        if _has_null_character(value):
            raise serializers.ValidationError("Null characters (\\u0000) are not allowed.")
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
        if size > MAX_DATA_BYTES:
            raise serializers.ValidationError(f"At most {MAX_DATA_BYTES} bytes of JSON; this is {size}.")
        return value

    def validate_expires_at(self, value):
        if value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value

    def validate_document_id(self, value: int | None) -> int | None:
        if value is not None and not Document.objects.filter(pk=value).exists():
            raise serializers.ValidationError(f"No document {value}.")
        return value

    def validate(self, attrs: dict) -> dict:
        ttl_seconds = attrs.pop("ttl_seconds", None)
        if ttl_seconds is not None:
            if attrs.get("expires_at"):
                raise serializers.ValidationError({"ttl_seconds": ["Give ttl_seconds or expires_at, not both."]})
            attrs["expires_at"] = timezone.now() + timedelta(seconds=ttl_seconds)
        recipients = attrs.pop("recipients")
        attrs["users"], attrs["departments"] = recipients["users"], recipients["departments"]
        return attrs


def _has_null_character(value) -> bool:
    """PostgreSQL cannot store U+0000 in text or jsonb."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_null_character(key) or _has_null_character(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_null_character(item) for item in value)
    return False


class PublishResultSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="notification.id")
    event = serializers.CharField(source="notification.event")
    recipient_count = serializers.IntegerField(help_text="Distinct active recipients, one delivery each.")
    created_at = serializers.DateTimeField(source="notification.created_at")
    expires_at = serializers.DateTimeField(source="notification.expires_at", allow_null=True)


# --- Batch publish -------------------------------------------------------------
BATCH_KEY_FIELD = "idempotency_key"


@extend_schema_field(IDEMPOTENCY_KEY_SCHEMA)
class IdempotencyKeyField(serializers.RegexField):
    """The Idempotency-Key header's rule for a key in a body: a string (not a number) of 1 to 255 printable ASCII
    characters, kept as sent."""

    def __init__(self, **kwargs) -> None:
        super().__init__(
            IDEMPOTENCY_KEY_FORMAT,
            trim_whitespace=False,
            error_messages={"invalid": IDEMPOTENCY_KEY_MESSAGE, "blank": IDEMPOTENCY_KEY_MESSAGE},
            **kwargs,
        )

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class PublishBatchItemSerializer(PublishSerializer):
    """One notification of a batch: a single publish's body, and its own idempotency key."""

    idempotency_key = IdempotencyKeyField(
        required=False,
        help_text="As the Idempotency-Key header of a single publish, and the same key: a retry with the same key "
        "and the same item (without this field) replays what it published, whichever way it was sent.",
    )


def publish_batch_item(raw) -> PublishBatchItem:
    """One item of a batch, parsed alone: one that is invalid is answered in the results, not with a 400 for the
    whole batch. Its key is read even then, since a key that answered before replays whatever the body."""
    serializer = PublishBatchItemSerializer(data=raw)
    valid = serializer.is_valid()
    key = None
    if isinstance(raw, dict) and BATCH_KEY_FIELD in raw and BATCH_KEY_FIELD not in serializer.errors:
        key = raw[BATCH_KEY_FIELD]
    # Hashed as the single publish hashes its body, which has no key in it: the same request either way.
    body = {name: value for name, value in raw.items() if name != BATCH_KEY_FIELD} if key is not None else None
    request = None
    if valid:
        request = dict(serializer.validated_data)
        request.pop(BATCH_KEY_FIELD, None)
    return PublishBatchItem(
        request=request,
        invalid=None if valid else serializers.ValidationError(serializer.errors),
        idempotency_key=key,
        request_hash=canonical_hash(body) if key is not None else "",
    )


@extend_schema_field(PublishBatchItemSerializer(many=True))
class PublishBatchItemsField(serializers.ListField):
    """The batch's notifications, at most NOTIFY_PUBLISH_BATCH_MAX, each parsed alone (`publish_batch_item`)."""

    def to_internal_value(self, data) -> list[PublishBatchItem]:
        items = super().to_internal_value(data)
        if len(items) > settings.NOTIFY_PUBLISH_BATCH_MAX:  # read per request: a changed setting applies
            self.fail("max_length", max_length=settings.NOTIFY_PUBLISH_BATCH_MAX)
        return [publish_batch_item(item) for item in items]


class PublishBatchSerializer(StrictInputSerializer):
    notifications = PublishBatchItemsField(
        allow_empty=False,
        help_text="1 to NOTIFY_PUBLISH_BATCH_MAX (100 by default) notifications, each a single publish's body with "
        "an optional `idempotency_key`. An invalid one is answered in its result; a list that is empty, too long "
        "or not a list is a 400 for the batch, and nothing is published.",
    )


class PublishBatchItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's position in the request's `notifications`, from 0.")
    status = serializers.ChoiceField(
        choices=[
            (201, "published"),
            (200, "replayed: its idempotency key published this before"),
            (400, "invalid"),
            (403, "outside the publishing scope"),
            (409, "its idempotency key was used with another body"),
        ],
        help_text="What a single publish of the item would have been answered with.",
    )
    notification = PublishResultSerializer(required=False, help_text="With 201 and 200: what a single publish answers.")
    error = ErrorSerializer(
        required=False,
        help_text="With 400, 403 and 409: the error a single publish would have answered; "
        "nothing was published for this item.",
    )


class PublishBatchResultSerializer(serializers.Serializer):
    results = PublishBatchItemResultSerializer(many=True, help_text="One per item, in the request's order.")


# --- Inbox ---------------------------------------------------------------------
class InboxItemSerializer(serializers.Serializer):
    """A notification as its recipient sees it: the WebSocket payload plus this user's delivery state."""

    id = serializers.UUIDField(source="notification_id")
    event = serializers.CharField(source="notification.event")
    title = serializers.CharField(source="notification.title")
    body = serializers.CharField(source="notification.body")
    # drf-stubs sees this as replacing Serializer.data; SerializerMetaclass takes declared fields out of the class.
    data = serializers.DictField(source="notification.data")  # type: ignore[assignment]
    document_id = serializers.IntegerField(source="notification.document_id", allow_null=True)
    priority = serializers.ChoiceField(source="notification.priority", choices=Notification.Priority.choices)
    created_at = serializers.DateTimeField(source="notification.created_at")
    expires_at = serializers.DateTimeField(source="notification.expires_at", allow_null=True)
    status = serializers.ChoiceField(choices=Delivery.Status.choices)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(
        source="notification.resolved_at",
        allow_null=True,
        help_text="When the work it was about was done (then `resolution` says how); a read one keeps `read`.",
    )
    resolution = serializers.CharField(
        source="notification.resolution", help_text="done, reassigned, withdrawn, decided, retracted; or empty."
    )
    unread = serializers.SerializerMethodField(help_text="Not read and not resolved: what unread counts count.")
    actions = NotificationActionSerializer(
        source="notification.actions", many=True, help_text="What I may do from it (POST .../actions/<id>/)."
    )

    def get_unread(self, delivery: Delivery) -> bool:
        return delivery.is_unread


class ActionRequestSerializer(StrictInputSerializer):
    comment = serializers.CharField(
        max_length=MAX_ACTION_COMMENT_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="Why; required by an action with `requires_comment` (reject).",
    )


class ActionResultSerializer(serializers.Serializer):
    notification_id = serializers.UUIDField()
    action = serializers.CharField()
    outcome = serializers.ChoiceField(
        choices=ActionPerformance.Outcome.choices,
        help_text="approved or rejected (a task's decision), recorded (a publisher's action: it is called back).",
    )
    performed_at = serializers.DateTimeField()
    already_performed = serializers.BooleanField(
        help_text="True: you had performed it already; this is the first answer, and nothing happened again."
    )


class UnreadCountSerializer(serializers.Serializer):
    unread_count = serializers.IntegerField()


class ReadAllResultSerializer(serializers.Serializer):
    marked_read = serializers.IntegerField(help_text="How many were unread.")
    unread_count = serializers.IntegerField()


# --- Delivery status -----------------------------------------------------------
class DeviceSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    platform = serializers.CharField()
    active = serializers.BooleanField()


class DeliveryAttemptSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=DeliveryAttempt.Channel.choices)
    outcome = serializers.ChoiceField(choices=DeliveryAttempt.Outcome.choices)
    device = DeviceSummarySerializer(allow_null=True)
    error = serializers.CharField()
    created_at = serializers.DateTimeField()


class ExplanationSerializer(serializers.Serializer):
    """Why the recipient was notified or not, in words (notifications/explain.py), as the console says it."""

    verdict = serializers.CharField(
        help_text="A short machine name: read, delivered, pushed, pushed_simulated, sending, pushing, waiting, held, "
        "failed, expired, recipient_inactive, in_app_only or resolved."
    )
    summary = serializers.CharField(
        help_text="One line: the answer, with the recipient's name and times to the second."
    )
    details = serializers.ListField(
        child=serializers.CharField(), help_text="Sentences in time order, then the next step of an open delivery."
    )


class DeliveryStatusSerializer(serializers.Serializer):
    """One recipient's delivery: where it got to, when, and every attempt on the way."""

    recipient = UserSummarySerializer()
    status = serializers.ChoiceField(choices=Delivery.Status.choices)
    attempts = serializers.IntegerField(help_text="WebSocket sends so far.")
    push_attempts = serializers.IntegerField(help_text="FCM pushes tried so far.")
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)
    pushed_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True, help_text="When a resolution closed it (`resolved`).")
    next_attempt_at = serializers.DateTimeField(allow_null=True, help_text="When the retry sweep looks again.")
    failure_reason = serializers.CharField(
        help_text="no_devices, push_rejected, push_unavailable, expired, recipient_inactive or in_app_only."
    )
    last_error = serializers.CharField()
    push_simulated = serializers.BooleanField(
        help_text="Pushed by the log backend (no FCM credentials): recorded, but nothing reached a device."
    )
    attempt_log = DeliveryAttemptSerializer(many=True)
    explanation = serializers.SerializerMethodField()

    @extend_schema_field(ExplanationSerializer)
    def get_explanation(self, delivery: Delivery) -> dict:
        """From the `explanations` the view computed for the whole page at once (no query per row)."""
        return self.context["explanations"][delivery.pk].as_dict()


class PublishedNotificationSerializer(serializers.Serializer):
    """What a publisher sees of its notification: the summary above the per-recipient rows."""

    id = serializers.UUIDField()
    event = serializers.CharField()
    title = serializers.CharField()
    priority = serializers.ChoiceField(choices=Notification.Priority.choices)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    subject = serializers.CharField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolution = serializers.CharField(help_text="done, reassigned, withdrawn, decided, retracted; or empty.")
    published_by = UserSummarySerializer(allow_null=True)
    recipient_count = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField(), help_text="Deliveries per status.")
    pushed = serializers.IntegerField(
        help_text="Deliveries pushed through FCM, whatever their status now: a client that acknowledges a "
        "notification after its push makes the delivery `acknowledged`, and it still counts here."
    )
