"""Preferences and quiet hours: the rules (notifications/preferences.py), the mute at publish, and the push round's
decision (push, hold for quiet hours, never) through the real services, database and fake FCM server."""

import zoneinfo
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from notifications.explain import explain_delivery, explain_no_delivery
from notifications.models import Delivery, DeliveryAttempt, EventPreference, EventTypePolicy, UserPreferences
from notifications.preferences import PushAction, QuietHours, push_decision, push_settings_for
from notifications.services import delivery_push, notification_publish, notification_retract
from notifications.services.preferences import preferences_update
from notifications.timeline import delivery_timeline
from tests.support.factories import DepartmentFactory, DeviceFactory, UserFactory, add_members
from workflow import services as workflow

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- Quiet hours: the window, crossing midnight, and DST ---


def test_a_daytime_window_holds_inside_and_ends_at_its_end_local_time():
    window = QuietHours(time(12, 0), time(14, 0), NEW_YORK)
    # 13:00 in New York on 1 July (EDT, UTC-4) is 17:00 UTC.
    assert window.end_after(utc(2026, 7, 1, 17, 0)) == utc(2026, 7, 1, 18, 0)
    assert window.end_after(utc(2026, 7, 1, 18, 0)) is None  # the end is outside: [start, end)
    assert window.end_after(utc(2026, 7, 1, 15, 59)) is None


def test_a_window_crossing_midnight_ends_the_next_morning_in_the_evening_and_the_same_morning_after_midnight():
    window = QuietHours(time(22, 0), time(7, 0), BERLIN)
    # 23:30 Berlin on 10 January (CET, UTC+1): ends 07:00 Berlin on the 11th = 06:00 UTC.
    assert window.end_after(utc(2026, 1, 10, 22, 30)) == utc(2026, 1, 11, 6, 0)
    # 03:00 Berlin on the 11th: ends the same morning.
    assert window.end_after(utc(2026, 1, 11, 2, 0)) == utc(2026, 1, 11, 6, 0)
    # 12:00 and 21:59 Berlin: outside.
    assert window.end_after(utc(2026, 1, 11, 11, 0)) is None
    assert window.end_after(utc(2026, 1, 11, 20, 59)) is None


def test_the_window_follows_the_users_wall_clock_across_a_dst_change():
    window = QuietHours(time(22, 0), time(7, 0), BERLIN)
    # Night of 28/29 March 2026: clocks go from 02:00 CET to 03:00 CEST; 07:00 CEST is 05:00 UTC, not 06:00.
    assert window.end_after(utc(2026, 3, 28, 23, 0)) == utc(2026, 3, 29, 5, 0)
    # Night of 24/25 October 2026: back from 03:00 CEST to 02:00 CET; 07:00 CET is 06:00 UTC.
    assert window.end_after(utc(2026, 10, 24, 21, 0)) == utc(2026, 10, 25, 6, 0)


def test_an_end_in_the_skipped_hour_ends_the_window_when_the_clocks_jump():
    window = QuietHours(time(23, 0), time(2, 30), BERLIN)
    # 02:30 does not exist on 29 March 2026 in Berlin: the clock shows it first at the jump, 03:00 CEST = 01:00 UTC.
    assert window.end_after(utc(2026, 3, 28, 23, 30)) == utc(2026, 3, 29, 1, 0)
    assert window.end_after(utc(2026, 3, 29, 1, 0)) is None  # 03:00 CEST: over


def test_an_end_in_the_repeated_hour_ends_the_window_each_time_the_clock_shows_it():
    window = QuietHours(time(23, 0), time(2, 30), BERLIN)
    # 25 October 2026: 02:00-03:00 happens twice. 02:15 CEST (00:15 UTC) ends at 02:30 CEST (00:30 UTC).
    assert window.end_after(utc(2026, 10, 25, 0, 15)) == utc(2026, 10, 25, 0, 30)
    assert window.end_after(utc(2026, 10, 25, 0, 45)) is None  # 02:45 CEST
    # 02:15 CET the second time (01:15 UTC): inside again, ends at 02:30 CET (01:30 UTC).
    assert window.end_after(utc(2026, 10, 25, 1, 15)) == utc(2026, 10, 25, 1, 30)


# --- The push decision ---


