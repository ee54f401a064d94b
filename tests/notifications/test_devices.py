"""Registering devices: at most NOTIFY_MAX_DEVICES_PER_USER stay active, the least recently registered go first,
even when one user's registrations arrive at the same moment; pushes reach only the active ones."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from notifications.models import Delivery, Device
from notifications.services import delivery_push, device_register, notification_publish
from notifications.services.devices import DEACTIVATED_OVER_LIMIT
from tests.support.factories import DeviceFactory, UserFactory
from tests.support.threads import Worker, wait_for_blocked_backends

LIMIT = 3


@pytest.fixture
def device_limit(settings) -> int:
    settings.NOTIFY_MAX_DEVICES_PER_USER = LIMIT
    return LIMIT


def register(user, install: str, token: str | None = None) -> tuple[Device, bool]:
    return device_register(
        user_id=user.pk, token=token or f"token-{install}", platform="android", app_install_id=install
    )


def registered_ago(user, install: str, *, minutes: int) -> Device:
    return DeviceFactory(
        user=user,
        app_install_id=install,
        token=f"token-{install}",
        last_seen_at=timezone.now() - timedelta(minutes=minutes),
    )


def active_installs(user) -> set[str]:
    return set(Device.objects.filter(user=user, active=True).values_list("app_install_id", flat=True))


@pytest.mark.django_db
class TestLimit:
    def test_one_more_device_deactivates_the_least_recently_registered(self, device_limit):
        user = UserFactory()
        # Registered first, but registered again since: the least recent registration is `middle`'s.
        first = registered_ago(user, "first", minutes=30)
        registered_ago(user, "middle", minutes=20)
        registered_ago(user, "last", minutes=10)
        register(user, "first")

        device, created = register(user, "new")

        assert created and device.active
        assert active_installs(user) == {"first", "last", "new"}
        middle = Device.objects.get(user=user, app_install_id="middle")
        assert (middle.active, middle.deactivated_reason) == (False, DEACTIVATED_OVER_LIMIT)
        assert Device.objects.get(pk=first.pk).active

    def test_registering_a_known_install_or_token_again_refreshes_it_and_deactivates_nothing(self, device_limit):
        user = UserFactory()
        for minutes, install in enumerate(["a", "b", "c"], start=1):
            registered_ago(user, install, minutes=minutes)

        device, created = register(user, "c")  # the same install, the same token
        _, moved_created = register(user, "c-reinstalled", token="token-b")  # a known token, a new install id

        assert not created and device.last_seen_at > timezone.now() - timedelta(seconds=5)
        assert moved_created  # the token left install "b" for the new install: still three devices
        assert active_installs(user) == {"a", "c", "c-reinstalled"}
        assert not Device.objects.filter(deactivated_reason=DEACTIVATED_OVER_LIMIT).exists()

    def test_a_deactivated_install_that_registers_again_comes_back_and_the_next_oldest_goes(self, device_limit):
        user = UserFactory()
        for minutes, install in [(40, "a"), (30, "b"), (20, "c"), (10, "d")]:
            registered_ago(user, install, minutes=minutes)
        register(user, "e")  # deactivates a and b
        assert active_installs(user) == {"c", "d", "e"}

        device, created = register(user, "a")

        assert not created and device.active and device.deactivated_reason == ""
        assert active_installs(user) == {"d", "e", "a"}
        assert Device.objects.get(user=user, app_install_id="c").deactivated_reason == DEACTIVATED_OVER_LIMIT

    def test_other_users_devices_do_not_count(self, device_limit):
        user, other = UserFactory(), UserFactory()
        for number in range(LIMIT):
            registered_ago(other, f"other-{number}", minutes=number + 1)

        register(user, "mine")

        assert len(active_installs(other)) == LIMIT

    def test_pushes_go_only_to_the_devices_left_active(self, device_limit, fcm):
        user = UserFactory()
        for minutes, install in [(40, "oldest"), (30, "b"), (20, "c")]:
            registered_ago(user, install, minutes=minutes)
        register(user, "newest")
        notification = notification_publish(event="Ping", title="Hello", user_ids=[user.pk])
        delivery = Delivery.objects.get(notification=notification)

        assert delivery_push(delivery_id=delivery.pk) == "pushed"

        assert fcm.messages_to("token-oldest") == []
        assert all(len(fcm.accepted(f"token-{install}")) == 1 for install in ["b", "c", "newest"])


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_of_one_user_never_leave_more_than_the_limit_active(device_limit):
    """Every registration is held at its first device statement until all of them are waiting, then released
    together: each must still count the devices the others committed."""
    user = UserFactory()
    installs = [f"install-{number}" for number in range(4 * LIMIT)]
    registrations = [Worker(register, user, install) for install in installs]

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {Device._meta.db_table} IN EXCLUSIVE MODE")
        for registration in registrations:
            registration.start()
        wait_for_blocked_backends(cursor, len(registrations))
    results = [registration.outcome() for registration in registrations]

    assert all(created for _, created in results)
    active = Device.objects.filter(user=user, active=True)
    assert active.count() == LIMIT
    latest = Device.objects.filter(user=user).order_by("-last_seen_at", "-id")[:LIMIT]
    assert set(active.values_list("pk", flat=True)) == {device.pk for device in latest}
    assert set(Device.objects.filter(user=user, active=False).values_list("deactivated_reason", flat=True)) == {
        DEACTIVATED_OVER_LIMIT
    }
