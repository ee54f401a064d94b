"""/api/devices/: register, list and forget one's own FCM devices."""

import pytest

from notifications.models import Device
from tests.support.api import assert_error, client_for
from tests.support.factories import DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/devices/"


def register(client, **overrides):
    body = {"token": "fcm-token-a", "platform": "android", "app_install_id": "install-1", **overrides}
    return client.post(URL, body, format="json")


def test_registering_a_new_install_creates_an_active_device():
    user = UserFactory()

    response = register(client_for(user))

    assert response.status_code == 201, response.content
    device = Device.objects.get(user=user)
    assert response.json() == {
        "id": device.pk,
        "platform": "android",
        "app_install_id": "install-1",
        "token": "fcm-token-a",
        "active": True,
        "deactivated_reason": "",
        "created_at": response.json()["created_at"],
        "last_seen_at": response.json()["last_seen_at"],
    }


def test_registering_again_from_the_same_install_replaces_its_token_and_reactivates_it():
    user = UserFactory()
    client = client_for(user)
    first = register(client).json()
    Device.objects.filter(pk=first["id"]).update(active=False, deactivated_reason="unregistered")

    response = register(client, token="fcm-token-b", platform="ios")

    assert response.status_code == 200
    assert response.json()["id"] == first["id"]
    device = Device.objects.get(user=user)
    assert (device.token, device.platform, device.active, device.deactivated_reason) == (
        "fcm-token-b",
        "ios",
        True,
        "",
    )


def test_a_token_that_moves_to_another_user_leaves_its_previous_owner():
    previous, new = UserFactory(), UserFactory()
    DeviceFactory(user=previous, token="shared-phone-token", app_install_id="install-1")

    response = register(client_for(new), token="shared-phone-token", app_install_id="install-1")

    assert response.status_code == 201
    assert list(Device.objects.values_list("user_id", "token")) == [(new.pk, "shared-phone-token")]
    assert client_for(previous).get(URL).json() == []


def test_past_the_device_limit_the_least_recently_registered_device_is_deactivated(settings):
    settings.NOTIFY_MAX_DEVICES_PER_USER = 2
    user = UserFactory()
    client = client_for(user)
    for number in range(3):
        assert register(client, token=f"token-{number}", app_install_id=f"install-{number}").status_code == 201

    devices = client.get(URL).json()

    assert [(device["app_install_id"], device["active"], device["deactivated_reason"]) for device in devices] == [
        ("install-2", True, ""),
        ("install-1", True, ""),
        ("install-0", False, "device_limit"),
    ]


def test_list_shows_only_ones_own_devices():
    user, other = UserFactory(), UserFactory()
    mine = DeviceFactory(user=user)
    DeviceFactory(user=other)

    response = client_for(user).get(URL)

    assert response.status_code == 200
    assert [device["id"] for device in response.json()] == [mine.pk]


def test_deleting_ones_own_device():
    device = DeviceFactory()

    response = client_for(device.user).delete(f"{URL}{device.pk}/")

    assert response.status_code == 204
    assert not Device.objects.filter(pk=device.pk).exists()


@pytest.mark.parametrize("path", ["{other}/", "999999/", "abc/"])
def test_someone_elses_or_an_unknown_device_is_not_found_and_untouched(path):
    user, others = UserFactory(), DeviceFactory()

    response = client_for(user).delete(URL + path.format(other=others.pk))

    assert_error(response, 404, "not_found")
    assert Device.objects.filter(pk=others.pk).exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"token": ""}, "token"),
        ({"token": "has space"}, "token"),
        ({"token": "x" * 513}, "token"),
        ({"platform": "symbian"}, "platform"),
        ({"app_install_id": ""}, "app_install_id"),
        ({"app_install_id": None}, "app_install_id"),
        ({"user": 1}, "user"),  # server-owned fields are not input
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(overrides, field):
    user = UserFactory()

    response = register(client_for(user), **overrides)

    body = assert_error(response, 400, "invalid")
    assert list(body["fields"]) == [field]
    assert not Device.objects.exists()


def test_anonymous_requests_are_refused():
    response = client_for().post(URL, {"token": "t", "platform": "web", "app_install_id": "i"}, format="json")

    assert_error(response, 401, "not_authenticated")
    assert not Device.objects.exists()
