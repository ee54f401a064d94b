"""services/publish_batch.py: one transaction per batch, its COMMIT verified, each created notification dispatched
after it, and an item refused after its key's claim leaves the key free."""

import pytest
from django.utils import timezone

from notifications import dispatch
from notifications.errors import NotificationError
from notifications.models import Delivery, IdempotencyKey, Notification
from notifications.services import PublishBatchItem, notification_publish_batch_requested
from notifications.services import publish_batch as publish_batch_module
from tests.support.api import make_publisher
from tests.support.commits import first_commit_lost
from tests.support.factories import UserFactory


def item(title: str, *users, key: str | None = None) -> PublishBatchItem:
    request = {"event": "Ping", "title": title, "users": [user.pk for user in users]}
    return PublishBatchItem(request=request, idempotency_key=key, request_hash=f"hash of {title}" if key else "")


@pytest.mark.django_db(transaction=True)
class TestVerifiedCommit:
    def test_a_batch_whose_commit_landed_unseen_is_kept_once_and_handed_to_the_sweep(self):
        user, publisher = UserFactory(), make_publisher()
        with first_commit_lost(landed=True):
            outcomes = notification_publish_batch_requested(
                published_by_id=publisher.pk, items=[item("one", user, key="k-1"), item("two", user)]
            )

        created = {outcome.result.notification.pk for outcome in outcomes}
        assert set(Notification.objects.values_list("pk", flat=True)) == created and len(created) == 2
        assert IdempotencyKey.objects.get().notification_id in created
        # Their dispatch was lost with the connection: the sweep's now.
        assert (
            Delivery.objects.filter(status__in=Delivery.OPEN_STATUSES, next_attempt_at__lte=timezone.now()).count() == 2
        )

    def test_a_batch_whose_commit_did_not_land_runs_once_more_and_publishes_once(self):
        user, publisher = UserFactory(), make_publisher()
        with first_commit_lost(landed=False) as commits:
            outcomes = notification_publish_batch_requested(
                published_by_id=publisher.pk, items=[item("one", user, key="k-1"), item("two", user)]
            )

        assert len(commits) == 2
        assert [outcome.result.repeated for outcome in outcomes] == [False, False]
        assert sorted(Notification.objects.values_list("title", flat=True)) == ["one", "two"]
        assert IdempotencyKey.objects.get().notification_id == outcomes[0].result.notification.pk


@pytest.mark.django_db
def test_every_created_notification_is_dispatched_after_the_commit_and_only_those(
    monkeypatch, django_capture_on_commit_callbacks
):
    user, publisher = UserFactory(), make_publisher()
    notification_publish_batch_requested(published_by_id=publisher.pk, items=[item("before", user, key="k")])
    dispatched = []
    monkeypatch.setattr(
        dispatch, "notification_dispatch", lambda *, payload, **_: dispatched.append(str(payload["id"]))
    )

    with django_capture_on_commit_callbacks() as callbacks:
        outcomes = notification_publish_batch_requested(
            published_by_id=publisher.pk,
            items=[
                item("one", user),
                item("before", user, key="k"),  # replayed: not dispatched again
                PublishBatchItem(request=None, invalid=ValueError("invalid")),
                item("two", user),
            ],
        )
        assert dispatched == []  # nothing leaves the process before the commit

    for callback in callbacks:
        callback()
    assert [outcome.result.repeated if outcome.result else None for outcome in outcomes] == [False, True, None, False]
    assert dispatched == [str(outcomes[0].result.notification.pk), str(outcomes[3].result.notification.pk)]


@pytest.mark.django_db
def test_an_item_refused_after_its_key_was_claimed_leaves_the_key_free(monkeypatch):
    user, publisher = UserFactory(), make_publisher()
    real_publish = publish_batch_module.notification_publish

    def expired_meanwhile(**arguments):
        if arguments["title"] == "late":
            raise NotificationError("expires_at is in the past.", code="invalid")
        return real_publish(**arguments)

    monkeypatch.setattr(publish_batch_module, "notification_publish", expired_meanwhile)
    outcomes = notification_publish_batch_requested(
        published_by_id=publisher.pk, items=[item("late", user, key="late"), item("fine", user, key="fine")]
    )

    assert outcomes[0].result is None and outcomes[0].refused.code == "invalid"
    assert outcomes[1].result is not None
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fine"]
    assert list(Notification.objects.values_list("title", flat=True)) == ["fine"]
