"""What was published, to whom, and what happened to each delivery.

PostgreSQL is the source of truth: the channel layer and FCM are best-effort
transports, and every gap they leave is closed from these rows (replay on
connect, the retry sweep, the FCM fallback).
"""

import secrets
import uuid
import zoneinfo

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from notifications.reserved import WORKFLOW_EVENTS, is_reserved_event

# Event names become SignalR invocation targets and client handler names.
EVENT_NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z][A-Za-z0-9_.]{0,63}\Z",
    "Start with a letter; use letters, digits, '_' and '.' only (at most 64 characters).",
)
# An event name a publisher may use: exact (`InvoiceOverdue`), or a prefix ending in `*` (`hr.*`; `*` alone: any).
EVENT_PREFIX_WILDCARD = "*"


def validate_event_pattern(pattern: str) -> None:
    """An exact event name that is not reserved, or a prefix ending in `*`."""
    if pattern == EVENT_PREFIX_WILDCARD:
        return
    EVENT_NAME_VALIDATOR(pattern.removesuffix(EVENT_PREFIX_WILDCARD))
    if not pattern.endswith(EVENT_PREFIX_WILDCARD) and is_reserved_event(pattern):
        raise ValidationError(f"'{pattern}' is reserved for the system: no publisher may use it.")


