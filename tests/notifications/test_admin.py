"""The admin explains every delivery (status with simulated/failure marked, filters, the attempt log) and edits
publisher scopes."""

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import Delivery, DeliveryAttempt, PublisherScope
from notifications.services import notification_publish
from tests.support.api import make_publisher
from tests.support.factories import DepartmentFactory, DeviceFactory, PublisherScopeFactory, UserFactory

pytestmark = pytest.mark.django_db


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
        UserFactory(username="sim"),
        status=Delivery.Status.PUSHED,
        push_simulated=True,
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
    return {"simulated": simulated, "no_devices": no_devices, "pending": pending}


def changelist(admin_client, **params) -> str:
    response = admin_client.get(reverse("admin:notifications_delivery_changelist"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_list_marks_simulated_pushes_and_failure_reasons(admin_client, deliveries):
    page = changelist(admin_client)

    assert "pushed (simulated: log backend, no device reached)" in page
    assert "failed: no_devices" in page
    assert "The recipient has no active device." in page


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "failed"}, "no_devices"),
        ({"failure_reason__exact": "no_devices"}, "no_devices"),
        ({"push": "simulated"}, "simulated"),
        ({"status__exact": "pending"}, "pending"),
    ],
)
def test_filters_by_status_failure_reason_and_simulated(admin_client, deliveries, params, expected):
    page = changelist(admin_client, **params)

    shown = [name for name, delivery in deliveries.items() if f"For {delivery.recipient.username}" in page]
    assert shown == [expected]


def test_a_delivery_shows_its_attempt_log(admin_client):
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
    assert "QUOTA_EXCEEDED: slow down" in page
    assert "Temporary error, will retry" in page
    assert "android device of" in page


def test_retry_now_hands_only_open_deliveries_to_the_next_sweep(admin_client, deliveries):
    before = timezone.now()

    response = admin_client.post(
        reverse("admin:notifications_delivery_changelist"),
        {"action": "retry_now", "_selected_action": [delivery.pk for delivery in deliveries.values()]},
    )

    assert response.status_code == 302
    pending = Delivery.objects.get(pk=deliveries["pending"].pk)
    assert pending.next_attempt_at >= before
    assert Delivery.objects.get(pk=deliveries["no_devices"].pk).next_attempt_at is None


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