@pytest.fixture
def ada(db):
    return UserFactory(username="ada")


def quiet_now(user, *, now: datetime, minutes_left: int = 30, **fields) -> UserPreferences:
    """Quiet hours for `user` (Berlin) that hold at `now` and end `minutes_left` later."""
    local = now.astimezone(BERLIN)
    return UserPreferences.objects.create(
        user=user,
        time_zone="Europe/Berlin",
        quiet_hours_start=(local - timedelta(hours=1)).time(),
        quiet_hours_end=(local + timedelta(minutes=minutes_left)).time(),
        **fields,
    )


def decide(user, notification, now):
    [preferences] = push_settings_for(user_ids=[user.pk], event=notification.event).values()
    return push_decision(notification=notification, preferences=preferences, now=now)


def test_a_user_without_preferences_is_pushed(ada):
    notification = notification_publish(event="InvoiceOverdue", title="Pay", user_ids=[ada.pk])
    assert decide(ada, notification, datetime.now(UTC)).action is PushAction.PUSH


def test_quiet_hours_hold_a_push_until_they_end_and_urgent_breaks_through_only_if_allowed(ada):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    preferences = quiet_now(ada, now=now)
    normal = notification_publish(event="InvoiceOverdue", title="Pay", user_ids=[ada.pk])
    urgent = notification_publish(event="InvoiceOverdue", title="Pay now", user_ids=[ada.pk], priority="urgent")

    held = decide(ada, normal, now)
    assert (held.action, held.until) == (PushAction.DEFER, now + timedelta(minutes=30))
    assert held.reason.startswith("Quiet hours ") and "Europe/Berlin" in held.reason
    assert decide(ada, urgent, now).action is PushAction.DEFER  # not allowed to break through (the default)

    preferences.urgent_breaks_through = True
    preferences.save()
    assert decide(ada, urgent, now).action is PushAction.PUSH
    assert decide(ada, normal, now).action is PushAction.DEFER


def test_push_off_for_an_event_or_for_everything_drops_the_push_but_not_a_mandatory_ones(ada):
    EventPreference.objects.create(user=ada, event="InvoiceOverdue", push=False)
    invoice = notification_publish(event="InvoiceOverdue", title="Pay", user_ids=[ada.pk])
    other = notification_publish(event="Ping", title="Ping", user_ids=[ada.pk])
    now = datetime.now(UTC)

    dropped = decide(ada, invoice, now)
    assert (dropped.action, dropped.reason) == (PushAction.DROP, "Push turned off by the user for InvoiceOverdue.")
    assert decide(ada, other, now).action is PushAction.PUSH

    UserPreferences.objects.create(user=ada, push_enabled=False)
    assert decide(ada, other, now).reason == "Push turned off by the user (every event)."
    EventTypePolicy.objects.create(event="InvoiceOverdue", mandatory=True)
    assert decide(ada, invoice, now).action is PushAction.PUSH  # mandatory: push-off does not apply


def test_the_organisations_default_applies_until_the_user_chooses(ada):
    EventTypePolicy.objects.create(event="Digest", default_push=False)
    digest = notification_publish(event="Digest", title="Weekly", user_ids=[ada.pk])
    assert decide(ada, digest, datetime.now(UTC)).action is PushAction.DROP
    EventPreference.objects.create(user=ada, event="Digest", push=True)
    assert decide(ada, digest, datetime.now(UTC)).action is PushAction.PUSH


def test_push_settings_of_many_users_take_one_query(db):
    users = UserFactory.create_batch(5)
    EventPreference.objects.create(user=users[0], event="Ping", push=False)
    UserPreferences.objects.create(user=users[1], push_enabled=False)
    with CaptureQueriesContext(connection) as queries:
        found = push_settings_for(user_ids=[user.pk for user in users], event="Ping")
    assert len(queries) == 1
    assert [found[user.pk].event_push and found[user.pk].push_enabled for user in users] == [
        False,
        False,
        True,
        True,
        True,
    ]


# --- The rules the database keeps ---


def test_a_mandatory_policy_cannot_be_muted_by_default_and_quiet_hours_need_both_ends(ada):
    with pytest.raises(IntegrityError):
        EventTypePolicy.objects.create(event="Alarm", mandatory=True, default_muted=True)