class Notification(models.Model):
    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        # May push through the recipient's quiet hours, if they allow it (UserPreferences.urgent_breaks_through).
        URGENT = "urgent", "Urgent"

    class Resolution(models.TextChoices):
        """Why the work a notification was about needs nobody any more (services/resolution.py)."""

        DONE = "done", "Done: the task was decided"
        REASSIGNED = "reassigned", "Reassigned to someone else"
        WITHDRAWN = "withdrawn", "The document was withdrawn"
        DECIDED = "decided", "The document was decided by someone else"
        RETRACTED = "retracted", "Retracted by its publisher"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event = models.CharField(max_length=64, validators=[EVENT_NAME_VALIDATOR], db_index=True)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    document = models.ForeignKey(
        "workflow.Document", on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications"
    )
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="published_notifications",
        help_text="The service user or person who published it; empty for workflow events.",
    )
    subject = models.CharField(
        max_length=128,
        blank=True,
        help_text="What it is about, e.g. task:42; resolving a subject resolves every notification with it.",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    push_allowed = models.BooleanField(
        default=True,
        help_text="Off: in-app only (socket and inbox); a recipient who is away is never pushed "
        "(their delivery ends failed `in_app_only` and waits for their next connection).",
    )
    actions = models.JSONField(
        default=list,
        blank=True,
        help_text="What its recipients may do from the notification itself: a list of "
        '{"id", "label", "requires_comment"} (services/actions.py).',
    )
    # Not a column: set by notification_publish on the instance it returns (how many deliveries it made).
    recipient_count: int

    class Meta:
        ordering = ["-created_at"]
        permissions = [("publish_notification", "Can publish notifications through the API")]
        indexes = [
            # Most notifications have no subject: only those with one are indexed (resolving looks them up).
            models.Index(fields=["subject"], condition=~models.Q(subject=""), name="notification_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.event}: {self.title}"

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


def person_name(user) -> str:
    """'Ada Lovelace (ada)', or 'ada' for a user without a name: how the admin names a person."""
    if user is None:
        return "nobody"
    full_name = user.get_full_name()
    return f"{full_name} ({user.get_username()})" if full_name else user.get_username()


# Delivery.status_kind -> what happened, in words. A simulated push shares no wording with a real one.
STATUS_LABELS = {
    "pending": "Pending: not sent yet",
    "sent": "Sent over WebSocket, not acknowledged yet",
    "acknowledged": "Acknowledged by the app",
    "read": "Read",
    "pushed": "Pushed through FCM (accepted by FCM)",
    "pushed_simulated": "Simulated push (log backend: nothing reached a phone)",
    "acknowledged_after_push": "Acknowledged late, after a push through FCM",
    "acknowledged_after_simulated_push": "Acknowledged late, after a simulated push",
    "read_after_push": "Read, after a push through FCM",
    "read_after_simulated_push": "Read, after a simulated push",
    "failed": "Failed",
    "resolved": "Resolved: the work it was about is done",
}


class Delivery(models.Model):
    """One notification for one recipient, and how far it got."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent over WebSocket"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        READ = "read", "Read"
        PUSHED = "pushed", "Pushed through FCM"
        FAILED = "failed", "Failed"
        RESOLVED = "resolved", "Resolved: the work it was about is done"

    class FailureReason(models.TextChoices):
        NO_DEVICES = "no_devices", "No active device to push to"
        PUSH_REJECTED = "push_rejected", "FCM rejected the push"
        PUSH_UNAVAILABLE = "push_unavailable", "FCM kept failing temporarily"
        EXPIRED = "expired", "Expired before it was delivered"
        RECIPIENT_INACTIVE = "recipient_inactive", "The recipient was deactivated"
        IN_APP_ONLY = "in_app_only", "In-app only: never pushed (the inbox and the next connection show it)"
        # The recipient turned push off (for this event, or for everything): in the inbox, never pushed.
        PUSH_OFF = "push_off", "Push turned off by the recipient"

    # The sweep and the push tasks work only on these; every other status is final: nothing is sent again.
    # A late acknowledgement or read (after `pushed` or `failed`) still moves the delivery on to `acknowledged`
    # or `read`: a client has it. `pushed_at` keeps the push; the failure fields are cleared (the attempt log
    # keeps what happened). See notifications/services/deliveries.py `SUPERSEDED_FAILURE`.
    OPEN_STATUSES = (Status.PENDING, Status.SENT)
    # What a resolution closes as `resolved`: whatever the recipient has not read. A read delivery stays read
    # (they saw it) and a failed one failed (it never reached them); both are final already.
    RESOLVABLE_STATUSES = (Status.PENDING, Status.SENT, Status.ACKNOWLEDGED, Status.PUSHED)

    # No single-column indexes on the two keys: `unique_delivery_per_recipient` and `delivery_recipient_status`
    # lead with them and serve those lookups. Every index costs each fan-out insert and status change
    # (1,000 rows per department notification), and two redundant ones were ~2/7 of that.
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_deliveries", db_index=False
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="WebSocket sends so far.")
    push_attempts = models.PositiveIntegerField(default=0, help_text="FCM pushes tried so far.")
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When the retry sweep looks again.")
    sent_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    pushed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=32, choices=FailureReason.choices, blank=True)
    last_error = models.TextField(blank=True)
    push_simulated = models.BooleanField(
        default=False, help_text="Pushed by the log backend: recorded, but nothing reached a device."
    )
    # Which push task owns the delivery, and until when: a task killed mid-push is
    # redelivered with the same id and carries on; anyone else waits for the lease to end.
    push_claimed_by = models.CharField(max_length=64, blank=True)
    push_claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["notification", "recipient"], name="unique_delivery_per_recipient")
        ]
        indexes = [
            models.Index(fields=["recipient", "status"], name="delivery_recipient_status"),
            models.Index(fields=["status", "next_attempt_at"], name="delivery_status_next_attempt"),
            models.Index(
                fields=["recipient", "created_at"],
                condition=models.Q(read_at__isnull=True),
                name="delivery_unread",
            ),
            # The retention pruner's way to settled deliveries, the longest unchanged first. Open rows (the
            # statuses of OPEN_STATUSES) are not in it, so fan-out inserts and sends never pay for it.
            models.Index(
                fields=["updated_at"],
                condition=~models.Q(status__in=["pending", "sent"]),
                name="delivery_settled_updated",
            ),
            # The operations console's (notifications/console/stats.py). A period's deliveries by created_at: BRIN,
            # a few pages for the whole table, and an insert only touches it when a new block range is summarized
            # (rows arrive in created_at order, so the ranges stay tight). The recent failures: failed rows only.
            BrinIndex(fields=["created_at"], name="delivery_created_brin", autosummarize=True),
            models.Index(fields=["failed_at"], condition=models.Q(status="failed"), name="delivery_failed_at"),
        ]

    def __str__(self) -> str:
        """'Invoice overdue (InvoiceOverdue) to Ada Lovelace (ada)': select the notification and recipient."""
        return f"{self.notification.title} ({self.notification.event}) to {person_name(self.recipient)}"

    @property
    def status_label(self) -> str:
        """What happened, as an operator reads it: a simulated push never reads like a real one, a failure
        gives its reason, and an acknowledgement or read after a push says so."""
        return STATUS_LABELS[self.status_kind] if self.status != self.Status.FAILED else self._failed_label()

    @property
    def status_kind(self) -> str:
        """The status, with a real and a simulated push told apart (and an ack or read after a push): the key of
        STATUS_LABELS, and the admin's status filter value and badge."""
        if self.status == self.Status.PUSHED:
            return "pushed_simulated" if self.push_simulated else "pushed"
        if self.status in (self.Status.ACKNOWLEDGED, self.Status.READ) and self.pushed_at is not None:
            return f"{self.status}_after_{'simulated_push' if self.push_simulated else 'push'}"
        return self.status

    def _failed_label(self) -> str:
        if not self.failure_reason:
            return "Failed"
        return f"Failed: {self.FailureReason(self.failure_reason).label}"

    @property
    def is_unread(self) -> bool:
        """Not read, and not resolved (a resolved one needs nobody any more): what unread counts count."""
        return self.read_at is None and self.status != self.Status.RESOLVED


# The deliveries an unread count counts (`Delivery.is_unread` as a filter).
UNREAD_DELIVERIES = models.Q(read_at__isnull=True) & ~models.Q(status=Delivery.Status.RESOLVED)


class DeliveryAttempt(models.Model):
    """One try at handing a delivery to a client, kept so anyone can see why it did or did not arrive."""

    class Channel(models.TextChoices):
        WEBSOCKET = "ws", "WebSocket"
        FCM = "fcm", "Firebase Cloud Messaging"

    class Outcome(models.TextChoices):
        SENT = "sent", "Sent"
        NO_CONNECTION = "no_connection", "No live connection"
        ACCEPTED = "accepted", "Accepted by FCM"
        SIMULATED = "simulated", "Simulated (log push backend)"
        RETRY = "retry", "Temporary error, will retry"
        REJECTED = "rejected", "Rejected"
        DEVICE_GONE = "device_gone", "Device unregistered"
        # A push that went out while the notification was being resolved: the replacement follows it.
        SUPERSEDED = "superseded", "Pushed, then superseded by its resolution"
        REPLACED = "replaced", "Replaced on the device by the resolution's push"
        # The push came due inside the recipient's quiet hours: held until they end (no device, not a round).
        DEFERRED = "deferred", "Held until the recipient's quiet hours end"

    # An FCM outcome that settles the device for this delivery: it is never pushed again.
    SETTLED_PUSH_OUTCOMES = (Outcome.ACCEPTED, Outcome.SIMULATED, Outcome.REJECTED, Outcome.DEVICE_GONE)
    DELIVERED_PUSH_OUTCOMES = (Outcome.ACCEPTED, Outcome.SIMULATED)

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    device = models.ForeignKey("Device", on_delete=models.SET_NULL, null=True, blank=True, related_name="attempts")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        # The console's push outcomes per period (notifications/console/stats.py); appended in created_at order.
        indexes = [BrinIndex(fields=["created_at"], name="attempt_created_brin", autosummarize=True)]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.get_outcome_display()} at {self.created_at:%Y-%m-%d %H:%M:%S %Z}"


class Device(models.Model):
    """A user's app install that can receive FCM pushes."""

    class Platform(models.TextChoices):
        ANDROID = "android", "Android"
        IOS = "ios", "iOS"
        WEB = "web", "Web"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices")
    token = models.CharField(max_length=512, unique=True, help_text="FCM registration token.")
    platform = models.CharField(max_length=8, choices=Platform.choices)
    app_install_id = models.CharField(max_length=128, help_text="Stable id of the app install on the device.")
    active = models.BooleanField(default=True)
    deactivated_reason = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "app_install_id"], name="unique_device_install_per_user")
        ]
        indexes = [models.Index(fields=["user", "active"], name="device_user_active")]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} device {self.app_install_id} of {person_name(self.user)}"


