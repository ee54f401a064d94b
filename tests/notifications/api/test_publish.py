"""POST /api/notifications/: who may publish, what is accepted, recipients, idempotency."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications import dispatch
from notifications.api.serializers import MAX_DATA_BYTES
from notifications.models import Delivery, IdempotencyKey, Notification
from tests.support.api import assert_error, client_for, make_publisher
from tests.support.factories import DepartmentFactory, PublisherScopeFactory, UserFactory, add_members
from workflow.models import Document

pytestmark = pytest.mark.django_db
URL = "/api/notifications/"


def publish(client, body: dict, **headers):
    return client.post(URL, json.dumps(body), content_type="application/json", headers=headers)


def minimal(**recipients) -> dict:
    return {"event": "InvoiceOverdue", "title": "Invoice 42 is overdue", "recipients": recipients}


class TestPublish:
    def test_publishes_to_users_by_id_and_username_and_departments_by_code(self, publisher):
        by_id, by_name = UserFactory(), UserFactory()
        department = DepartmentFactory(code="finance")
        members = [UserFactory(), UserFactory()]
        add_members(department, *members, by_id)  # by_id is targeted twice: one delivery

        response = publish(
            client_for(publisher),
            {
                "event": "InvoiceOverdue",
                "title": "Invoice 42 is overdue",
                "body": "Pay by Friday.",
                "data": {"invoiceId": 42, "tags": ["a"]},
                "priority": "high",
                "ttl_seconds": 3600,
                "recipients": {"users": [by_id.pk, by_name.username], "departments": ["finance"]},
            },
        )

        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["recipient_count"] == 4
        assert body["event"] == "InvoiceOverdue"
        notification = Notification.objects.get(pk=body["id"])
        assert notification.published_by == publisher
        assert notification.priority == "high"
        assert notification.data == {"invoiceId": 42, "tags": ["a"]}
        assert timedelta(minutes=59) < notification.expires_at - timezone.now() <= timedelta(hours=1)
        assert set(notification.deliveries.values_list("recipient_id", flat=True)) == {
            by_id.pk,
            by_name.pk,
            *(member.pk for member in members),
        }
        assert response["Location"] == f"/api/notifications/{body['id']}/deliveries/"

    def test_department_by_id_and_expires_at_and_document(self, publisher, requester, department, approvers):
        from workflow.services import document_create

        document = document_create(requester=requester, department=department, title="Budget", approvers=approvers)
        expires_at = timezone.now() + timedelta(days=1)

        response = publish(
            client_for(publisher),
            {**minimal(departments=[department.pk]), "expires_at": expires_at.isoformat(), "document_id": document.pk},
        )

        assert response.status_code == 201, response.json()
        notification = Notification.objects.get(pk=response.json()["id"])
        assert notification.document_id == document.pk
        assert notification.expires_at == expires_at
        assert response.json()["recipient_count"] == 3

    def test_staff_without_the_permission_may_not_and_nothing_is_created(self):
        staff = UserFactory(is_staff=True)
        PublisherScopeFactory(publisher=staff)  # a scope limits; it grants nothing without the permission
        body = assert_error(publish(client_for(staff), minimal(users=[UserFactory().pk])), 403, "permission_denied")
        assert "staff account alone is not enough" in body["message"]
        assert not Notification.objects.exists()

    def test_the_permission_through_a_group_with_a_scope_or_superuser_status_suffices(self):
        group = Group.objects.create(name="publishers")
        group.permissions.add(Permission.objects.get(codename="publish_notification"))
        member, superuser = UserFactory(), UserFactory(is_superuser=True)
        member.groups.add(group)
        PublisherScopeFactory(publisher=member)  # superusers need none
        for user in (member, superuser):
            assert publish(client_for(user), minimal(users=[UserFactory().pk])).status_code == 201

    def test_one_query_loads_the_caller_and_decides_whether_they_may_publish(self):
        plain = UserFactory()
        with CaptureQueriesContext(connection) as queries:
            response = publish(client_for(plain), minimal(users=[plain.pk]))
        assert_error(response, 403, "permission_denied")
        assert len(queries) == 1  # the token's user and the permission (direct or through a group) together

    @pytest.mark.django_db(transaction=True)
    def test_without_an_idempotency_key_the_publish_is_one_transaction_without_savepoints(self, publisher):
        recipient = UserFactory()
        with CaptureQueriesContext(connection) as queries:
            response = publish(client_for(publisher), minimal(users=[recipient.pk]))
        assert response.status_code == 201, response.json()
        assert not [query["sql"] for query in queries if "SAVEPOINT" in query["sql"].upper()]
        assert Delivery.objects.get(notification_id=response.json()["id"]).recipient_id == recipient.pk

    @pytest.mark.django_db(transaction=True)
    def test_a_publish_is_two_queries_once_the_publisher_is_remembered(
        self, publisher, department, approvers, monkeypatch
    ):
        assert publish(client_for(publisher), minimal(users=[approvers[0].pk])).status_code == 201
        # Dispatch's bookkeeping for offline recipients follows the publish; it is not counted here.
        monkeypatch.setattr(dispatch, "notification_dispatch", lambda **kwargs: None)
        named, client = UserFactory(), client_for(publisher)
        with CaptureQueriesContext(connection) as queries:
            response = publish(client, minimal(users=[named.username], departments=[department.code]))
        assert response.status_code == 201, response.json()
        assert response.json()["recipient_count"] == 3
        # What it must know (publisher, recipients, scope, mutes), then the notification and its deliveries.
        assert len(queries) == 2, [query["sql"][:80] for query in queries]

    def test_a_publisher_deactivated_in_another_process_is_refused_by_the_publish_itself(self, publisher):
        assert publish(client_for(publisher), minimal(users=[UserFactory().pk])).status_code == 201
        # As another process would: the row changes, no signal reaches this process's remembered answer.
        User.objects.filter(pk=publisher.pk).update(is_active=False)
        response = publish(client_for(publisher), minimal(users=[UserFactory().pk]))
        assert_error(response, 403, "permission_denied")
        assert Notification.objects.count() == 1

    def test_a_user_without_the_permission_may_not_and_nothing_is_created(self):
        plain = UserFactory()
        response = publish(client_for(plain), minimal(users=[plain.pk]))
        assert_error(response, 403, "permission_denied")
        assert not Notification.objects.exists()

    def test_anonymous_is_401(self):
        response = publish(client_for(), minimal(users=[UserFactory().pk]))
        assert_error(response, 401, "not_authenticated")
        assert "Bearer" in response["WWW-Authenticate"]


class TestUnknownRecipients:
    def test_lists_every_unknown_user_and_department_and_creates_nothing(self, publisher):
        known = UserFactory()
        response = publish(
            client_for(publisher),
            minimal(users=[known.pk, "nobody", 99_999_999], departments=["no-such-dept", known.pk + 10_000]),
        )
        body = assert_error(response, 400, "unknown_recipients")
        assert body["fields"]["recipients.users"] == ["No such user: nobody.", "No such user: 99999999."]
        assert body["fields"]["recipients.departments"] == [
            "No such department: no-such-dept.",
            f"No such department: {known.pk + 10_000}.",
        ]
        assert not Notification.objects.exists()
        assert not Delivery.objects.exists()

    def test_ids_beyond_the_database_integers_are_unknown_too(self, publisher):
        known = UserFactory()
        response = publish(client_for(publisher), minimal(users=[known.pk, 2**40, 2**70], departments=[2**35, 2**64]))
        body = assert_error(response, 400, "unknown_recipients")
        assert body["fields"]["recipients.users"] == [f"No such user: {2**40}.", f"No such user: {2**70}."]
        assert body["fields"]["recipients.departments"] == [
            f"No such department: {2**35}.",
            f"No such department: {2**64}.",
        ]
        assert not Notification.objects.exists()


class TestBadInput:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"title": ""}, "title"),
            ({"title": "x" * 201}, "title"),
            ({"event": "has spaces"}, "event"),
            ({"event": 7}, "event"),
            ({"data": [1, 2]}, "data"),
            ({"data": "text"}, "data"),
            ({"data": {"k": "a\u0000b"}}, "data"),
            ({"data": {"big": "x" * MAX_DATA_BYTES}}, "data"),
            ({"priority": "critical"}, "priority"),
            ({"ttl_seconds": 0}, "ttl_seconds"),
            ({"ttl_seconds": "soon"}, "ttl_seconds"),
            ({"ttl_seconds": 60, "expires_at": "2999-01-01T00:00:00Z"}, "ttl_seconds"),
            ({"expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
            ({"expires_at": "tomorrow"}, "expires_at"),
            ({"document_id": 987_654_321}, "document_id"),
            ({"document_id": 2**70}, "document_id"),
            ({"recipients": {}}, "recipients"),
            ({"recipients": {"users": []}}, "recipients"),
            ({"recipients": {"users": [True]}}, "recipients.users.0"),
            ({"recipients": {"users": [1.5]}}, "recipients.users.0"),
            ({"recipients": {"users": [None]}}, "recipients.users.0"),
            ({"recipients": {"users": [""]}}, "recipients.users.0"),
            ({"recipients": {"users": [0]}}, "recipients.users.0"),
            ({"recipients": {"users": "bob"}}, "recipients.users"),
            ({"recipients": {"users": [1], "groups": [1]}}, "recipients.groups"),
            ({"recipients": {"users": list(range(1, 1_002))}}, "recipients.users"),
            ({"recipients": "everyone"}, "recipients"),
            # Server-owned fields are refused, not silently taken.
            ({"published_by": 1}, "published_by"),
            ({"status": "read"}, "status"),
            ({"recipient": 1}, "recipient"),
            ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
            ({"id": "5b0c7f7e-2f7a-4a8e-9d8e-000000000000"}, "id"),
        ],
    )
    def test_is_a_400_naming_the_field_and_creates_nothing(self, publisher, change, field):
        body = {**minimal(users=[publisher.pk]), **change}
        error = assert_error(publish(client_for(publisher), body), 400, "invalid")
        assert field in error["fields"], error
        assert not Notification.objects.exists()

    def test_missing_required_fields_are_each_named(self, publisher):
        error = assert_error(publish(client_for(publisher), {}), 400, "invalid")
        assert set(error["fields"]) == {"event", "title", "recipients"}


class TestIdempotency:
    def test_same_key_same_body_replays_without_creating(self, publisher):
        client, user = client_for(publisher), UserFactory()
        first = publish(client, minimal(users=[user.pk]), **{"Idempotency-Key": "order-42"})
        # Same JSON, other key order and spacing.
        replay = client.post(
            URL,
            '{"recipients": {"users": ['
            + str(user.pk)
            + ']},  "title": "Invoice 42 is overdue", "event": "InvoiceOverdue"}',
            content_type="application/json",
            headers={"Idempotency-Key": "order-42"},
        )

        assert first.status_code == 201
        assert replay.status_code == 200
        assert replay.json() == first.json()
        assert replay["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first
        assert Notification.objects.count() == 1
        assert Delivery.objects.count() == 1

    def test_same_key_different_body_is_409(self, publisher):
        client, user = client_for(publisher), UserFactory()
        publish(client, minimal(users=[user.pk]), **{"Idempotency-Key": "k1"})
        response = publish(client, {**minimal(users=[user.pk]), "title": "Other"}, **{"Idempotency-Key": "k1"})
        assert_error(response, 409, "idempotency_conflict")
        assert Notification.objects.count() == 1

    def test_replay_answers_even_if_the_body_would_no_longer_validate(self, publisher):
        client, user = client_for(publisher), UserFactory()
        body = {**minimal(users=[user.username]), "expires_at": (timezone.now() + timedelta(seconds=2)).isoformat()}
        first = publish(client, body, **{"Idempotency-Key": "k2"})
        Notification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        user.delete()
        replay = publish(client, body, **{"Idempotency-Key": "k2"})
        assert replay.status_code == 200
        assert replay.json()["id"] == first.json()["id"]

    def test_keys_belong_to_their_publisher(self, publisher):
        from tests.support.api import make_publisher

        other = make_publisher()
        user = UserFactory()
        first = publish(client_for(publisher), minimal(users=[user.pk]), **{"Idempotency-Key": "shared"})
        second = publish(client_for(other), minimal(users=[user.pk]), **{"Idempotency-Key": "shared"})
        assert first.status_code == second.status_code == 201
        assert first.json()["id"] != second.json()["id"]

    def test_a_failed_request_does_not_use_up_its_key(self, publisher):
        client = client_for(publisher)
        failed = publish(client, minimal(users=["ghost"]), **{"Idempotency-Key": "k3"})
        assert failed.status_code == 400
        assert not IdempotencyKey.objects.exists()
        user = UserFactory(username="ghost")
        response = publish(client, minimal(users=["ghost"]), **{"Idempotency-Key": "k3"})
        assert response.status_code == 201
        assert Delivery.objects.get().recipient == user

    def test_a_key_replays_for_its_time_to_live_then_publishes_anew_before_any_pruning(self, publisher, settings):
        settings.NOTIFY_IDEMPOTENCY_KEY_TTL_HOURS = 24
        client, user = client_for(publisher), UserFactory()
        first = publish(client, minimal(users=[user.pk]), **{"Idempotency-Key": "daily-report"})
        IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=23, minutes=59))
        replay = publish(client, minimal(users=[user.pk]), **{"Idempotency-Key": "daily-report"})
        IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=24, minutes=1))

        anew = publish(
            client, {**minimal(users=[user.pk]), "title": "Tomorrow's"}, **{"Idempotency-Key": "daily-report"}
        )
        again = publish(
            client, {**minimal(users=[user.pk]), "title": "Tomorrow's"}, **{"Idempotency-Key": "daily-report"}
        )

        assert (first.status_code, replay.status_code, anew.status_code, again.status_code) == (201, 200, 201, 200)
        assert replay.json()["id"] == first.json()["id"]
        assert anew.json()["id"] != first.json()["id"]
        assert again.json()["id"] == anew.json()["id"]
        assert list(IdempotencyKey.objects.values_list("notification_id", flat=True)) == [
            Notification.objects.get(title="Tomorrow's").pk
        ]

    @pytest.mark.parametrize("key", ["", " leading-space", "é", "x" * 256, "tab\there"])
    def test_malformed_key_is_400(self, publisher, key):
        response = publish(client_for(publisher), minimal(users=[publisher.pk]), **{"Idempotency-Key": key})
        error = assert_error(response, 400, "invalid")
        assert "Idempotency-Key" in error["fields"]
        assert not Notification.objects.exists()


def test_unreferenced_document_field_stays_null(publisher):
    response = publish(client_for(publisher), {**minimal(users=[publisher.pk]), "document_id": None})
    assert response.status_code == 201
    assert Notification.objects.get().document_id is None
    assert not Document.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_publishing_waits_while_the_hub_is_too_far_behind(redis_client, settings, monkeypatch):
    from notifications import presence
    from notifications.api import backpressure

    settings.NOTIFY_PUBLISH_MAX_BEHIND = 10
    monkeypatch.setattr(backpressure, "READ_EVERY_SECONDS", 0)
    publisher, user = make_publisher(), UserFactory()
    behind = presence.ProcessLiveness()
    body = {"event": "Ping", "title": "t", "recipients": {"users": [user.pk]}}

    behind.behind_seconds = lambda: 25
    behind.tick()
    refused = client_for(publisher).post("/api/notifications/", body, format="json")

    assert_error(refused, 429, "throttled")
    assert refused["Retry-After"] == "15"
    assert not Notification.objects.exists()

    behind.behind_seconds = lambda: 0
    behind.tick()
    assert client_for(publisher).post("/api/notifications/", body, format="json").status_code == 201
