"""The admin: evidence is read-only and says what happened in words (names, labels, timelines); publishing goes
through the API's service and rules; retry now hands open deliveries to the sweep; publisher scopes are edited."""

from datetime import time, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from notifications.models import (
    Delivery,
    DeliveryAttempt,
    EventPreference,
    EventTypePolicy,
    Notification,
    PublisherScope,
    UserPreferences,
)
from notifications.services import (
    delivery_push,
    delivery_push_replacement,
    notification_publish,
    notification_retract,
    notifications_resolve,
)
from notifications.timeline import delivery_timeline
from tests.support.api import make_publisher
from tests.support.factories import (
    DepartmentFactory,
    DeviceFactory,
    PublisherScopeFactory,
    UserFactory,
    add_members,
)

pytestmark = pytest.mark.django_db

SIMULATED = "Simulated push (log backend: nothing reached a phone)"
REAL_PUSH = "Pushed through FCM (accepted by FCM)"


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def delivery_to(user, **fields) -> Delivery:
    notification = notification_publish(event="NewTask", title=f"For {user.username}", user_ids=[user.pk])
    Delivery.objects.filter(notification=notification).update(**fields)
    return Delivery.objects.get(notification=notification)


@pytest.fixture
def deliveries():
    simulated = delivery_to(
        UserFactory(username="sim", first_name="Sim", last_name="Ulated"),
        status=Delivery.Status.PUSHED,
        push_simulated=True,
        pushed_at=timezone.now(),
        next_attempt_at=None,
    )
    real = delivery_to(
        UserFactory(username="real"),
        status=Delivery.Status.PUSHED,
        push_simulated=False,
        pushed_at=timezone.now(),
        next_attempt_at=None,
    )
    no_devices = delivery_to(
        UserFactory(username="nodev"),
        status=Delivery.Status.FAILED,
        failure_reason=Delivery.FailureReason.NO_DEVICES,
        last_error="The recipient has no active device.",
        next_attempt_at=None,
    )
    pending = delivery_to(UserFactory(username="waiting"))
    return {"simulated": simulated, "real": real, "no_devices": no_devices, "pending": pending}


def changelist(admin_client, **params) -> str:
    response = admin_client.get(reverse("admin:notifications_delivery_changelist"), params)
    assert response.status_code == 200
    return response.content.decode()


def result_rows(page: str) -> str:
    return page[page.index('id="result_list"') :]


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- Names and labels ----------------------------------------------------------------------------------------


def test_the_list_names_people_and_notifications_and_says_what_happened(admin_client, deliveries):
    rows = result_rows(changelist(admin_client))

    assert "For sim (NewTask)" in rows and "Sim Ulated (sim)" in rows
    assert SIMULATED in rows
    assert REAL_PUSH in rows
    assert "Failed: No active device to push to" in rows
    assert "The recipient has no active device." in rows
    assert "→" not in rows  # no "c3d7… → 2"
    assert "nh-status--pushed_simulated" in rows and 'nh-status--pushed"' in rows  # not the same mark


def test_a_simulated_push_never_reads_like_a_real_one():
    simulated = Delivery(status=Delivery.Status.PUSHED, push_simulated=True, pushed_at=timezone.now())
    real = Delivery(status=Delivery.Status.PUSHED, push_simulated=False, pushed_at=timezone.now())
    late = Delivery(status=Delivery.Status.ACKNOWLEDGED, push_simulated=False, pushed_at=timezone.now())

    assert simulated.status_label == SIMULATED
    assert real.status_label == REAL_PUSH
    assert "FCM" not in simulated.status_label and "Simulated" not in real.status_label
    assert late.status_label == "Acknowledged late, after a push through FCM"
    assert Delivery(status="failed", failure_reason="push_rejected").status_label == "Failed: FCM rejected the push"


def test_str_names_the_notification_and_the_person(deliveries):
    delivery = Delivery.objects.select_related("notification", "recipient").get(pk=deliveries["simulated"].pk)

    assert str(delivery) == "For sim (NewTask) to Sim Ulated (sim)"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "failed"}, ["no_devices"]),
        ({"failure_reason__exact": "no_devices"}, ["no_devices"]),
        ({"push": "simulated"}, ["simulated"]),
        ({"push": "real"}, ["real"]),
        ({"status": "pushed_simulated"}, ["simulated"]),
        ({"status": "pushed"}, ["real"]),
        ({"status": "pending"}, ["pending"]),
    ],
)
def test_filters_by_status_failure_reason_and_simulated(admin_client, deliveries, params, expected):
    page = changelist(admin_client, **params)

    shown = [name for name, delivery in deliveries.items() if f"For {delivery.recipient.username}" in page]
    assert shown == expected