class IdempotencyKey(models.Model):
    """A publisher's `Idempotency-Key` and the notification it produced.

    The unique constraint is what makes retries safe under concurrency: a second
    request with the same key waits on the index until the first commits, then
    replays its result instead of publishing again. A key expires
    NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS after it was claimed (`created_at`).
    """

    publisher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON request body.")
    # Set in the same transaction that claims the key, so a committed key always has one.
    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, null=True, blank=True, related_name="idempotency_keys"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["publisher", "key"], name="unique_idempotency_key_per_publisher")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created")]  # the pruner's way in

    def __str__(self) -> str:
        return f"{self.key} by {self.publisher_id}"


class PublisherScope(models.Model):
    """What one user may publish through the API: which recipients, which event names, which documents.

    Publishing needs the `publish_notification` permission and a scope; a holder of the permission without one
    may publish nothing. Superusers are unrestricted (a scope of theirs is not consulted). Reserved event names
    and data keys (notifications/reserved.py) are refused to everyone; the workflow's own notifications pass no
    scope check. Checked by notifications/services/publisher_scope.py on every API publish.
    """

    publisher = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="publisher_scope")
    all_recipients = models.BooleanField(
        default=False, help_text="May notify every user and department (the two lists below are then not consulted)."
    )
    departments = models.ManyToManyField(
        "workflow.Department",
        blank=True,
        related_name="+",
        help_text="May notify these departments, and any of their members by name.",
    )
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+", help_text="May notify these users by name."
    )
    events = ArrayField(
        models.CharField(max_length=65, validators=[validate_event_pattern]),
        blank=True,
        default=list,
        help_text="Event names it may publish, one a line: exact (InvoiceOverdue) or a prefix ending in * "
        "(hr.*; * alone: any name). Names reserved for the system are refused whatever this says.",
    )
    may_attach_documents = models.BooleanField(
        default=False,
        help_text="May attach a document_id: a document of one of its departments (any document with all recipients).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "publisher scope"

    def __str__(self) -> str:
        return f"Publishing scope of {self.publisher}"


def validate_time_zone(name: str) -> None:
    """An IANA time zone name this machine's tz database knows (`Europe/Berlin`, `UTC`)."""
    if not is_time_zone(name):
        raise ValidationError(f"'{name}' is not a known time zone (an IANA name such as Europe/Berlin).")


def is_time_zone(name: str) -> bool:
    if not isinstance(name, str) or not name or name != name.strip():
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


class EventTypePolicy(models.Model):
    """The organisation's defaults for one event type, and whether users may mute it or turn its push off.

    The workflow's own events (notifications/reserved.py WORKFLOW_EVENTS) are mandatory whatever a row says;
    an event without a row is pushed and not muted by default. Read by notifications/preferences.py.
    """

    event = models.CharField(max_length=64, unique=True, validators=[EVENT_NAME_VALIDATOR])
    description = models.CharField(
        max_length=200, blank=True, help_text="What it is, in a few words, as users see it on their settings page."
    )
    mandatory = models.BooleanField(
        default=False, help_text="Users can neither mute it nor turn its push off (quiet hours still hold pushes)."
    )
    default_push = models.BooleanField(default=True, help_text="Pushed to users who have not chosen.")
    default_muted = models.BooleanField(default=False, help_text="Muted for users who have not chosen.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["event"]
        verbose_name = "event type policy"
        verbose_name_plural = "event type policies"
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(mandatory=True, default_muted=True), name="event_policy_mandatory_not_muted"
            )
        ]

    def __str__(self) -> str:
        return self.event

    def clean(self) -> None:
        if self.mandatory and self.default_muted:
            raise ValidationError({"default_muted": "A mandatory event cannot be muted, not even by default."})
        if self.event in WORKFLOW_EVENTS and not self.mandatory:
            raise ValidationError({"mandatory": f"{self.event} is a workflow event: it is always mandatory."})


