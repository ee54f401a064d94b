"""POST /api/notifications/ within the publisher's scope: recipients, event names, documents, reserved names."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.hub.native_frames import ServerFrame
from notifications.hub.signalr.protocol import (
    NON_NOTIFICATION_TARGETS,
    NOTIFICATION_DEFAULT_KEYS,
    NOTIFICATION_OWN_KEYS,
)
from notifications.models import Delivery, IdempotencyKey, Notification, PublisherScope
from notifications.reserved import WORKFLOW_EVENTS
from tests.support.api import assert_error, client_for, make_publisher
from tests.support.factories import DepartmentFactory, UserFactory, add_members
from workflow.models import Document

pytestmark = pytest.mark.django_db
URL = "/api/notifications/"


def publish(publisher, *, event="InvoiceOverdue", users=(), departments=(), **fields):
    body = {"event": event, "title": "Invoice 42 is overdue", "recipients": {}, **fields}
    if users:
        body["recipients"]["users"] = list(users)
    if departments:
        body["recipients"]["departments"] = list(departments)
    return client_for(publisher).post(URL, json.dumps(body), content_type="application/json")


def assert_refused(response, status_code: int, code: str) -> dict:
    body = assert_error(response, status_code, code)
    assert not Notification.objects.exists()
    assert not Delivery.objects.exists()
    return body


def document_in(department) -> Document:
    return Document.objects.create(requester=UserFactory(), department=department, title="Budget")


@pytest.fixture
def finance():
    return DepartmentFactory(code="finance")


@pytest.fixture
def hr():
    return DepartmentFactory(code="hr")


@pytest.fixture
def scoped(hr):
    """A publisher that may reach department hr and one named user, with InvoiceOverdue and hr.* events."""
    named = UserFactory(username="named")
    publisher = make_publisher(
        scope={
            "all_recipients": False,
            "departments": [hr],
            "users": [named],
            "events": ["InvoiceOverdue", "hr.*"],
            "may_attach_documents": True,
        }
    )
    publisher.named = named
    return publisher


class TestWithinScope:
    def test_its_departments_their_members_by_name_its_users_its_events_and_documents(self, scoped, hr):
        member = UserFactory()
        add_members(hr, member)
        document = document_in(hr)

        response = publish(
            scoped,
            event="hr.LeaveApproved",
            users=[scoped.named.username, member.username],
            departments=["hr"],
            document_id=document.pk,
        )

        assert response.status_code == 201, response.json()
        notification = Notification.objects.get(pk=response.json()["id"])
        assert notification.document_id == document.pk
        assert set(notification.deliveries.values_list("recipient_id", flat=True)) == {scoped.named.pk, member.pk}

    def test_an_all_recipients_scope_reaches_anyone_and_attaches_any_document(self, finance):
        publisher = make_publisher(scope={"all_recipients": True, "events": ["InvoiceOverdue"]})
        response = publish(
            publisher, users=[UserFactory().pk], departments=["finance"], document_id=document_in(finance).pk
        )
        assert response.status_code == 201, response.json()

    def test_a_superuser_needs_no_scope(self, finance):
        superuser = UserFactory(is_superuser=True)
        response = publish(superuser, event="anything.at.all", departments=["finance"])
        assert response.status_code == 201, response.json()


class TestOutsideScope:
    def test_a_user_outside_is_named_and_nothing_is_created(self, scoped):
        stranger = UserFactory(username="stranger")

        body = assert_refused(publish(scoped, users=[scoped.named.pk, "stranger"]), 403, "outside_scope")

        assert body["message"] == f"User {stranger.pk} (stranger) is outside your publishing scope."
        assert body["fields"] == {
            "recipients.users": [f"User {stranger.pk} (stranger) is outside your publishing scope."]
        }

    def test_a_department_outside_is_named_by_its_code(self, scoped, finance):
        body = assert_refused(publish(scoped, departments=["hr", finance.pk]), 403, "outside_scope")

        assert body["message"] == "Department 'finance' is outside your publishing scope."
        assert set(body["fields"]) == {"recipients.departments"}

    def test_a_member_of_a_department_outside_is_outside_too(self, scoped, finance):
        accountant = UserFactory(username="accountant")
        add_members(finance, accountant)

        body = assert_refused(publish(scoped, users=["accountant"]), 403, "outside_scope")

        assert f"User {accountant.pk} (accountant)" in body["message"]

    def test_everything_outside_is_named_at_once(self, scoped, finance):
        first, second = UserFactory(username="first"), UserFactory(username="second")

        body = assert_refused(
            publish(scoped, event="payroll.Run", users=[second.pk, first.pk], departments=["finance"]),
            403,
            "outside_scope",
        )

        assert body["message"] == (
            f"Event 'payroll.Run', users {first.pk} (first), {second.pk} (second) and department 'finance' "
            "are outside your publishing scope."
        )
        assert set(body["fields"]) == {"event", "recipients.users", "recipients.departments"}

    @pytest.mark.parametrize("event", ["InvoicePaid", "hrx", "HR.LeaveApproved", "invoiceoverdue"])
    def test_an_event_outside_its_names_and_prefixes(self, scoped, event):
        body = assert_refused(publish(scoped, event=event, users=[scoped.named.pk]), 403, "outside_scope")

        assert body["message"] == f"Event '{event}' is outside your publishing scope."
        assert body["fields"] == {"event": [f"The event name '{event}' is outside your publishing scope."]}

    def test_a_document_of_a_department_outside(self, scoped, finance):
        document = document_in(finance)

        body = assert_refused(publish(scoped, users=[scoped.named.pk], document_id=document.pk), 403, "outside_scope")

        assert body["message"] == f"Document {document.pk} is outside your publishing scope."

    def test_any_document_when_the_scope_may_not_attach_documents(self, finance):
        publisher = make_publisher(scope={"all_recipients": True, "may_attach_documents": False})
        document = document_in(finance)

        body = assert_refused(
            publish(publisher, departments=["finance"], document_id=document.pk), 403, "outside_scope"
        )

        assert body["fields"] == {"document_id": ["Your publishing scope does not allow attaching documents."]}

    def test_without_a_scope_nothing_may_be_published_and_the_message_says_an_admin_must_give_one(self):
        publisher = make_publisher(without_scope=True, is_staff=True)

        body = assert_refused(publish(publisher, users=[UserFactory().pk]), 403, "outside_scope")

        assert "no publishing scope" in body["message"]
        assert "an admin must give you one" in body["message"]

    def test_a_refusal_does_not_use_up_the_idempotency_key(self, scoped, finance):
        def publish_with_key():
            body = {"event": "InvoiceOverdue", "title": "Invoice 42", "recipients": {"departments": ["finance"]}}
            return client_for(scoped).post(
                URL, json.dumps(body), content_type="application/json", headers={"Idempotency-Key": "k-1"}
            )

        assert_refused(publish_with_key(), 403, "outside_scope")
        assert not IdempotencyKey.objects.exists()

        PublisherScope.objects.get(publisher=scoped).departments.add(finance)
        assert publish_with_key().status_code == 201


class TestReservedNames:
    @pytest.mark.parametrize(
        "event",
        [
            *(name.swapcase() for name in WORKFLOW_EVENTS),
            *WORKFLOW_EVENTS,
            *(name.lower() for name in NON_NOTIFICATION_TARGETS),
            *(frame_type.upper() for frame_type in ServerFrame),
            "NewTask",  # spelled out too, in case the sets above were ever empty
            "notificationsread",
            "Hello",
        ],
    )
    def test_a_reserved_event_name_is_refused_to_everyone_in_any_case(self, event):
        unrestricted, superuser = make_publisher(), UserFactory(is_superuser=True)

        for publisher in (unrestricted, superuser):
            body = assert_refused(publish(publisher, event=event, users=[UserFactory().pk]), 403, "outside_scope")
            assert body["message"] == f"The event name '{event}' is reserved for the system: no publisher may use it."
            assert set(body["fields"]) == {"event"}

    @pytest.mark.parametrize("key", [*NOTIFICATION_OWN_KEYS, *NOTIFICATION_DEFAULT_KEYS, "NotificationId", "TIMESTAMP"])
    def test_a_data_key_the_hub_sets_itself_is_a_400_on_data(self, key):
        superuser = UserFactory(is_superuser=True)

        body = assert_refused(
            publish(superuser, users=[UserFactory().pk], data={"invoiceId": 42, key: "forged"}), 400, "invalid"
        )

        assert set(body["fields"]) == {"data"}
        assert key in body["fields"]["data"][0]

    def test_every_reserved_key_is_named(self):
        body = assert_refused(
            publish(make_publisher(), users=[UserFactory().pk], data={"notificationId": 1, "timestamp": 2, "x": 3}),
            400,
            "invalid",
        )

        assert body["fields"]["data"] == [
            "Reserved keys: notificationId, timestamp. The hub sets these itself; use other names."
        ]


class TestCost:
    def test_the_scope_costs_one_query_whatever_the_number_of_recipients(self, hr):
        members = [UserFactory() for _ in range(30)]
        add_members(hr, *members)
        named = [UserFactory() for _ in range(30)]
        publisher = make_publisher(
            scope={"all_recipients": False, "departments": [hr], "users": named, "events": ["*"]}
        )

        def queries_of(users) -> list[str]:
            with CaptureQueriesContext(connection) as queries:
                response = publish(publisher, users=[user.pk for user in users], departments=["hr"])
            assert response.status_code == 201, response.json()
            return [query["sql"] for query in queries]

        queries_of(named[:1])  # the publisher is remembered from now on (notifications/api/publisher_auth.py)
        few, many = queries_of(named[:1]), queries_of(named + members)

        assert len(few) == len(many)
        assert len([sql for sql in many if PublisherScope._meta.db_table in sql]) == 1