def test_the_filters_never_call_a_simulated_push_an_fcm_push(admin_client, deliveries):
    page = changelist(admin_client)
    filters = page[page.index('id="changelist-filter"') :]

    assert f'?status=pushed_simulated" title="{SIMULATED}"' in filters or f">{SIMULATED}</a>" in filters
    assert f">{REAL_PUSH}</a>" in filters
    assert "Simulated (log backend)" not in filters


def test_a_bad_filter_value_is_not_a_500(admin_client, deliveries):
    response = admin_client.get(reverse("admin:notifications_delivery_changelist"), {"notification": "nope"})

    assert response.status_code in (200, 302)


# --- Evidence is read-only -----------------------------------------------------------------------------------


@pytest.fixture
def evidence(deliveries):
    user = deliveries["pending"].recipient
    device = DeviceFactory(user=user, app_install_id="pixel-8")
    attempt = DeliveryAttempt.objects.create(delivery=deliveries["pending"], channel="ws", outcome="no_connection")
    return {
        "notification": deliveries["pending"].notification,
        "delivery": deliveries["pending"],
        "deliveryattempt": attempt,
        "device": device,
    }


@pytest.mark.parametrize("model", ["notification", "delivery", "deliveryattempt", "device"])
def test_evidence_pages_have_no_save_or_delete_and_refuse_posts(admin_client, evidence, model):
    obj = evidence[model]
    change_url = reverse(f"admin:notifications_{model}_change", args=[obj.pk])

    page = admin_client.get(change_url).content.decode()
    posted = admin_client.post(change_url, {"_save": "Save"})
    deleted = admin_client.post(reverse(f"admin:notifications_{model}_delete", args=[obj.pk]), {"post": "yes"})
    listing = admin_client.get(reverse(f"admin:notifications_{model}_changelist")).content.decode()

    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert "deletelink" not in page
    assert posted.status_code == 403
    assert deleted.status_code == 403
    assert "delete_selected" not in listing
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_evidence_stays_read_only_even_for_staff_granted_every_permission(client, evidence):
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(content_type__app_label="notifications"))
    client.force_login(clerk)
    delivery = evidence["delivery"]
    change_url = reverse("admin:notifications_delivery_change", args=[delivery.pk])

    page = client.get(change_url).content.decode()

    assert 'name="_save"' not in page and "deletelink" not in page
    assert client.post(change_url, {"_save": "Save"}).status_code == 403
    assert Delivery.objects.filter(pk=delivery.pk).exists()


@pytest.mark.parametrize("model", ["delivery", "deliveryattempt", "device"])
def test_evidence_cannot_be_added(admin_client, model):
    assert admin_client.get(reverse(f"admin:notifications_{model}_add")).status_code == 403


def test_the_notification_list_add_leads_to_the_publish_form(admin_client):
    listing = admin_client.get(reverse("admin:notifications_notification_changelist")).content.decode()
    page = admin_client.get(reverse("admin:notifications_notification_add"))

    assert reverse("admin:notifications_notification_add") in listing and "Publish a notification</a>" in listing
    assert page.status_code == 200
    assert "Publish a notification" in page.content.decode()
    assert 'value="Publish"' in page.content.decode()


# --- Publishing from the admin -------------------------------------------------------------------------------


def publish_form(**fields) -> dict:
    return {"event": "InvoiceOverdue", "title": "Invoice 42 is overdue", "body": "", "priority": "normal", **fields}