def test_quiet_hours_of_no_length_are_refused_by_the_database(ada):
    with pytest.raises(IntegrityError):
        UserPreferences.objects.create(user=ada, quiet_hours_start=time(8), quiet_hours_end=time(8))


# --- Mute: at publish ---


def test_a_muted_event_type_is_not_delivered_to_the_user_who_muted_it(ada):
    grace = UserFactory(username="grace")
    department = DepartmentFactory()
    add_members(department, ada, grace)
    EventPreference.objects.create(user=ada, event="Lunch", muted=True)

    direct = notification_publish(event="Lunch", title="Pizza", user_ids=[ada.pk, grace.pk])
    via_department = notification_publish(event="Lunch", title="Pasta", department_ids=[department.pk])
    other = notification_publish(event="Ping", title="Ping", department_ids=[department.pk])

    assert list(direct.deliveries.values_list("recipient__username", flat=True)) == ["grace"]
    assert list(via_department.deliveries.values_list("recipient__username", flat=True)) == ["grace"]
    assert (direct.recipient_count, other.recipient_count) == (1, 2)


def test_an_organisation_default_mute_holds_until_the_user_unmutes(ada):
    EventTypePolicy.objects.create(event="Digest", default_muted=True)
    grace = UserFactory()
    EventPreference.objects.create(user=grace, event="Digest", muted=False)
    digest = notification_publish(event="Digest", title="Weekly", user_ids=[ada.pk, grace.pk])
    assert list(digest.deliveries.values_list("recipient_id", flat=True)) == [grace.pk]


def test_a_mandatory_event_reaches_users_who_muted_it_before_it_became_mandatory(ada):
    EventPreference.objects.create(user=ada, event="Alarm", muted=True, push=False)
    EventTypePolicy.objects.create(event="Alarm", mandatory=True)
    alarm = notification_publish(event="Alarm", title="Fire drill", user_ids=[ada.pk])
    assert alarm.deliveries.get().recipient == ada


def test_the_workflows_new_task_ignores_a_mute(requester, approvers, department):
    EventPreference.objects.create(user=approvers[0], event="NewTask", muted=True)
    document = workflow.document_create(requester=requester, department=department, title="Q3", approvers=approvers)
    workflow.document_submit(document=document, submitted_by=requester)
    assert Delivery.objects.filter(notification__event="NewTask", recipient=approvers[0]).exists()


# --- The push round decides, with the real fake FCM server ---


def offline_delivery(user, **publish) -> Delivery:
    notification = notification_publish(user_ids=[user.pk], **{"event": "InvoiceOverdue", "title": "Pay", **publish})
    return Delivery.objects.get(notification=notification, recipient=user)


def test_push_off_ends_the_delivery_failed_push_off_and_nothing_reaches_fcm(ada, fcm):
    phone = DeviceFactory(user=ada)
    EventPreference.objects.create(user=ada, event="InvoiceOverdue", push=False)
    delivery = offline_delivery(ada)

    assert delivery_push(delivery_id=delivery.pk) == "failed: push_off"

    delivery.refresh_from_db()
    assert (delivery.status, delivery.failure_reason) == ("failed", "push_off")
    assert delivery.last_error == "Push turned off by the user for InvoiceOverdue."
    assert fcm.messages_to(phone.token) == []
    explanation = explain_delivery(delivery)
    assert explanation.verdict == "push_off"
    assert "push turned off by the user for InvoiceOverdue" in explanation.summary


