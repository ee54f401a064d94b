"""POST /api/notifications/batch/: many publishes in one transaction, each answered as a single publish would be."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import Delivery, IdempotencyKey, Notification
from tests.support.api import assert_error, client_for, make_publisher
from tests.support.factories import DepartmentFactory, UserFactory, add_members

pytestmark = pytest.mark.django_db
URL = "/api/notifications/batch/"
SINGLE_URL = "/api/notifications/"


def publish_batch(client, items, **headers):
    return client.post(URL, json.dumps({"notifications": items}), content_type="application/json", headers=headers)


def publish_one(client, body, **headers):
    return client.post(SINGLE_URL, json.dumps(body), content_type="application/json", headers=headers)


def item(title="Invoice 42 is overdue", **recipients) -> dict:
    return {"event": "InvoiceOverdue", "title": title, "recipients": recipients}


def results_of(response) -> list[dict]:
    assert response.status_code == 200, (response.status_code, response.content[:500])
    results = response.json()["results"]
    assert [result["index"] for result in results] == list(range(len(results)))
    return results


def statuses(response) -> list[int]:
    return [result["status"] for result in results_of(response)]


class TestPublish:
    def test_publishes_each_to_users_and_departments_in_order(self, publisher):
        by_id, by_name, member = UserFactory(), UserFactory(), UserFactory()
        finance = DepartmentFactory(code="finance")
        add_members(finance, member, by_id)

        response = publish_batch(
            client_for(publisher),
            [
                {**item(users=[by_id.pk, by_name.username]), "priority": "high", "data": {"invoiceId": 42}},
                {**item(title="Budget", departments=["finance"]), "ttl_seconds": 60},
                item(title="Both", users=[by_id.pk], departments=[finance.pk]),
            ],
        )

        results = results_of(response)
        assert [result["status"] for result in results] == [201, 201, 201]
        assert [result["notification"]["recipient_count"] for result in results] == [2, 2, 2]
        assert all("error" not in result for result in results)
        notifications = [Notification.objects.get(pk=result["notification"]["id"]) for result in results]
        assert [notification.title for notification in notifications] == ["Invoice 42 is overdue", "Budget", "Both"]
        assert {notification.published_by_id for notification in notifications} == {publisher.pk}
        assert notifications[0].priority == "high" and notifications[0].data == {"invoiceId": 42}
        assert notifications[1].expires_at is not None
        assert results[1]["notification"]["expires_at"] is not None
        assert set(notifications[0].deliveries.values_list("recipient_id", flat=True)) == {by_id.pk, by_name.pk}
        assert set(notifications[1].deliveries.values_list("recipient_id", flat=True)) == {member.pk, by_id.pk}
        assert Delivery.objects.count() == 6

    def test_answers_each_item_with_the_fields_a_single_publish_answers(self, publisher):
        client, user = client_for(publisher), UserFactory()
        single = publish_one(client, item(users=[user.pk])).json()
        result = results_of(publish_batch(client, [item(users=[user.pk])]))[0]
        assert set(result["notification"]) == set(single)
        assert result["notification"]["event"] == single["event"] == "InvoiceOverdue"

    @pytest.mark.django_db(transaction=True)
    def test_the_batch_is_one_transaction_without_savepoints(self, publisher):
        users = UserFactory.create_batch(3)
        with CaptureQueriesContext(connection) as queries:
            response = publish_batch(client_for(publisher), [item(users=[user.pk]) for user in users])
        assert statuses(response) == [201, 201, 201]
        assert not [query["sql"] for query in queries if "SAVEPOINT" in query["sql"].upper()]
        with connection.cursor() as cursor:  # xmin: the transaction that inserted the row
            cursor.execute(f"SELECT DISTINCT xmin::text FROM {Notification._meta.db_table}")  # noqa: S608 - _meta
            assert len(cursor.fetchall()) == 1

    def test_the_recipients_of_every_item_are_resolved_at_once_and_each_item_costs_four_queries(self, publisher):
        users = UserFactory.create_batch(12)
        add_members(DepartmentFactory(code="finance"), users[0])
        client = client_for(publisher)

        def queries_for(count: int) -> list[str]:
            items = [item(users=[user.username], departments=["finance"]) for user in users[:count]]
            with CaptureQueriesContext(connection) as queries:
                assert statuses(publish_batch(client, items)) == [201] * count
            return [query["sql"] for query in queries]

        two, twelve = queries_for(2), queries_for(12)
        # The scope check, the notification, its recipients, its deliveries: nothing per item resolves names.
        assert len(twelve) - len(two) == 10 * 4
        assert len([sql for sql in twelve if '"auth_user"."username" IN' in sql]) == 1

    def test_staff_without_the_permission_may_not_and_nothing_is_created(self):
        staff = UserFactory(is_staff=True)
        response = publish_batch(client_for(staff), [item(users=[staff.pk])])
        assert_error(response, 403, "permission_denied")
        assert not Notification.objects.exists()

    def test_anonymous_is_401(self):
        assert_error(publish_batch(client_for(), [item(users=[UserFactory().pk])]), 401, "not_authenticated")


class TestRefusedItems:
    """A refused item gets the status and error a single publish of it gets; it creates nothing, the rest go on."""

    @pytest.mark.parametrize(
        ("bad", "code", "status"),
        [
            ({"event": "InvoiceOverdue", "recipients": {"users": ["x"]}}, "invalid", 400),  # no title
            ({**item(users=["x"]), "priority": "critical", "extra": 1}, "invalid", 400),
            ({**item(users=["x"]), "ttl_seconds": 60, "expires_at": "2999-01-01T00:00:00Z"}, "invalid", 400),
            (item(users=["ghost"], departments=["sales"]), "unknown_recipients", 400),
            (item(users=[2**40, 2**70], departments=[2**35]), "unknown_recipients", 400),  # beyond the integers
            ({**item(users=["x"]), "data": {"notificationId": 1}}, "invalid", 400),
            ({**item(users=["x"]), "event": "NewTask"}, "outside_scope", 403),
            ({**item(users=["x"]), "actions": [{"id": "pay", "label": "Pay"}]}, "invalid", 400),
            ([1, 2], "invalid", 400),
            (None, "invalid", 400),
        ],
        ids=[
            "missing",
            "bad-and-unknown-fields",
            "ttl-and-expires",
            "unknown-recipients",
            "ids-beyond-the-integers",
            "reserved-data-key",
            "reserved-event",
            "actions-without-callback",
            "not-an-object",
            "null",
        ],
    )
    def test_with_the_single_publishs_error_between_published_ones(self, publisher, bad, code, status):
        client = client_for(publisher)
        user = UserFactory(username="x")
        single = assert_error(publish_one(client, bad), status, code)

        response = publish_batch(client, [item(users=[user.pk]), bad, item(title="After", users=[user.pk])])

        results = results_of(response)
        assert [result["status"] for result in results] == [201, status, 201]
        assert results[1] == {"index": 1, "status": status, "error": single}
        assert sorted(Notification.objects.values_list("title", flat=True)) == ["After", "Invoice 42 is overdue"]

    def test_every_item_refused_is_still_a_200_and_creates_nothing(self, publisher):
        response = publish_batch(client_for(publisher), [item(users=["ghost"]), item(departments=["nowhere"])])
        assert statuses(response) == [400, 400]
        assert not Notification.objects.exists()
        assert not Delivery.objects.exists()

    def test_an_item_outside_the_publishers_scope_is_403_and_the_others_publish(self):
        hr = DepartmentFactory(code="hr")
        DepartmentFactory(code="finance")
        member = UserFactory()
        add_members(hr, member)
        scoped = make_publisher(scope={"all_recipients": False, "departments": [hr], "events": ["InvoiceOverdue"]})

        response = publish_batch(
            client_for(scoped), [item(departments=["hr"]), item(title="Beyond", departments=["finance", "hr"])]
        )

        results = results_of(response)
        assert [result["status"] for result in results] == [201, 403]
        assert results[1]["error"]["code"] == "outside_scope"
        assert results[1]["error"]["fields"] == {
            "recipients.departments": ["Department 'finance' is outside your publishing scope."]
        }
        assert list(Notification.objects.values_list("title", flat=True)) == ["Invoice 42 is overdue"]
        assert list(Delivery.objects.values_list("recipient_id", flat=True)) == [member.pk]


class TestTheBatchAsAWhole:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"notifications": []}, "notifications"),
            ({"notifications": {"event": "InvoiceOverdue"}}, "notifications"),
            ({"notifications": "all"}, "notifications"),
            ({}, "notifications"),
            ({"notifications": [{"event": "x"}], "dry_run": True}, "dry_run"),
        ],
        ids=["empty", "an-object", "a-string", "missing", "unknown-field"],
    )
    def test_a_batch_that_is_not_a_list_of_items_is_400_and_creates_nothing(self, publisher, body, field):
        response = client_for(publisher).post(URL, json.dumps(body), content_type="application/json")
        error = assert_error(response, 400, "invalid")
        assert field in error["fields"], error
        assert not Notification.objects.exists()

    def test_more_items_than_NOTIFY_PUBLISH_BATCH_MAX_is_400_and_creates_nothing(self, publisher, settings):
        settings.NOTIFY_PUBLISH_BATCH_MAX = 3
        user = UserFactory()
        client = client_for(publisher)

        refused = publish_batch(client, [item(users=[user.pk])] * 4)
        accepted = publish_batch(client, [item(users=[user.pk])] * 3)

        error = assert_error(refused, 400, "invalid")
        assert error["fields"] == {"notifications": ["Ensure this field has no more than 3 elements."]}
        assert statuses(accepted) == [201, 201, 201]
        assert Notification.objects.count() == 3


class TestIdempotency:
    def test_a_batch_sent_again_replays_every_item_and_creates_nothing(self, publisher):
        client, user = client_for(publisher), UserFactory()
        items = [{**item(title=f"n{index}", users=[user.pk]), "idempotency_key": f"k{index}"} for index in range(3)]
        first = results_of(publish_batch(client, items))
        # The same items, other key order.
        again = results_of(publish_batch(client, [dict(reversed(list(each.items()))) for each in items]))

        assert [result["status"] for result in first] == [201, 201, 201]
        assert [result["status"] for result in again] == [200, 200, 200]
        assert [result["notification"] for result in again] == [result["notification"] for result in first]
        assert Notification.objects.count() == 3
        assert IdempotencyKey.objects.count() == 3

    def test_one_item_sent_again_replays_and_the_new_ones_publish(self, publisher):
        client, user = client_for(publisher), UserFactory()
        first = results_of(publish_batch(client, [{**item(users=[user.pk]), "idempotency_key": "k"}]))[0]
        response = publish_batch(
            client, [item(title="New", users=[user.pk]), {**item(users=[user.pk]), "idempotency_key": "k"}]
        )

        results = results_of(response)
        assert [result["status"] for result in results] == [201, 200]
        assert results[1]["notification"] == first["notification"]
        assert Notification.objects.count() == 2

    def test_a_single_publish_and_a_batch_item_with_one_key_meet(self, publisher):
        client, user = client_for(publisher), UserFactory()
        single = publish_one(client, item(users=[user.pk]), **{"Idempotency-Key": "from-single"})
        batch = results_of(
            publish_batch(
                client,
                [
                    {**item(users=[user.pk]), "idempotency_key": "from-single"},
                    {**item(title="Batched", users=[user.pk]), "idempotency_key": "from-batch"},
                ],
            )
        )
        replayed_single = publish_one(
            client, item(title="Batched", users=[user.pk]), **{"Idempotency-Key": "from-batch"}
        )

        assert (single.status_code, batch[0]["status"], batch[1]["status"]) == (201, 200, 201)
        assert batch[0]["notification"] == single.json()
        assert replayed_single.status_code == 200
        assert replayed_single.json() == batch[1]["notification"]
        assert Notification.objects.count() == 2

    def test_a_key_used_with_another_body_is_409_for_that_item_only(self, publisher):
        client, user = client_for(publisher), UserFactory()
        publish_one(client, item(users=[user.pk]), **{"Idempotency-Key": "used"})
        response = publish_batch(
            client,
            [{**item(title="Other", users=[user.pk]), "idempotency_key": "used"}, item(title="Fine", users=[user.pk])],
        )

        results = results_of(response)
        assert [result["status"] for result in results] == [409, 201]
        assert results[0]["error"]["code"] == "idempotency_conflict"
        assert sorted(Notification.objects.values_list("title", flat=True)) == ["Fine", "Invoice 42 is overdue"]

    def test_one_key_twice_in_a_batch_answers_the_second_as_a_retry_of_the_first(self, publisher):
        client, user = client_for(publisher), UserFactory()
        same = {**item(users=[user.pk]), "idempotency_key": "twice"}
        other = {**item(title="Other", users=[user.pk]), "idempotency_key": "twice"}

        results = results_of(publish_batch(client, [same, same, other]))

        assert [result["status"] for result in results] == [201, 200, 409]
        assert results[1]["notification"] == results[0]["notification"]
        assert Notification.objects.count() == 1

    def test_a_refused_item_does_not_use_up_its_key(self, publisher):
        client = client_for(publisher)
        refused = results_of(publish_batch(client, [{**item(users=["ghost"]), "idempotency_key": "k"}]))
        assert refused[0]["status"] == 400
        assert not IdempotencyKey.objects.exists()
        UserFactory(username="ghost")
        assert statuses(publish_batch(client, [{**item(users=["ghost"]), "idempotency_key": "k"}])) == [201]

    def test_an_item_whose_key_answered_before_replays_even_if_its_body_is_now_invalid(self, publisher):
        client, user = client_for(publisher), UserFactory()
        keyed = {**item(users=[user.username]), "idempotency_key": "k", "ttl_seconds": 60}
        first = results_of(publish_batch(client, [keyed]))[0]
        user.delete()
        again = results_of(publish_batch(client, [keyed, {**keyed, "idempotency_key": "new"}]))
        assert [result["status"] for result in again] == [200, 400]
        assert again[0]["notification"]["id"] == first["notification"]["id"]

    @pytest.mark.django_db(transaction=True)
    def test_keyed_items_need_no_savepoint_either(self, publisher):
        client, user = client_for(publisher), UserFactory()
        items = [
            {**item(title="keyed", users=[user.pk]), "idempotency_key": "a"},
            item(title="plain", users=[user.pk]),
            {**item(title="refused before its claim", users=["ghost"]), "idempotency_key": "b"},
        ]
        with CaptureQueriesContext(connection) as queries:
            response = publish_batch(client, items)
        assert statuses(response) == [201, 201, 400]
        assert not [query["sql"] for query in queries if "SAVEPOINT" in query["sql"].upper()]
        assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["a"]

    @pytest.mark.parametrize("key", ["", " leading-space", "é", "x" * 256, "tab\there", 42, None])
    def test_a_malformed_key_is_400_for_its_item(self, publisher, key):
        user = UserFactory()
        response = publish_batch(client_for(publisher), [{**item(users=[user.pk]), "idempotency_key": key}])
        result = results_of(response)[0]
        assert result["status"] == 400
        assert "idempotency_key" in result["error"]["fields"]
        assert not Notification.objects.exists()


class TestRateLimit:
    @pytest.fixture
    def five_a_minute(self, settings):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.API_THROTTLE_RATES, "publish": "5/minute"},
        }

    def test_each_item_counts_against_the_publishing_rate_and_a_batch_over_what_is_left_is_refused_whole(
        self, publisher, five_a_minute
    ):
        client, user = client_for(publisher), UserFactory()

        first = publish_batch(client, [item(users=[user.pk])] * 3)
        too_many = publish_batch(client, [item(title="Refused", users=[user.pk])] * 3)
        what_is_left = publish_batch(client, [item(title="Fits", users=[user.pk])] * 2)
        single = publish_one(client, item(title="Single", users=[user.pk]))

        assert statuses(first) == [201, 201, 201]
        assert_error(too_many, 429, "throttled")
        assert 0 < int(too_many["Retry-After"]) <= 60
        assert statuses(what_is_left) == [201, 201]
        assert_error(single, 429, "throttled")  # one counter for both endpoints
        assert not Notification.objects.filter(title__in=["Refused", "Single"]).exists()
        assert Notification.objects.count() == 5

    def test_single_publishes_use_up_a_batchs_allowance(self, publisher, five_a_minute):
        client, user = client_for(publisher), UserFactory()
        for _ in range(4):
            assert publish_one(client, item(users=[user.pk])).status_code == 201
        assert_error(publish_batch(client, [item(users=[user.pk])] * 2), 429, "throttled")
        assert statuses(publish_batch(client, [item(users=[user.pk])])) == [201]

    def test_a_batch_that_is_refused_as_invalid_counts_as_one_request(self, publisher, five_a_minute, settings):
        settings.NOTIFY_PUBLISH_BATCH_MAX = 10
        client, user = client_for(publisher), UserFactory()
        assert_error(publish_batch(client, [item(users=[user.pk])] * 11), 400, "invalid")
        assert statuses(publish_batch(client, [item(users=[user.pk])] * 4)) == [201] * 4