def test_publishing_creates_deliveries_through_the_service_and_opens_the_notification(admin_client):
    ada, bob, carol = UserFactory(username="ada"), UserFactory(username="bob"), UserFactory(username="carol")
    finance = DepartmentFactory(code="finance")
    add_members(finance, bob, carol)
    expires_at = (timezone.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")

    response = admin_client.post(
        reverse("admin:notifications_notification_add"),
        publish_form(users=[ada.pk, bob.pk], departments=[finance.pk], priority="high", expires_at=expires_at),
    )

    notification = Notification.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:notifications_notification_change", args=[notification.pk])
    assert messages_of(response) == ["Published to 3 recipients."]
    assert set(notification.deliveries.values_list("recipient__username", flat=True)) == {"ada", "bob", "carol"}
    assert (notification.event, notification.priority) == ("InvoiceOverdue", "high")
    assert notification.published_by.username == "root"
    assert notification.expires_at is not None


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({}, "Choose at least one user or department"),
        ({"event": "not a name"}, "Start with a letter"),
        ({"event": "NewTask"}, "The event name &#x27;NewTask&#x27; is reserved for the system"),
        ({"expires_at": "2001-01-01T00:00:00"}, "Must be in the future."),
    ],
)
def test_the_publish_form_refuses_what_the_api_refuses(admin_client, fields, error):
    if fields.get("event") == "NewTask":
        fields["users"] = [UserFactory().pk]

    response = admin_client.post(reverse("admin:notifications_notification_add"), publish_form(**fields))

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Notification.objects.exists()


def test_a_publish_that_would_reach_nobody_is_a_form_error(admin_client):
    empty = DepartmentFactory(code="empty")
    add_members(empty, UserFactory(is_active=False))

    response = admin_client.post(reverse("admin:notifications_notification_add"), publish_form(departments=[empty.pk]))

    assert response.status_code == 200
    assert "Nobody would receive it" in response.content.decode()
    assert not Notification.objects.exists()


def staff_publisher(**scope):
    publisher = make_publisher(username="clerk", is_staff=True, scope=scope)
    publisher.user_permissions.add(Permission.objects.get(codename="view_notification"))
    return publisher


def test_a_staff_publisher_is_held_to_its_scope(client):
    allowed, other = UserFactory(username="allowed"), UserFactory(username="other")
    client.force_login(staff_publisher(all_recipients=False, users=[allowed], events=["erp.*"]))

    refused = client.post(reverse("admin:notifications_notification_add"), publish_form(users=[other.pk]))
    published = client.post(
        reverse("admin:notifications_notification_add"), publish_form(event="erp.invoice", users=[allowed.pk])
    )

    page = refused.content.decode()
    assert refused.status_code == 200
    assert "is outside your publishing scope" in page
    assert "other" in page
    assert published.status_code == 302
    assert Notification.objects.get().deliveries.get().recipient == allowed


def test_staff_without_the_publishing_permission_may_not_publish(client):
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_notification"))
    client.force_login(clerk)

    listing = client.get(reverse("admin:notifications_notification_changelist")).content.decode()
    response = client.post(reverse("admin:notifications_notification_add"), publish_form(users=[clerk.pk]))

    assert reverse("admin:notifications_notification_add") not in listing
    assert response.status_code == 403
    assert not Notification.objects.exists()


def test_a_non_staff_user_is_sent_to_the_admin_login(client):
    client.force_login(UserFactory())

    response = client.get(reverse("admin:notifications_notification_add"))

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- Retry now -----------------------------------------------------------------------------------------------


def test_retry_now_hands_only_open_deliveries_to_the_next_sweep_and_says_so(admin_client, deliveries):
    before = timezone.now()

    response = admin_client.post(
        reverse("admin:notifications_delivery_changelist"),
        {"action": "retry_now", "_selected_action": [delivery.pk for delivery in deliveries.values()]},
    )

    assert response.status_code == 302
    assert Delivery.objects.get(pk=deliveries["pending"].pk).next_attempt_at >= before
    assert Delivery.objects.get(pk=deliveries["no_devices"].pk).next_attempt_at is None
    assert messages_of(response) == [
        "1 open delivery will be retried at the next sweep. 3 closed (they are acknowledged, read, pushed or "
        "failed) left alone: nothing is sent again once a delivery is closed."
    ]


