"""Acknowledgements are never lost without the client knowing: confirmed with `acked`, read while the replay goes
out, still written after the server decided to close, and flushed at shutdown."""

import asyncio
from datetime import timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from notifications.models import Delivery, Notification
from notifyhub.asgi import application
from tests.support.factories import UserFactory
from tests.support.hub_client import access_token

pytestmark = pytest.mark.django_db(transaction=True)


def communicator_for(user, *, lifetime: timedelta | None = None) -> WebsocketCommunicator:
    headers = [(b"authorization", f"Bearer {access_token(user, lifetime=lifetime)}".encode())]
    return WebsocketCommunicator(application, "/ws/notifications/", headers=headers)


def unacknowledged(user, count: int) -> list[str]:
    """`count` notifications waiting for `user` (written directly: a long replay, quickly)."""
    notifications = Notification.objects.bulk_create(
        Notification(event="Backlog", title=f"#{number}") for number in range(count)
    )
    now = timezone.now()
    Delivery.objects.bulk_create(
        Delivery(notification=notification, recipient=user, created_at=now + timedelta(microseconds=number))
        for number, notification in enumerate(notifications)
    )
    return [str(notification.pk) for notification in notifications]


def acknowledged_ids(user) -> set[str]:
    return {
        str(notification_id)
        for notification_id in Delivery.objects.filter(recipient=user, acknowledged_at__isnull=False).values_list(
            "notification_id", flat=True
        )
    }


def test_acks_sent_during_a_long_replay_are_confirmed_before_the_replay_ends(redis_client):
    user = UserFactory()
    waiting = unacknowledged(user, 1_000)  # five replay pages

    async def scenario() -> list[dict]:
        communicator = communicator_for(user)
        assert (await communicator.connect())[0]
        frames = []
        while True:
            frame = await communicator.receive_json_from(timeout=10)
            frames.append(frame)
            if frame["type"] == "notification":
                await communicator.send_json_to({"type": "ack", "id": frame["id"]})
            if frame["type"] == "replay_complete":
                break
        await communicator.send_json_to({"type": "ping"})
        while frames[-1]["type"] != "pong":
            frames.append(await communicator.receive_json_from(timeout=10))
        await communicator.disconnect()
        return frames

    frames = asyncio.run(scenario())

    types = [frame["type"] for frame in frames]
    confirmed = [notification_id for frame in frames if frame["type"] == "acked" for notification_id in frame["ids"]]
    assert sorted(confirmed) == sorted(waiting)
    # The connection read and wrote acks while the replay was still going out, instead of after it.
    assert "acked" in types[: types.index("replay_complete")]
    assert acknowledged_ids(user) == set(waiting)


def test_acks_that_arrive_after_the_server_decided_to_close_are_still_written(redis_client):
    user = UserFactory()
    waiting = unacknowledged(user, 3)

    async def scenario() -> dict:
        communicator = communicator_for(user, lifetime=timedelta(seconds=2))
        assert (await communicator.connect())[0]
        replayed = []
        while (frame := await communicator.receive_json_from(timeout=10))["type"] != "replay_complete":
            if frame["type"] == "notification":
                replayed.append(frame["id"])
        notice = await communicator.receive_json_from(timeout=10)  # the token expired: the server closes
        # The client acked before it saw the close; its frames reach the server after the decision.
        for notification_id in replayed:
            await communicator.send_json_to({"type": "ack", "id": notification_id})
        closed = await communicator.receive_output(timeout=10)
        await communicator.wait(timeout=10)
        return {"notice": notice, "closed": closed}

    result = asyncio.run(scenario())

    assert result["notice"]["code"] == "unauthorized"
    assert result["closed"]["type"] == "websocket.close"
    assert acknowledged_ids(user) == set(waiting)


def test_acks_in_flight_when_the_server_shuts_down_are_written_before_the_goodbye(redis_client):
    user = UserFactory()
    waiting = unacknowledged(user, 200)

    async def scenario() -> list[dict]:
        communicator = communicator_for(user)
        assert (await communicator.connect())[0]
        while (await communicator.receive_json_from(timeout=10))["type"] != "replay_complete":
            pass
        for notification_id in waiting:
            await communicator.send_json_to({"type": "ack", "id": notification_id})
        await asyncio.sleep(0)  # the frames are in; the server stops now (daphne cancels every connection)
        communicator.future.cancel()
        frames = []
        try:
            while True:
                message = await communicator.receive_output(timeout=10)
                if message["type"] == "websocket.send":
                    frames.append(message["text"])
        except (TimeoutError, asyncio.CancelledError):
            pass
        return frames

    asyncio.run(scenario())

    assert acknowledged_ids(user) == set(waiting)