def test_inside_quiet_hours_the_round_holds_the_push_until_they_end_without_counting_a_round(ada, fcm):
    phone = DeviceFactory(user=ada)
    now = datetime.now(UTC)
    quiet_now(ada, now=now)
    delivery = offline_delivery(ada)

    outcome = delivery_push(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert outcome.startswith("deferred until ")
    assert (delivery.status, delivery.push_attempts, delivery.push_claimed_by) == ("pending", 0, "")
    assert timedelta(minutes=29) < delivery.next_attempt_at - now <= timedelta(minutes=31)
    [attempt] = DeliveryAttempt.objects.filter(delivery=delivery, channel="fcm")
    assert (attempt.outcome, attempt.device_id) == ("deferred", None)
    assert fcm.messages_to(phone.token) == []
    explanation = explain_delivery(delivery)
    assert explanation.verdict == "quiet_hours"
    assert "quiet hours" in explanation.summary


def test_a_held_push_of_a_notification_that_expires_first_comes_due_at_its_expiry(ada, fcm):
    DeviceFactory(user=ada)
    quiet_now(ada, now=datetime.now(UTC))
    expires_at = datetime.now(UTC) + timedelta(minutes=5)
    delivery = offline_delivery(ada, expires_at=expires_at)
    delivery_push(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == expires_at


def test_a_held_push_retracted_before_quiet_hours_end_is_never_pushed(ada, fcm):
    publisher = UserFactory()
    phone = DeviceFactory(user=ada)
    quiet_now(ada, now=datetime.now(UTC))
    delivery = offline_delivery(ada, published_by_id=publisher.pk)
    delivery_push(delivery_id=delivery.pk)

    notification_retract(notification_id=delivery.notification_id, by=publisher)

    assert delivery_push(delivery_id=delivery.pk) == "skipped: already resolved"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at) == ("resolved", None)
    assert fcm.messages_to(phone.token) == []


def test_a_user_muted_after_publish_gets_no_push_for_it(ada, fcm):
    phone = DeviceFactory(user=ada)
    delivery = offline_delivery(ada)
    EventPreference.objects.create(user=ada, event="InvoiceOverdue", muted=True)
    assert delivery_push(delivery_id=delivery.pk) == "failed: push_off"
    delivery.refresh_from_db()
    assert delivery.last_error == "Muted by the user: InvoiceOverdue."
    assert fcm.messages_to(phone.token) == []


def test_why_was_a_user_who_muted_the_event_not_notified(ada):
    grace = UserFactory()
    EventPreference.objects.create(user=ada, event="Lunch", muted=True)
    lunch = notification_publish(event="Lunch", title="Pizza", user_ids=[ada.pk, grace.pk])

    explanation = explain_no_delivery(user=ada, notification=lunch)

    assert any(reason.startswith("They muted Lunch (muted by them") for reason in explanation.details)
    assert not any("muted" in reason for reason in explain_no_delivery(user=UserFactory(), notification=lunch).details)


def test_the_admin_timeline_shows_a_held_push_with_its_reason(ada, fcm):
    DeviceFactory(user=ada)
    quiet_now(ada, now=datetime.now(UTC))
    delivery = offline_delivery(ada)
    delivery_push(delivery_id=delivery.pk)

    [held] = [entry for entry in delivery_timeline(delivery) if entry.what.startswith("Push held")]
    assert (held.what, held.kind) == ("Push held: the recipient's quiet hours", "warning")
    assert held.detail.startswith("Quiet hours ") and "held until" in held.detail


def test_an_urgent_notification_breaking_through_quiet_hours_is_pushed_with_fcms_high_priority(ada, fcm):
    phone = DeviceFactory(user=ada)
    quiet_now(ada, now=datetime.now(UTC), urgent_breaks_through=True)
    delivery = offline_delivery(ada, priority="urgent")

    assert delivery_push(delivery_id=delivery.pk) == "pushed"

    [message] = fcm.accepted(phone.token)
    assert message["data"]["priority"] == "urgent"
    assert message["android"]["priority"] == "high"
    assert message["webpush"]["headers"]["Urgency"] == "high"
    assert message["apns"]["headers"]["apns-priority"] == "10"


def test_a_change_of_settings_hands_a_held_push_back_to_be_decided_again(ada, fcm):
    phone = DeviceFactory(user=ada)
    quiet_now(ada, now=datetime.now(UTC))
    delivery = offline_delivery(ada)
    delivery_push(delivery_id=delivery.pk)
    other = offline_delivery(UserFactory(), title="Someone else's")  # not ada's: untouched

    preferences_update(user_id=ada.pk, changes={"quiet_hours_start": None, "quiet_hours_end": None})

    delivery.refresh_from_db()
    assert delivery.next_attempt_at <= datetime.now(UTC)
    assert Delivery.objects.get(pk=other.pk).next_attempt_at == other.next_attempt_at
    assert delivery_push(delivery_id=delivery.pk) == "pushed"
    assert [message["data"]["notification_id"] for message in fcm.accepted(phone.token)] == [
        str(delivery.notification_id)
    ]
