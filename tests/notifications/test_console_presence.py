"""The presence pages: who is online (protocols, processes, since when), the web processes, one user's connections
and devices; against real Redis."""

import asyncio

import pytest
from django.urls import reverse

from notifications import presence
from tests.support.factories import DeviceFactory, UserFactory

# admin_client: pytest-django's, signed in as a superuser; presence reads the test Redis (emptied).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_client")]


@pytest.fixture
def erin_online(redis_client):
    erin = UserFactory(username="erin", first_name="Erin", last_name="Hale")
    for protocol in ("native", "signalr", "native"):
        asyncio.run(presence.connection_alive(erin.pk, presence.new_connection_id(protocol)))
    return erin


def test_who_is_online_lists_each_user_with_protocols_and_processes(
    admin_client, erin_online, django_assert_max_num_queries
):
    UserFactory(username="frank")  # offline
    with django_assert_max_num_queries(3):  # session, user, the online users in one query
        html = admin_client.get(reverse("admin:console-presence")).content.decode()
    assert "Erin Hale" in html and "frank" not in html
    assert "native ×2, signalr" in html
    assert presence.PROCESS_ID in html
    assert reverse("admin:console-presence-user", args=["erin"]) in html


def test_who_is_online_says_nobody(admin_client):
    assert "Nobody is online." in admin_client.get(reverse("admin:console-presence")).content.decode()


def test_a_users_page_lists_live_connections_and_devices(admin_client, erin_online):
    DeviceFactory(user=erin_online, platform="android")
    DeviceFactory(user=erin_online, platform="ios", active=False, deactivated_reason="unregistered by FCM")
    html = admin_client.get(reverse("admin:console-presence-user", args=["erin"])).content.decode()
    assert "3 live connections" in html
    assert html.count("<td>signalr</td>") == 1
    assert "unregistered by FCM" in html and "active" in html


def test_an_offline_user_without_devices_says_so(admin_client):
    UserFactory(username="gus")
    html = admin_client.get(reverse("admin:console-presence-user", args=["gus"])).content.decode()
    assert "offline" in html and "cannot be reached by push" in html


def test_an_unknown_user_is_404(admin_client):
    assert admin_client.get(reverse("admin:console-presence-user", args=["nobody"])).status_code == 404


def test_non_staff_are_sent_to_sign_in(client, redis_client):
    client.force_login(UserFactory(username="dora"))
    assert client.get(reverse("admin:console-presence")).status_code == 302