def test_an_open_deliverys_page_has_a_retry_now_button(admin_client, deliveries):
    pending, failed = deliveries["pending"], deliveries["no_devices"]
    retry_url = reverse("admin:notifications_delivery_retry_now", args=[pending.pk])

    open_page = admin_client.get(reverse("admin:notifications_delivery_change", args=[pending.pk])).content.decode()
    closed_page = admin_client.get(reverse("admin:notifications_delivery_change", args=[failed.pk])).content.decode()
    response = admin_client.post(retry_url)
    closed = admin_client.post(reverse("admin:notifications_delivery_retry_now", args=[failed.pk]))

    assert "Retry now" in open_page and retry_url in open_page
    assert "Retry now" not in closed_page
    assert response.status_code == 302
    assert messages_of(response) == ["1 open delivery will be retried at the next sweep."]
    assert "1 closed (it is acknowledged, read, pushed or failed) left alone" in messages_of(closed)[-1]
    assert admin_client.get(retry_url).status_code == 405


# --- The delivery's timeline ---------------------------------------------------------------------------------


def test_the_timeline_tells_the_delivery_in_words_and_in_order():
    user = UserFactory(username="ada", first_name="Ada", last_name="Lovelace")
    device = DeviceFactory(user=user, app_install_id="pixel-8")
    publisher = UserFactory(username="erp")
    notification = notification_publish(
        event="InvoiceOverdue", title="Invoice 42", user_ids=[user.pk], published_by_id=publisher.pk
    )
    delivery = Delivery.objects.get(notification=notification)
    start = notification.created_at
    for seconds, channel, outcome, error in [
        (1, "ws", "no_connection", ""),
        (30, "fcm", "retry", "UNAVAILABLE: try later"),
        (60, "fcm", "simulated", "log backend: no device was contacted"),
    ]:
        DeliveryAttempt.objects.create(
            delivery=delivery,
            channel=channel,
            outcome=outcome,
            device=device if channel == "fcm" else None,
            error=error,
            created_at=start + timedelta(seconds=seconds),
        )
    Delivery.objects.filter(pk=delivery.pk).update(
        status="acknowledged",
        pushed_at=start + timedelta(seconds=60),
        push_simulated=True,
        acknowledged_at=start + timedelta(seconds=90),
    )

    timeline = delivery_timeline(delivery)

    assert [entry.what for entry in timeline] == [
        "Published: Invoice 42",
        "Delivery created for Ada Lovelace (ada)",
        "No live connection: nothing sent over WebSocket",
        "FCM answered with a temporary error: will retry",
        SIMULATED,
        "Acknowledged late, after the push",
    ]
    assert timeline[0].detail == "InvoiceOverdue, published by " + str(publisher.get_full_name()) + " (erp)"
    assert timeline[3].detail == "Android device, install pixel-8; UNAVAILABLE: try later"
    assert timeline[3].at_text.endswith(" UTC") and len(timeline[3].at_text) == len("2026-12-05 14:05:31 UTC")
    assert [entry.at for entry in timeline] == sorted(entry.at for entry in timeline)


def test_resends_and_failures_are_spelled_out():
    user = UserFactory()
    notification = notification_publish(event="NewTask", title="Task", user_ids=[user.pk])
    delivery = Delivery.objects.get(notification=notification)
    start = notification.created_at
    for seconds in (1, 40):
        DeliveryAttempt.objects.create(
            delivery=delivery, channel="ws", outcome="sent", created_at=start + timedelta(seconds=seconds)
        )
    Delivery.objects.filter(pk=delivery.pk).update(
        status="failed", failure_reason="no_devices", failed_at=start + timedelta(seconds=90), last_error="none"
    )

    whats = [entry.what for entry in delivery_timeline(delivery)]

    assert whats[2:] == [
        "Sent over WebSocket (send 1)",
        "Sent over WebSocket (send 2: a retry or a replay on connect, the earlier one was not acknowledged)",
        "Failed: No active device to push to",
    ]
    assert "published by the workflow" in delivery_timeline(delivery)[0].detail


def test_a_retracted_notification_ends_its_timeline_resolved_and_names_a_superseded_push():
    user = UserFactory()
    publisher = UserFactory(username="erp")
    notification = notification_publish(
        event="InvoiceOverdue", title="Invoice 42", user_ids=[user.pk], published_by_id=publisher.pk
    )
    delivery = Delivery.objects.get(notification=notification)
    DeliveryAttempt.objects.create(delivery=delivery, channel="fcm", outcome="superseded")

    notification_retract(notification_id=notification.pk, by=publisher)

    timeline = delivery_timeline(delivery)
    assert timeline[-2].what == "Pushed through FCM while the work was being done: superseded"
    assert timeline[-1].what == "Resolved: Retracted by its publisher"
    assert timeline[-1].detail.startswith("Nothing more is sent or pushed") and timeline[-1].kind == "success"


