"""Acks are persisted in batches (one write for many clients), yet each client sees what one ack at a time gives."""

import asyncio
import uuid

import pytest

from notifications.hub.acks import AckBatcher
from notifications.models import Delivery
from notifications.services import AckOutcome, notification_publish
from tests.support.factories import UserFactory
from tests.support.threads import Worker

pytestmark = pytest.mark.django_db(transaction=True)

NOTIFICATIONS_EACH = 120


def publish_many(users, count: int) -> list[str]:
    return [
        str(notification_publish(event="Ping", title=f"n{n}", user_ids=[user.pk for user in users]).pk)
        for n in range(count)
    ]


def ack_all_then_ping(client, ids: list[str]) -> list[dict]:
    """Send every ack back to back, then a ping; return the frames answered before the pong."""
    for notification_id in ids:
        client.send(type="ack", id=notification_id)
    client.send(type="ping")
    return client.frames_until(lambda frame: frame["type"] == "pong")[:-1]


def confirmed_ids(frames: list[dict]) -> list[str]:
    return [notification_id for frame in frames if frame["type"] == "acked" for notification_id in frame["ids"]]


def test_many_acks_from_one_client_are_all_persisted_and_only_bad_ones_refused(connect):
    user, other = UserFactory(), UserFactory()
    ids = publish_many([user], NOTIFICATIONS_EACH)
    someone_elses = publish_many([other], 1)[0]
    client = connect(user)
    assert len(client.replayed) == NOTIFICATIONS_EACH

    bad = [someone_elses, str(uuid.uuid4()), "not-an-id"]
    # Some ids twice (the second is an idempotent success), the bad ones in between; within the flood guard.
    answered = ack_all_then_ping(client, [*ids[:60], *bad, *ids[60:], *ids[:20]])

    errors = [frame for frame in answered if frame["type"] == "error"]
    assert [(frame["code"], frame["request"]) for frame in errors] == [("not_found", "ack")] * len(bad)
    confirmations = [frame for frame in answered if frame["type"] == "acked"]
    assert len(errors) + len(confirmations) == len(answered)
    # Every good ack is confirmed before the pong, the repeats too; confirmations come in batches, not one each.
    assert sorted(confirmed_ids(confirmations)) == sorted([*ids, *ids[:20]])
    assert len(confirmations) < len(ids)
    assert not Delivery.objects.filter(recipient=user, acknowledged_at__isnull=True).exists()
    assert Delivery.objects.get(recipient=other).acknowledged_at is None
    assert connect(user).replayed == []


def test_acks_from_several_clients_at_once_are_each_answered_and_persisted(connect):
    users = UserFactory.create_batch(4)
    ids = publish_many(users, NOTIFICATIONS_EACH)
    intruder = UserFactory()
    clients = [connect(user) for user in users]
    intruder_client = connect(intruder)

    workers = [Worker(ack_all_then_ping, client, ids) for client in clients]
    workers.append(Worker(ack_all_then_ping, intruder_client, ids[:20]))
    for worker in workers:
        worker.start()
    answers = [worker.outcome(timeout=60) for worker in workers]

    for answered in answers[:-1]:
        assert {frame["type"] for frame in answered} == {"acked"}
        assert sorted(confirmed_ids(answered)) == sorted(ids)  # its own acks, each confirmed once
    assert [frame["code"] for frame in answers[-1]] == ["not_found"] * 20
    assert Delivery.objects.filter(acknowledged_at__isnull=False).count() == len(users) * NOTIFICATIONS_EACH
    assert Delivery.objects.filter(status=Delivery.Status.ACKNOWLEDGED).count() == len(users) * NOTIFICATIONS_EACH


def test_a_failed_batch_write_fails_every_ack_waiting_in_it_and_the_batcher_goes_on():
    user = UserFactory()
    first, second = publish_many([user], 2)

    async def scenario():
        batcher = AckBatcher()
        # A user id that is no integer makes the whole write fail (its array parameter cannot be made).
        failed = await asyncio.gather(
            batcher.acknowledge(user.pk, first), batcher.acknowledge("x", first), return_exceptions=True
        )
        after = await asyncio.gather(batcher.acknowledge(user.pk, second), batcher.acknowledge(user.pk, second))
        return failed, after

    failed, after = asyncio.run(scenario())

    assert [type(outcome).__name__ for outcome in failed] == ["ValueError", "ValueError"]
    assert after == [AckOutcome.ACKNOWLEDGED, AckOutcome.ALREADY]
    assert Delivery.objects.get(notification_id=first).acknowledged_at is None
    assert Delivery.objects.get(notification_id=second).status == Delivery.Status.ACKNOWLEDGED
