"""Explanations of deliveries (notifications/explain.py): one test per path of the delivery state machine.

The ledger is built through the real services (publish, acknowledge, read, push with the fake FCM server or
the log backend, the sweep, deactivation); then its times are set to fixed moments, so each sentence is
asserted exactly, to the second. No transaction commits here: nothing is dispatched after commit, so each
test takes the steps dispatch or the sweep would take by calling their services.
"""

from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.utils import timezone

from notifications import explain, presence
from notifications.models import Delivery, DeliveryAttempt, Device
from notifications.services import (
    deliveries_log_first_sends,
    deliveries_log_offline_pending,
    deliveries_retry_now,
    deliveries_sweep,
    delivery_acknowledge,
    delivery_mark_read,
    delivery_push,
    delivery_push_replacement,
    notification_publish,
    notifications_resolve,
    recipient_deactivated,
)
from tests.support.factories import DepartmentFactory, DeviceFactory, UserFactory, add_members
from tests.support.fake_fcm import error
from workflow import services as workflow
from workflow.models import DepartmentMembership, Document, Task

pytestmark = pytest.mark.django_db

PUBLISHED = datetime(2026, 12, 5, 14, 5, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 5, 14, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A moment `seconds` after PUBLISHED."""
    return PUBLISHED + timedelta(seconds=seconds)


@pytest.fixture
def bob(redis_client):
    return UserFactory(username="bob", first_name="Bob", last_name="Smith", date_joined=PUBLISHED - timedelta(days=30))


def publish_to(user, **kwargs) -> Delivery:
    notification = notification_publish(event="DocumentApproved", title="Travel approval", user_ids=[user.pk], **kwargs)
    return Delivery.objects.get(notification=notification)


def publish_live_to(user) -> Delivery:
    """Publish to a user who is online: the row is written `sent`, and dispatch logs that send once made."""
    delivery = publish_to(user)
    deliveries_log_first_sends(notification_id=delivery.notification_id, recipient_ids=[user.pk])
    return delivery


def go_online(redis_client, user, connections: int = 1) -> None:
    expires = timezone.now().timestamp() + 60
    redis_client.zadd(presence.presence_key(user.pk), {f"conn-{n}": expires for n in range(connections)})


def last_seen_at(redis_client, user, moment: datetime) -> None:
    redis_client.set(presence.last_seen_key(user.pk), repr(moment.timestamp()))


def rewrite(delivery: Delivery, *, attempts=(), **fields) -> Delivery:
    """Set the delivery's times (fields) and its attempts' times, in log order, to fixed moments."""
    Delivery.objects.filter(pk=delivery.pk).update(created_at=PUBLISHED, **fields)
    logged = DeliveryAttempt.objects.filter(delivery=delivery).order_by("created_at", "id")
    for attempt, moment in zip(logged, attempts, strict=True):
        DeliveryAttempt.objects.filter(pk=attempt.pk).update(created_at=moment)
    return Delivery.objects.get(pk=delivery.pk)


def explained(delivery: Delivery, now: datetime = NOW) -> explain.Explanation:
    return explain.explain_delivery(Delivery.objects.get(pk=delivery.pk), now=now)


PUBLISHED_SENTENCE = "Published at 14:05:00 UTC: “Travel approval” (event DocumentApproved, normal priority)."


# --- Settled by a client ---------------------------------------------------------------------------------------


def test_acknowledged_live(bob, redis_client):
    go_online(redis_client, bob)
    delivery = publish_live_to(bob)
    delivery_acknowledge(user_id=bob.pk, notification_id=delivery.notification_id)
    rewrite(delivery, attempts=[at(0)], sent_at=at(0), acknowledged_at=at(1.2))

    answer = explained(delivery)

    assert answer.verdict == "delivered"
    assert answer.summary == (
        "Bob Smith (bob) got it: acknowledged by a client at 14:05:01 UTC, 1.2 s after it was published."
    )
    assert answer.details == [
        PUBLISHED_SENTENCE,
        "Sent live over WebSocket at 14:05:00 UTC (they were online; send 1 of at most 3).",
        "Acknowledged by a client at 14:05:01 UTC, 1.2 s after it was published.",
    ]


def test_read(bob, redis_client):
    delivery = publish_to(bob)
    delivery_mark_read(user_id=bob.pk, notification_id=delivery.notification_id)
    rewrite(delivery, acknowledged_at=at(95), read_at=at(95))

    answer = explained(delivery)

    assert answer.verdict == "read"
    assert answer.summary == "Bob Smith (bob) got it: read at 14:06:35 UTC, 1 min 35 s after it was published."
    assert answer.details == [PUBLISHED_SENTENCE, "Read at 14:06:35 UTC, 1 min 35 s after it was published."]


def test_a_late_ack_after_a_push_keeps_the_push(bob, redis_client, fcm):
    device = DeviceFactory(user=bob)
    delivery = publish_to(bob)
    assert delivery_push(delivery_id=delivery.pk) == "pushed"
    delivery_acknowledge(user_id=bob.pk, notification_id=delivery.notification_id)
    rewrite(delivery, attempts=[at(31)], pushed_at=at(31), acknowledged_at=at(300))

    answer = explained(delivery)

    assert answer.verdict == "delivered"
    assert answer.summary == (
        "Bob Smith (bob) got it: acknowledged by a client at 14:10:00 UTC, 5 min after it was published "
        "(after a push at 14:05:31 UTC)."
    )
    assert answer.details[1:] == [
        f"Push round 1 at 14:05:31 UTC: FCM accepted it for Android device {device.pk}.",
        "Acknowledged by a client at 14:10:00 UTC, 5 min after it was published.",
    ]


def test_a_late_ack_after_a_failure_supersedes_it(bob, redis_client, fcm):
    device = DeviceFactory(user=bob)
    fcm.script(device.token, error("INVALID_ARGUMENT"))
    delivery = publish_to(bob)
    assert delivery_push(delivery_id=delivery.pk) == "failed: push_rejected"
    delivery_acknowledge(user_id=bob.pk, notification_id=delivery.notification_id)
    rewrite(delivery, attempts=[at(31)], acknowledged_at=at(600))

    answer = explained(delivery, now=at(700))

    assert answer.verdict == "delivered"
    assert answer.summary == (
        "Bob Smith (bob) got it: acknowledged by a client at 14:15:00 UTC, 10 min after it was published."
    )
    assert answer.details[1:] == [
        f"Push round 1 at 14:05:31 UTC: FCM rejected it for Android device {device.pk} "
        "(INVALID_ARGUMENT: fake INVALID_ARGUMENT).",
        "Acknowledged by a client at 14:15:00 UTC, 10 min after it was published.",
        "No push had reached a device before that; the acknowledgement supersedes that failure (a client has it).",
    ]


# --- Pushed ------------------------------------------------------------------------------------------------------


def test_pushed_to_one_of_two_devices_the_other_unregistered(bob, redis_client, fcm):
    dead, alive = DeviceFactory(user=bob), DeviceFactory(user=bob, platform=Device.Platform.IOS)
    fcm.script(dead.token, error("UNREGISTERED"))
    delivery = publish_to(bob)
    deliveries_log_offline_pending(notification_id=delivery.notification_id, recipient_ids=[bob.pk])
    assert delivery_push(delivery_id=delivery.pk) == "pushed"
    rewrite(delivery, attempts=[at(0.4), at(31), at(31)], pushed_at=at(31))
    last_seen_at(redis_client, bob, datetime(2026, 12, 5, 14, 2, 10, tzinfo=UTC))

    answer = explained(delivery)

    assert answer.verdict == "pushed"
    assert answer.summary == (
        "Bob Smith (bob) was notified by push: offline since 14:02:10 UTC on every connection; pushed to 1 of 2 "
        "devices at 14:05:31 UTC, the other was deactivated (UNREGISTERED) on 5 Dec; no client has acknowledged "
        "it yet."
    )
    assert answer.details == [
        PUBLISHED_SENTENCE,
        "No live connection at 14:05:00 UTC: offline, so it went to the push fallback.",
        f"Push round 1 at 14:05:31 UTC: Android device {dead.pk}'s token is dead (UNREGISTERED): the device was "
        f"deactivated; FCM accepted it for iOS device {alive.pk}.",
    ]


def test_pushed_by_the_log_backend_is_never_called_a_push_that_reached_anyone(bob, redis_client, settings):
    settings.NOTIFY_PUSH_BACKEND = "log"
    DeviceFactory(user=bob)
    delivery = publish_to(bob)
    assert delivery_push(delivery_id=delivery.pk) == "pushed (simulated)"
    rewrite(delivery, attempts=[at(31)], pushed_at=at(31))

    answer = explained(delivery)

    assert answer.verdict == "pushed_simulated"
    assert answer.summary == (
        "Bob Smith (bob) was not notified: offline (last seen: unknown); the push at 14:05:31 UTC was only "
        "simulated by the log push backend for 1 device (recorded, but nothing reached a phone: no FCM "
        "credentials are configured); no client has acknowledged it."
    )
    assert "pushed to" not in answer.summary


# --- Failed ------------------------------------------------------------------------------------------------------


def test_failed_no_devices(bob, redis_client, fcm):
    delivery = publish_to(bob)
    assert delivery_push(delivery_id=delivery.pk) == "failed: no_devices"
    rewrite(delivery, failed_at=at(31))

    answer = explained(delivery)

    assert answer.verdict == "failed"
    assert answer.summary == (
        "Bob Smith (bob) was not notified: offline (last seen: unknown); there was no active device to push to "
        "(failed at 14:05:31 UTC): they have never registered a device for push."
    )
    assert answer.details == [
        PUBLISHED_SENTENCE,
        "Failed at 14:05:31 UTC: no active device to push to.",
    ]


def test_failed_no_devices_when_every_token_was_dead(bob, redis_client, fcm):
    dead = DeviceFactory(user=bob)
    fcm.script(dead.token, error("UNREGISTERED"))
    delivery = publish_to(bob)
    assert delivery_push(delivery_id=delivery.pk) == "failed: no_devices"
    rewrite(delivery, attempts=[at(31)], failed_at=at(31))

    answer = explained(delivery)

    assert answer.summary == (
        "Bob Smith (bob) was not notified: offline (last seen: unknown); there was no active device to push to "
        f"(failed at 14:05:31 UTC): every token was dead at the push on 5 Dec: Android device {dead.pk} "
        "(UNREGISTERED)."
    )


def test_failed_no_devices_when_the_device_was_deactivated_before(bob, redis_client, fcm):
    old = DeviceFactory(user=bob, active=False, deactivated_reason="unregistered")
    delivery = publish_to(bob)
    assert delivery_push(delivery_id=delivery.pk) == "failed: no_devices"
    rewrite(delivery, failed_at=at(31))

    assert explained(delivery).summary.endswith(
        f"(failed at 14:05:31 UTC): their device had been deactivated: Android device {old.pk} (unregistered)."
    )


def test_failed_push_rejected(bob, redis_client, fcm):
    device = DeviceFactory(user=bob)
    fcm.script(device.token, error("INVALID_ARGUMENT"))
    delivery = publish_to(bob)
    assert delivery_push(delivery_id=delivery.pk) == "failed: push_rejected"
    rewrite(delivery, attempts=[at(31)], failed_at=at(31))

    answer = explained(delivery)

    assert answer.verdict == "failed"
    assert answer.summary == (
        "Bob Smith (bob) was not notified: offline (last seen: unknown); FCM rejected the push at 14:05:31 UTC "
        "(INVALID_ARGUMENT: fake INVALID_ARGUMENT)."
    )


def test_failed_push_unavailable(bob, redis_client, fcm, settings):
    settings.NOTIFY_MAX_PUSH_ATTEMPTS = 1
    device = DeviceFactory(user=bob)
    fcm.script(device.token, error("QUOTA_EXCEEDED"))
    delivery = publish_to(bob)
    assert delivery_push(delivery_id=delivery.pk) == "failed: push_unavailable"
    rewrite(delivery, attempts=[at(31)], failed_at=at(31))

    answer = explained(delivery)

    assert answer.summary == (
        "Bob Smith (bob) was not notified: offline (last seen: unknown); FCM kept failing temporarily for 1 push "
        "round (QUOTA_EXCEEDED: fake QUOTA_EXCEEDED); given up at 14:05:31 UTC."
    )
    assert answer.details[1] == (
        f"Push round 1 at 14:05:31 UTC: temporary error for Android device {device.pk} "
        "(QUOTA_EXCEEDED: fake QUOTA_EXCEEDED), to be retried."
    )


def test_expired_before_anyone_acknowledged_it(bob, redis_client):
    delivery = publish_to(bob, expires_at=timezone.now() + timedelta(minutes=5))
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    delivery.notification.__class__.objects.filter(pk=delivery.notification_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert deliveries_sweep()["expired"] == 1
    delivery.notification.__class__.objects.filter(pk=delivery.notification_id).update(expires_at=at(60))
    rewrite(delivery, failed_at=at(62))

    answer = explained(delivery)

    assert answer.verdict == "expired"
    assert answer.summary == (
        "Bob Smith (bob) was not notified: offline (last seen: unknown); it expired at 14:06:00 UTC before any "
        "client acknowledged it, and expired notifications are never pushed (failed at 14:06:02 UTC)."
    )
    assert answer.details == [
        "Published at 14:05:00 UTC: “Travel approval” (event DocumentApproved, normal priority; it expires at "
        "14:06:00 UTC).",
        "Failed at 14:06:02 UTC: it expired at 14:06:00 UTC (expired notifications are never pushed).",
    ]


def test_in_app_only_is_closed_without_a_push_and_says_why(bob, redis_client, fcm):
    DeviceFactory(user=bob)
    delivery = publish_to(bob, push_allowed=False)
    assert delivery_push(delivery_id=delivery.pk) == "failed: in_app_only"
    rewrite(delivery, failed_at=at(31))

    answer = explained(delivery)

    assert answer.verdict == "in_app_only"
    assert answer.summary == (
        "Bob Smith (bob) was not notified live: offline (last seen: unknown); the notification is in-app only, so it "
        "was not pushed (closed at 14:05:31 UTC); the inbox shows it and the next connection replays it."
    )
    assert fcm.requests == []


def test_recipient_deactivated(bob, redis_client):
    delivery = publish_to(bob)
    recipient_deactivated(user_id=bob.pk)
    rewrite(delivery, failed_at=at(45))

    answer = explained(delivery)

    assert answer.verdict == "recipient_inactive"
    assert answer.summary == (
        "Bob Smith (bob) was not notified: the account was deactivated; its open deliveries failed at 14:05:45 UTC."
    )


def test_recipient_deactivated_without_the_service_fails_at_the_next_step(bob, redis_client):
    delivery = publish_to(bob)
    type(bob).objects.filter(pk=bob.pk).update(is_active=False)
    rewrite(delivery, next_attempt_at=at(30))

    answer = explained(delivery, now=at(10))

    assert answer.verdict == "recipient_inactive"
    assert answer.summary == (
        "Bob Smith (bob) has not been notified: the account is deactivated; its next step fails it "
        "(recipient_inactive) (next look at 14:05:30 UTC)."
    )


# --- Open ----------------------------------------------------------------------------------------------------------


def test_sent_and_waiting_for_the_ack(bob, redis_client):
    go_online(redis_client, bob, connections=2)
    delivery = publish_live_to(bob)
    rewrite(delivery, attempts=[at(0)], sent_at=at(0), next_attempt_at=at(10))

    answer = explained(delivery, now=at(5))

    assert answer.verdict == "sending"
    # The waits double: 10 s after send 1, 20 s after send 2, 40 s after send 3; then the push.
    assert answer.summary == (
        "Bob Smith (bob) has not acknowledged it: sent live over WebSocket at 14:05:00 UTC, not acknowledged yet "
        "(1 send so far); next resend at 14:05:10 UTC if still online (a push at once if not); the push fallback "
        "comes by 14:06:10 UTC at the latest; online now with 2 live connections."
    )


def test_sent_the_last_time_then_the_push_fallback(bob, redis_client, settings):
    settings.NOTIFY_MAX_WS_ATTEMPTS = 1
    go_online(redis_client, bob)
    delivery = publish_live_to(bob)
    rewrite(delivery, attempts=[at(0)], sent_at=at(0), next_attempt_at=at(10))

    answer = explained(delivery, now=at(5))

    assert answer.summary == (
        "Bob Smith (bob) has not acknowledged it: sent live over WebSocket at 14:05:00 UTC, not acknowledged yet "
        "(1 send so far); the push fallback comes at 14:05:10 UTC unless a client acknowledges it; online now "
        "with 1 live connection."
    )


def test_pending_while_offline_a_push_queued(bob, redis_client):
    delivery = publish_to(bob)
    deliveries_log_offline_pending(notification_id=delivery.notification_id, recipient_ids=[bob.pk])
    rewrite(delivery, attempts=[at(0.3)], next_attempt_at=at(30))
    last_seen_at(redis_client, bob, datetime(2026, 12, 5, 14, 2, 10, tzinfo=UTC))

    answer = explained(delivery, now=at(3))

    assert answer.verdict == "waiting"
    assert answer.summary == (
        "Bob Smith (bob) has not been notified yet: offline at 14:05:00 UTC, so a push was queued, and no push "
        "worker has taken it yet; the retry sweep queues it again at 14:05:30 UTC; offline since 14:02:10 UTC on "
        "every connection."
    )


def test_pending_held_while_the_presence_registry_is_incomplete(bob, redis_client):
    delivery = publish_to(bob)
    rewrite(delivery, next_attempt_at=at(5))
    redis_client.delete(presence.SINCE_KEY)  # Redis has just restarted: the registry starts again

    answer = explained(delivery, now=at(1))

    assert answer.verdict == "held"
    assert answer.summary == (
        "Bob Smith (bob) has not been notified yet: pushes are held while the presence registry is rebuilt after "
        "a Redis restart (complete in 5 s); next look at 14:05:05 UTC."
    )


def test_pending_just_published(bob, redis_client):
    delivery = publish_to(bob)
    rewrite(delivery, next_attempt_at=at(30))

    answer = explained(delivery, now=at(0.5))

    assert answer.summary == (
        "Bob Smith (bob) has not been notified yet: published at 14:05:00 UTC, it is being dispatched; the retry "
        "sweep takes it at 14:05:30 UTC if dispatch does not reach them; offline (last seen: unknown)."
    )


def test_pending_never_dispatched_and_overdue(bob, redis_client):
    delivery = publish_to(bob)
    rewrite(delivery, next_attempt_at=at(30))

    answer = explained(delivery, now=at(300))

    assert answer.summary == (
        "Bob Smith (bob) has not been notified yet: it was never dispatched (the dispatch after publishing did not "
        "run, or was held while the presence registry was incomplete); the retry sweep takes it at 14:05:30 UTC; "
        "offline (last seen: unknown)."
    )
    assert answer.details[-1] == (
        "Overdue: the retry sweep should have taken it at 14:05:30 UTC (4 min 30 s ago); is Celery beat running "
        "the sweep?"
    )


def test_push_retry_scheduled_after_a_temporary_error(bob, redis_client, fcm):
    device = DeviceFactory(user=bob)
    fcm.script(device.token, error("QUOTA_EXCEEDED"))
    delivery = publish_to(bob)
    assert delivery_push(delivery_id=delivery.pk).startswith("retry in ")
    rewrite(delivery, attempts=[at(31)], next_attempt_at=at(45))

    answer = explained(delivery, now=at(40))

    assert answer.verdict == "waiting"
    assert answer.summary == (
        "Bob Smith (bob) has not been notified yet: push round 1 at 14:05:31 UTC met temporary errors "
        "(QUOTA_EXCEEDED: fake QUOTA_EXCEEDED); next round at 14:05:45 UTC (round 2 of at most 5); offline (last "
        "seen: unknown)."
    )


def test_a_push_round_under_way(bob, redis_client, settings):
    delivery = publish_to(bob)
    Delivery.objects.filter(pk=delivery.pk).update(push_attempts=1, push_claimed_by="task-1")
    rewrite(delivery, push_claimed_until=at(31 + settings.NOTIFY_PUSH_LEASE))

    answer = explained(delivery, now=at(33))

    assert answer.verdict == "pushing"
    assert answer.summary == (
        "Bob Smith (bob) has not been notified yet: push round 1 is under way since 14:05:31 UTC; offline (last "
        "seen: unknown)."
    )


def test_retry_now_by_an_admin_shows_as_a_step_brought_forward(bob, redis_client, fcm):
    device = DeviceFactory(user=bob)
    fcm.script(device.token, error("UNAVAILABLE"))
    delivery = publish_to(bob)
    assert delivery_push(delivery_id=delivery.pk).startswith("retry in ")
    round_at = DeliveryAttempt.objects.filter(delivery=delivery).last().created_at

    assert deliveries_retry_now(delivery_ids=[delivery.pk]) == 1

    brought_forward = Delivery.objects.get(pk=delivery.pk).next_attempt_at
    now = brought_forward + timedelta(seconds=1)
    answer = explained(delivery, now=now)
    earliest = round_at + timedelta(seconds=5)  # half of NOTIFY_PUSH_RETRY_DELAY (10 s): the jitter's floor
    assert (
        f"Its next round was brought forward to {explain.time_of_day(brought_forward, today=now)} (an admin's "
        f"“retry now”: the backoff after round 1 ran to {explain.time_of_day(earliest, today=now)} at the earliest)."
    ) in answer.details


# --- Presence, names, queries ---------------------------------------------------------------------------------------


def test_presence_unknown_when_redis_does_not_answer(bob, redis_client, monkeypatch):
    delivery = publish_to(bob)
    rewrite(delivery, next_attempt_at=at(30))

    def unreachable(user_ids):
        raise redis.ConnectionError("Redis is away")

    monkeypatch.setattr(presence, "lookup", unreachable)

    assert "; presence unknown (Redis did not answer)." in explained(delivery, now=at(1)).summary


def test_a_user_without_a_name_is_called_by_the_username(redis_client):
    nameless = UserFactory(username="svc-batch", first_name="", last_name="")
    delivery = publish_to(nameless)
    delivery_mark_read(user_id=nameless.pk, notification_id=delivery.notification_id)
    rewrite(delivery, acknowledged_at=at(2), read_at=at(2))

    assert explained(delivery).summary.startswith("svc-batch got it: read at 14:05:02 UTC")


def test_many_deliveries_cost_a_constant_number_of_queries(redis_client, django_assert_num_queries, settings):
    settings.NOTIFY_PUSH_BACKEND = "log"
    users = [UserFactory() for _ in range(6)]
    for user in users:
        DeviceFactory(user=user)
    notification = notification_publish(event="NewTask", title="Approve", user_ids=[user.pk for user in users])
    for delivery in Delivery.objects.filter(notification=notification)[:3]:
        delivery_push(delivery_id=delivery.pk)
    deliveries = list(Delivery.objects.filter(notification=notification))

    # The notifications, the recipients, the attempt logs, the devices: four, whatever the count.
    with django_assert_num_queries(4):
        answers = explain.explain_deliveries(deliveries)

    assert [answer.verdict for answer in answers].count("pushed_simulated") == 3


# --- No delivery at all --------------------------------------------------------------------------------------------


@pytest.fixture
def travel_request(redis_client):
    finance = DepartmentFactory(name="Finance")
    requester = UserFactory()
    add_members(finance, requester)
    document = Document.objects.create(title="Trip to Lyon", requester=requester, department=finance)
    notification = notification_publish(
        event="DocumentApproved", title="Travel approval", department_ids=[finance.pk], document_id=document.pk
    )
    type(notification).objects.filter(pk=notification.pk).update(created_at=PUBLISHED)
    notification.refresh_from_db()
    return notification


def test_no_delivery_not_a_member_of_the_documents_department(bob, travel_request):
    answer = explain.explain_no_delivery(user=bob, notification=travel_request, now=NOW)

    assert answer.verdict == "no_delivery"
    assert answer.summary == (
        "Bob Smith (bob) had no delivery of “Travel approval”: it went to 1 other recipient (published at "
        "14:05:00 UTC)."
    )
    assert answer.details == ["They are not a member of Finance, the department of the document “Trip to Lyon”."]


def test_no_delivery_joined_the_department_after_it_was_published(bob, travel_request):
    add_members(travel_request.document.department, bob)
    DepartmentMembership.objects.filter(user=bob).update(joined_at=at(120))

    answer = explain.explain_no_delivery(user=bob, notification=travel_request, now=NOW)

    assert answer.details == [
        "They joined Finance (the document's department) at 14:07:00 UTC, after it was published: a notification "
        "goes to the members at the moment it is published."
    ]


def test_no_delivery_inactive_and_created_after_it_was_published(bob, travel_request):
    add_members(travel_request.document.department, bob)
    DepartmentMembership.objects.filter(user=bob).update(joined_at=at(-60))
    type(bob).objects.filter(pk=bob.pk).update(is_active=False, date_joined=at(60))
    bob.refresh_from_db()

    answer = explain.explain_no_delivery(user=bob, notification=travel_request, now=NOW)

    assert answer.details == [
        "The account is deactivated: publishing skips deactivated accounts.",
        "The account was created at 14:06:00 UTC, after the notification was published at 14:05:00 UTC.",
    ]


def test_no_delivery_with_nothing_on_the_account_to_explain_it(bob, redis_client):
    other = UserFactory()
    notification = notification_publish(event="NewTask", title="Approve", user_ids=[other.pk])

    answer = explain.explain_no_delivery(user=bob, notification=notification)

    assert answer.details == [
        "Nothing on their account explains it: the publisher did not address them, or a department of theirs "
        "(NotifyHub records who got a notification, not whom the publisher named)."
    ]


# --- The workflow's follow-ups of an ignored task ----------------------------------------------------------------


def test_a_reminder_and_an_escalation_say_why_the_workflow_sent_them(bob, redis_client):
    department = DepartmentFactory(code="finance", remind_after=timedelta(hours=1), escalate_after=timedelta(days=2))
    department.escalation_contact = bob
    department.save(update_fields=["escalation_contact"])
    ada, linus = UserFactory(username="ada"), UserFactory(username="linus", first_name="Linus", last_name="T")
    add_members(department, ada)
    document = workflow.document_create(requester=ada, department=department, title="Trip", approvers=[linus])
    workflow.document_submit(document=document, submitted_by=ada)
    task = Task.objects.get(document=document)
    workflow.overdue_tasks_escalate(now=task.created_at + timedelta(days=2, hours=3))

    reminder = Delivery.objects.get(recipient=linus, notification__event="TaskReminder")
    escalation = rewrite(Delivery.objects.get(recipient=bob, notification__event="TaskEscalated"))

    assert (
        explained(reminder).details[1]
        == f"The workflow's reminder: task {task.pk} had waited 2 days 3 h for their decision."
    )
    assert explained(escalation).details[:2] == [
        "Published at 14:05:00 UTC: “Escalated: a task is waiting too long” (event TaskEscalated, high priority).",
        f"The workflow's escalation: Linus T had left task {task.pk} undecided for 2 days 3 h; they are the "
        "escalation contact of department finance.",
    ]
    assert all("workflow's" not in sentence for sentence in explained(publish_to(bob)).details)


def test_resolved_after_a_push_the_replacement_is_told_and_nothing_more_is_due(bob, redis_client, fcm):
    device = DeviceFactory(user=bob)
    delivery = publish_to(bob, subject="task:7")
    assert delivery_push(delivery_id=delivery.pk) == "pushed"
    notifications_resolve(subject="task:7", resolution="done")
    delivery_push_replacement(delivery_id=delivery.pk)
    delivery = rewrite(delivery, attempts=[at(31), at(95)], pushed_at=at(31), resolved_at=at(90))

    answer = explained(delivery)

    assert answer.verdict == "resolved"
    assert answer.summary == (
        "Bob Smith (bob) needs it no more: it was resolved at 14:06:30 UTC before they read it, after a push at "
        "14:05:31 UTC (done: the task was decided)."
    )
    assert answer.details == [
        PUBLISHED_SENTENCE,
        f"Push round 1 at 14:05:31 UTC: FCM accepted it for Android device {device.pk}.",
        "Resolved at 14:06:30 UTC: done: the task was decided; nothing more is sent or pushed.",
        f"Push round 2 at 14:06:35 UTC: replaced on Android device {device.pk} by the push saying it was resolved.",
    ]