class UserPreferences(models.Model):
    """How one user wants to be notified: their time zone, quiet hours and push switch (one row per user).

    A user without a row has the defaults: the server's time zone, no quiet hours, push on.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notify_preferences")
    time_zone = models.CharField(max_length=64, default=settings.TIME_ZONE, validators=[validate_time_zone])
    quiet_hours_start = models.TimeField(null=True, blank=True, help_text="Local time; empty: no quiet hours.")
    quiet_hours_end = models.TimeField(
        null=True, blank=True, help_text="Local time; before the start means the window crosses midnight."
    )
    urgent_breaks_through = models.BooleanField(
        default=False, help_text="Urgent notifications are pushed during quiet hours too."
    )
    push_enabled = models.BooleanField(default=True, help_text="Off: nothing is pushed (mandatory events still are).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "user preferences"
        verbose_name_plural = "user preferences"
        constraints = [
            # Both or neither; a window of no length is no window.
            models.CheckConstraint(
                condition=models.Q(quiet_hours_start__isnull=True, quiet_hours_end__isnull=True)
                | (
                    models.Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False)
                    & ~models.Q(quiet_hours_start=models.F("quiet_hours_end"))
                ),
                name="user_preferences_quiet_hours_window",
            )
        ]

    def __str__(self) -> str:
        return f"Notification preferences of {person_name(self.user)}"


class EventPreference(models.Model):
    """One user's choice for one event type; an empty choice follows the organisation's EventTypePolicy."""

    # The unique constraint leads with the event: publish reads one event's rows for all its recipients (a hash
    # join over those few rows, not a scan of everyone's); the user's own index serves their settings page.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="event_preferences")
    event = models.CharField(max_length=64, validators=[EVENT_NAME_VALIDATOR])
    push = models.BooleanField(null=True, blank=True, help_text="Empty: the organisation's default.")
    muted = models.BooleanField(null=True, blank=True, help_text="Empty: the organisation's default.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["event"]
        constraints = [models.UniqueConstraint(fields=["event", "user"], name="unique_event_preference_per_user")]

    def __str__(self) -> str:
        return f"{self.event} for {person_name(self.user)}"


def new_signing_secret() -> str:
    return secrets.token_hex(32)


class ActionCallback(models.Model):
    """Where a publisher hears that a recipient performed one of its notification's actions.

    A publisher without one cannot declare actions. Each call is a signed POST (services/action_callbacks.py):
    the publisher checks `X-NotifyHub-Signature` with `secret`, shown once here in the admin.
    """

    publisher = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="action_callback")
    url = models.URLField(max_length=500, help_text="Receives a signed JSON POST for every action performed.")
    secret = models.CharField(
        max_length=64, default=new_signing_secret, help_text="The HMAC-SHA256 key of the signature header."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "action callback"

    def __str__(self) -> str:
        return f"Action callback of {self.publisher}: {self.url}"


class ActionPerformance(models.Model):
    """A recipient performed one of a notification's actions: at most one per recipient (a repeat replays it)."""

    class Outcome(models.TextChoices):
        APPROVED = "approved", "Approved the task's step"
        REJECTED = "rejected", "Rejected the task's document"
        RECORDED = "recorded", "Recorded; the publisher is called back"

    class CallbackStatus(models.TextChoices):
        NONE = "", "No callback (a workflow action)"
        PENDING = "pending", "Calling the publisher back"
        DELIVERED = "delivered", "The publisher answered 2xx"
        FAILED = "failed", "The publisher never answered 2xx"

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="action_performances")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=32)
    comment = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    performed_at = models.DateTimeField(default=timezone.now)
    callback_status = models.CharField(max_length=16, choices=CallbackStatus.choices, blank=True)
    callback_attempts = models.PositiveIntegerField(default=0)
    callback_last_error = models.TextField(blank=True)
    callback_delivered_at = models.DateTimeField(null=True, blank=True)
    callback_due_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="While pending: when the resume sweep queues the call again if no task has tried it by then "
        "(one lost in a crash between the commit and its queueing).",
    )

    class Meta:
        ordering = ["performed_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "user"], name="one_action_per_notification_and_user")
        ]
        indexes = [
            models.Index(
                fields=["callback_due_at"], condition=models.Q(callback_status="pending"), name="action_callback_due"
            )
        ]

    def __str__(self) -> str:
        return f"{self.action} on {self.notification_id} by {self.user_id}"