def test_the_delivery_page_shows_the_timeline_and_the_raw_fields(admin_client):
    user = UserFactory()
    device = DeviceFactory(user=user, app_install_id="pixel-8")
    delivery = delivery_to(user, status=Delivery.Status.SENT)
    DeliveryAttempt.objects.create(delivery=delivery, channel="ws", outcome="sent")
    DeliveryAttempt.objects.create(
        delivery=delivery, channel="fcm", outcome="retry", device=device, error="QUOTA_EXCEEDED: slow down"
    )

    response = admin_client.get(reverse("admin:notifications_delivery_change", args=[delivery.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert page.index("Timeline") < page.index("Raw fields") < page.index("ttempt log (raw)")
    assert "FCM answered with a temporary error: will retry" in page
    assert "Android device, install pixel-8; QUOTA_EXCEEDED: slow down" in page
    assert "Temporary error, will retry" in page  # the raw attempt log
    assert f"For {user.username} (NewTask) to" in page  # the title names it
    assert "?user=" in page and "Why?" in page


# --- The notification's page ---------------------------------------------------------------------------------


def department_notification(size: int) -> Notification:
    department = DepartmentFactory()
    members = UserFactory.create_batch(size)
    add_members(department, *members)
    return notification_publish(event="Announcement", title="All hands", department_ids=[department.pk])


def notification_page(admin_client, notification, **params) -> str:
    response = admin_client.get(reverse("admin:notifications_notification_change", args=[notification.pk]), params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_notification_page_says_what_was_published_and_where_the_deliveries_are(admin_client):
    publisher = UserFactory(username="erp", first_name="Erp", last_name="System")
    ada, bob, carol = (UserFactory(username=name) for name in ("ada", "bob", "carol"))
    notification = notification_publish(
        event="InvoiceOverdue",
        title="Invoice 42",
        body="Please pay.",
        user_ids=[ada.pk, bob.pk, carol.pk],
        published_by_id=publisher.pk,
        priority="high",
    )
    Delivery.objects.filter(recipient=bob).update(status="pushed", push_simulated=True, pushed_at=timezone.now())
    Delivery.objects.filter(recipient=carol).update(status="failed", failure_reason="no_devices")

    page = notification_page(admin_client, notification)

    assert "Invoice 42" in page and "InvoiceOverdue" in page and "Please pay." in page and "High" in page
    assert "Erp System (erp)" in page
    assert notification.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") in page
    summary = page[page.index("Where the deliveries are") : page.index("Recipients (")]
    for label in ("Pending: not sent yet", SIMULATED, "Failed: No active device to push to"):
        assert f"{label}</span>" in summary
    assert f"notification={notification.pk}&amp;status=pushed_simulated" in summary
    assert "status=failed&amp;failure_reason__exact=no_devices" in summary
    why = reverse("admin:console-why") + f"?user=ada&amp;notification={notification.pk}"
    assert why in page
    assert 'name="_save"' not in page and "deletelink" not in page


def test_the_notification_and_delivery_pages_say_when_and_why_it_was_resolved(admin_client):
    publisher = UserFactory(username="erp")
    ada = UserFactory(username="ada")
    notification = notification_publish(
        event="InvoiceOverdue", title="Invoice 42", user_ids=[ada.pk], published_by_id=publisher.pk
    )
    assert "not yet" in notification_page(admin_client, notification)

    notification_retract(notification_id=notification.pk, by=publisher)

    notification.refresh_from_db()
    page = notification_page(admin_client, notification)
    resolved = notification.resolved_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"{resolved}: Retracted by its publisher" in page
    assert f"Resolved {resolved}" in page  # the recipient's row
    delivery = Delivery.objects.get(notification=notification)
    delivery_page = admin_client.get(reverse("admin:notifications_delivery_change", args=[delivery.pk]))
    assert "Resolved: Retracted by its publisher" in delivery_page.content.decode()


def test_the_recipients_are_searchable_and_paginated(admin_client):
    notification = department_notification(60)
    first = Delivery.objects.filter(notification=notification).select_related("recipient").first().recipient
    first.first_name = "Zebedee"
    first.save()

    page_one = notification_page(admin_client, notification)
    page_two = notification_page(admin_client, notification, page=2)
    found = notification_page(admin_client, notification, q="zebedee")

    def rows(page):
        table = page[page.index('id="recipients"') : page.index("</table>", page.index('id="recipients"'))]
        return table.count(">Timeline</a>")

    assert "Recipients (60)" in page_one
    assert (rows(page_one), rows(page_two)) == (50, 10)
    assert "Page 2 of 2" in page_two
    assert rows(found) == 1 and "Recipients (1 matching “zebedee”)" in found


def test_the_notification_pages_queries_do_not_grow_with_its_recipients(admin_client, django_assert_max_num_queries):
    small, large = department_notification(5), department_notification(300)
    notification_page(admin_client, small)  # the session and permission caches warm up

    with django_assert_max_num_queries(QUERY_BUDGET) as small_queries:
        notification_page(admin_client, small)
    with django_assert_max_num_queries(QUERY_BUDGET) as large_queries:
        notification_page(admin_client, large)

    assert len(large_queries.captured_queries) == len(small_queries.captured_queries)


QUERY_BUDGET = 8  # measured: 7 (session, user, notification, summary, count, page, and one of the admin's)


def test_the_delivery_list_has_no_query_per_row(admin_client, django_assert_max_num_queries):
    department_notification(3)
    changelist(admin_client)
    with django_assert_max_num_queries(20) as few:
        changelist(admin_client)
    department_notification(40)
    with django_assert_max_num_queries(20) as many:
        changelist(admin_client)

    assert len(many.captured_queries) == len(few.captured_queries)


# --- Publisher scopes ----------------------------------------------------------------------------------------


def scope_form(publisher, **fields) -> dict:
    return {
        "publisher": publisher.pk,
        "departments": [],
        "users": [],
        "events": "",
        "_save": "Save",
        **fields,
    }


def test_a_scope_is_added_and_edited_in_the_admin(admin_client):
    publisher = make_publisher(without_scope=True)
    finance, it = DepartmentFactory(code="finance"), DepartmentFactory(code="it")
    named = UserFactory()

    response = admin_client.post(
        reverse("admin:notifications_publisherscope_add"),
        scope_form(publisher, departments=[finance.pk], users=[named.pk], events="InvoiceOverdue\r\nhr.*\r\n\r\n"),
    )

    assert response.status_code == 302, response.content.decode()[-3000:]
    scope = PublisherScope.objects.get(publisher=publisher)
    assert scope.events == ["InvoiceOverdue", "hr.*"]
    assert list(scope.departments.all()) == [finance]
    assert list(scope.users.all()) == [named]
    assert not scope.all_recipients and not scope.may_attach_documents

    change_url = reverse("admin:notifications_publisherscope_change", args=[scope.pk])
    page = admin_client.get(change_url).content.decode()
    assert "InvoiceOverdue\nhr.*</textarea>" in page  # one pattern a line, as it was typed
    assert "Holds notifications.publish_notification: may publish within this scope." in page

    response = admin_client.post(
        change_url, scope_form(publisher, departments=[it.pk], events="*", may_attach_documents="on")
    )

    assert response.status_code == 302
    scope.refresh_from_db()
    assert scope.events == ["*"] and scope.may_attach_documents
    assert list(scope.departments.all()) == [it]
    assert not scope.users.exists()


@pytest.mark.parametrize(
    ("events", "error"),
    [
        ("NewTask", "&#x27;NewTask&#x27; is reserved for the system"),
        ("notificationsread", "&#x27;notificationsread&#x27; is reserved for the system"),
        ("hr.leave\nnot a name", "Start with a letter"),
        ("*hr", "Start with a letter"),
    ],
)
def test_the_admin_refuses_reserved_and_malformed_event_patterns(admin_client, events, error):
    publisher = make_publisher(without_scope=True)

    response = admin_client.post(
        reverse("admin:notifications_publisherscope_add"), scope_form(publisher, events=events)
    )

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not PublisherScope.objects.exists()


def test_the_scope_list_and_a_scope_without_the_permission_say_so(admin_client):
    scope = PublisherScopeFactory(events=["erp.*"], publisher=UserFactory(username="no-permission"))

    listing = admin_client.get(reverse("admin:notifications_publisherscope_changelist")).content.decode()
    change = admin_client.get(reverse("admin:notifications_publisherscope_change", args=[scope.pk])).content.decode()

    assert "no-permission" in listing and "erp.*" in listing
    assert "Missing: grant notifications.publish_notification" in change


def test_an_in_app_only_delivery_closes_without_a_push_and_says_so():
    user = UserFactory()
    notification = notification_publish(
        event="TaskDelegated", title="Task delegated", user_ids=[user.pk], push_allowed=False
    )
    delivery = Delivery.objects.get(notification=notification)
    Delivery.objects.filter(pk=delivery.pk).update(
        status="failed", failure_reason="in_app_only", failed_at=notification.created_at + timedelta(seconds=5)
    )

    timeline = delivery_timeline(delivery)

    assert timeline[0].detail == "TaskDelegated, published by the workflow; in-app only: never pushed"
    assert (timeline[-1].what, timeline[-1].kind) == ("Closed without a push: in-app only", "info")


def test_a_resolved_delivery_ends_its_timeline_resolved_after_its_push_and_replacement(fcm):
    user = UserFactory()
    DeviceFactory(user=user)
    notification = notification_publish(event="NewTask", title="Task", user_ids=[user.pk], subject="task:1")
    delivery = Delivery.objects.get(notification=notification)
    assert delivery_push(delivery_id=delivery.pk) == "pushed"
    notifications_resolve(subject="task:1", resolution="done")
    delivery_push_replacement(delivery_id=delivery.pk)  # queued after commit, which this test never reaches

    timeline = delivery_timeline(delivery)

    assert [entry.what for entry in timeline][2:] == [
        "Pushed through FCM: accepted",
        "Resolved: Done: the task was decided",
        "Replaced on the device by the resolution's push",
    ]
    assert timeline[3].kind == "success"


# --- Preferences: organisation defaults edited, users' choices shown ---


def test_an_admin_lists_an_event_type_with_its_defaults_and_sees_how_many_users_chose_otherwise(admin_client):
    response = admin_client.post(
        reverse("admin:notifications_eventtypepolicy_add"),
        {"event": "InvoiceOverdue", "description": "An invoice is overdue", "default_push": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    EventPreference.objects.create(user=UserFactory(), event="InvoiceOverdue", push=False)
    EventPreference.objects.create(user=UserFactory(), event="InvoiceOverdue", muted=True)

    page = admin_client.get(reverse("admin:notifications_eventtypepolicy_changelist")).content.decode()

    assert "InvoiceOverdue" in page and '<td class="field-choices">2</td>' in page
    assert EventTypePolicy.objects.get().default_push is True


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"event": "Alarm", "mandatory": "on", "default_muted": "on"}, "A mandatory event cannot be muted"),
        ({"event": "NewTask"}, "NewTask is a workflow event: it is always mandatory."),
        ({"event": "bad name"}, "Start with a letter"),
    ],
)
def test_an_event_type_policy_the_rules_refuse_is_shown_in_the_form_and_not_saved(admin_client, fields, message):
    response = admin_client.post(reverse("admin:notifications_eventtypepolicy_add"), fields)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not EventTypePolicy.objects.exists()


def test_a_users_preferences_are_shown_read_only_with_their_event_choices(admin_client):
    ada = UserFactory(username="ada")
    preferences = UserPreferences.objects.create(
        user=ada, time_zone="Europe/Berlin", quiet_hours_start=time(22), quiet_hours_end=time(7)
    )
    EventPreference.objects.create(user=ada, event="Digest", muted=True)

    listing = admin_client.get(reverse("admin:notifications_userpreferences_changelist")).content.decode()
    page = admin_client.get(reverse("admin:notifications_userpreferences_change", args=[preferences.pk]))

    assert "22:00–07:00" in listing and "Europe/Berlin" in listing
    assert page.status_code == 200
    content = page.content.decode()
    assert "<li>Digest: push default, muted</li>" in content and 'name="time_zone"' not in content  # not editable
    assert admin_client.get(reverse("admin:notifications_userpreferences_add")).status_code == 403
